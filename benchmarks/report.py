"""What the benchmarks share: timing round robin, the tar-reading floor, a text table, the --json file."""

from __future__ import annotations

import json
import resource
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cost:
    """What a measured step took: wall seconds, and CPU seconds of this process and its finished children."""

    wall: float
    cpu: float


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg, pool workers and their ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_json(path: Path | None, figures: dict, indent: int = 2) -> None:
    """Write the figures to `path` (the `--json` option), creating its folder; nothing when None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=indent) + "\n")


def best_times(functions: dict[str, Callable[[], object]], repeats: int,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Best-of-`repeats` seconds per function, taken round-robin so load from other processes on a
    shared machine falls on all candidates alike rather than on whichever ran during it.

    `clock=time.process_time` counts this process's CPU seconds instead (for single-threaded
    per-core figures on a machine whose cores other processes take a share of)."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = clock()
            function()
            best[name] = min(best[name], clock() - start)
    return best


def read_tar_members(urls: list[str]) -> int:
    """Read every member's bytes of the tar files, decoding nothing (the floor); returns the samples (json members)."""
    count = 0
    for url in urls:
        with tarfile.open(url) as tar:
            for info in tar:
                tar.extractfile(info).read()
                count += info.name.endswith(".json")
    return count


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format)."""
    cells = [[header for _, header, _ in columns]] + [
        [("-" if row[key] is None else format(row[key], fmt)) for key, _, fmt in columns] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)

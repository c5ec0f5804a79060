"""Read a shard set back and check it: hashes, every member of every sample, split counts.

The reading itself is the format's one reader (`shardformat.sets` for the JSON files,
`shardformat.reader` for the samples); this module adds what only a whole local set can say:
sizes and hashes against index.json, shards that index.json does not list, samples held twice,
and splits.json's lists and counts against what was read.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shardformat import GENDERS, PARTS, SAMPLE_RATE, SHARD_NAME
from shardformat.reader import ShardReadError, iter_tar, read_sample
from shardformat.sets import IndexDoc, IndexEntry, SplitsDoc, parse_index, parse_splits


class FormatError(Exception):
    """A shard set's index.json or splits.json does not follow the format."""


@dataclass(frozen=True)
class Problem:
    shard: str  # file name relative to SHARDS, or "index.json" / "splits.json"
    sample: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.shard}: {self.sample}" if self.sample else self.shard
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Report:
    shards: int
    samples: int
    bytes: int
    seconds: float  # audio, summed over samples
    problems: tuple[Problem, ...]


def _read_json(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise FormatError(f"{path}: missing; is this a folder written by emoprep shard?") from err
    except OSError as err:
        raise FormatError(f"{path}: not readable ({err})") from err


def load_index(root: Path) -> IndexDoc:
    """ROOT/index.json, parsed and checked (every shard name included); FormatError naming it otherwise."""
    try:
        return parse_index(_read_json(root / "index.json"))
    except ValueError as err:
        raise FormatError(f"{root / 'index.json'}: {err}; re-run emoprep shard") from err


def load_splits(root: Path) -> SplitsDoc:
    """ROOT/splits.json, parsed and checked; every split must have its three parts."""
    try:
        doc = parse_splits(_read_json(root / "splits.json"))
    except ValueError as err:
        raise FormatError(f"{root / 'splits.json'}: {err}; re-run emoprep shard") from err
    for name, parts in doc.splits.items():
        if set(parts) != set(PARTS):
            raise FormatError(f"{root / 'splits.json'}: split {name!r} has parts {', '.join(parts) or 'none'}; "
                              f"every split needs {', '.join(PARTS)}")
    return doc


def verify_shards(root: Path, progress: Callable[[int], None] | None = None) -> Report:
    """Check every shard against index.json, decode every sample, check splits.json against what was decoded.

    `progress` is called with the number of shards just checked. Problems are collected, not raised,
    so one run names all of them.
    """
    problems: list[Problem] = []
    try:
        index = load_index(root)
        splits = load_splits(root)
    except FormatError as err:
        return Report(0, 0, 0, 0.0, (Problem("index.json/splits.json", None, str(err)),))

    tallies: dict[str, Counter] = {}  # shard -> (emotion, gender) counts of its good samples
    owner: dict[str, str] = {}  # sample key -> first shard holding it
    samples = total_bytes = 0
    seconds = 0.0
    for entry in index.entries:
        name = entry.file
        tallies[name] = Counter()
        problems += _check_file(root, entry)
        if (root / name).is_file():
            count = 0
            try:
                with (root / name).open("rb") as stream:
                    for raw in iter_tar(stream, name):
                        count += 1
                        try:
                            sample = read_sample(raw, splits.emotions)
                        except ValueError as err:
                            problems.append(Problem(name, raw.key, str(err)))
                            continue
                        if raw.key in owner:
                            problems.append(Problem(name, raw.key, f"also in {owner[raw.key]}"))
                        owner.setdefault(raw.key, name)
                        tallies[name][sample.meta.emotion, sample.meta.gender] += 1
                        seconds += sample.meta.n_samples / SAMPLE_RATE
            except ShardReadError as err:
                problems.append(Problem(name, err.key, err.reason))
            if count != entry.samples:
                problems.append(Problem(name, None, f"{count} samples read, index.json says {entry.samples}"))
            samples += count
            total_bytes += (root / name).stat().st_size
        if progress is not None:
            progress(1)

    damaged = {problem.shard for problem in problems}
    listed = {entry.file for entry in index.entries}
    for path in sorted(root.iterdir()):
        if SHARD_NAME.fullmatch(path.name) and path.name not in listed:
            problems.append(Problem(path.name, None, "a shard file that index.json does not list"))
    problems.extend(_check_splits(splits, tallies, damaged))
    return Report(len(index.entries), samples, total_bytes, seconds, tuple(problems))


def _check_file(root: Path, entry: IndexEntry) -> list[Problem]:
    path = root / entry.file  # the name matched SHARD_NAME when index.json was parsed: no '/' or '..'
    if not path.is_file():
        return [Problem(entry.file, None, "missing")]
    problems = []
    size = path.stat().st_size
    if size != entry.bytes:
        problems.append(Problem(entry.file, None, f"{size} bytes, index.json says {entry.bytes} (truncated?)"))
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != entry.sha256:
        problems.append(Problem(entry.file, None, "sha256 differs from index.json: the file changed after writing"))
    return problems


def _check_splits(splits: SplitsDoc, tallies: dict[str, Counter], damaged: set[str]) -> list[Problem]:
    """Every part names indexed shards, no shard in two parts of one split, and its counts match the
    samples (checked only where all the part's shards read cleanly: a damaged shard is already named)."""
    problems = []
    for split, parts in splits.splits.items():
        used: dict[str, str] = {}
        for part in PARTS:
            where = f"split {split}, part {part}"
            entry = parts[part]
            for name in entry.shards:
                if name not in tallies:
                    problems.append(Problem("splits.json", None, f"{where}: shard {name} is not in index.json"))
                elif name in used:
                    problems.append(Problem("splits.json", None, f"{where}: shard {name} is also in part {used[name]}"))
                used.setdefault(name, part)
            if damaged.intersection(entry.shards):
                continue
            counted = sum((tallies.get(name, Counter()) for name in entry.shards), Counter())
            found = {e: {g: counted[e, g] for g in GENDERS} for e in splits.emotions}
            if entry.counts != found or entry.samples != sum(counted.values()):
                problems.append(Problem("splits.json", None,
                                        f"{where}: declares {entry.samples} samples {dict(entry.counts)}, "
                                        f"its shards hold {sum(counted.values())} {found}"))
    return problems

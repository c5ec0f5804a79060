"""The input files and windows of a WORK folder that gave no sample, each with its reason.

`emoprep extract` keeps two traces of bad input: WORK/problems.csv (files the recipe left
out: a text file named .mp4, a wav cut short) and the manifest's failed rows (windows that
could not be decoded). A predictions table built from the shards alone never sees either;
`failed_inputs` joins them into one row per failed window or file, with the file named as
the shards' `source` names it, so that `emotrain predict --failed-inputs` gives every input
file its row (`make predict`). Problems with a line number are about a metadata file's row
(labels.csv), not an input file, and are left to `emoprep labels` to report.

    python -m emoprep.failed_inputs WORK OUT.csv

writes them as CSV (source, key, start, end, reason), names each failed window on stderr
(`emoprep labels` names the files the recipe left out) and exits 3 when there is any
failed input, 0 when none.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import pyarrow.parquet as pq

from emoprep.atomic import write_bytes
from emoprep.labels import corpus_metadata
from emoprep.shard import relative_source
from emoprep.work import MANIFEST, PROBLEMS

SOME_FAILED = 3  # the exit status of `make predict` when some input gave no prediction


@dataclass(frozen=True)
class FailedInput:
    source: str  # the media file, relative to the corpus root where it lies under it
    key: str  # the window's utterance id; "" for a file that gave no window at all
    start: float | None
    end: float | None
    reason: str


COLUMNS = tuple(f.name for f in fields(FailedInput))


def failed_inputs(work: Path) -> list[FailedInput]:
    """Every failed window of WORK's manifest and every file its recipe left out, sorted by source."""
    table = pq.read_table(work / MANIFEST)
    root = Path(corpus_metadata(table)["root"])
    failed = [
        FailedInput(relative_source(row["video_file"] or row["audio_file"], root), row["utterance_id"],
                    row["start"], row["end"], row["error"])
        for row in table.select(["utterance_id", "video_file", "audio_file", "start", "end", "status", "error"])
        .to_pylist() if row["status"] != "ok"
    ]
    problems = work / PROBLEMS
    if problems.is_file():
        with problems.open(newline="", encoding="utf-8") as file:
            failed += [FailedInput(relative_source(row["path"], root), "", None, None, row["reason"])
                       for row in csv.DictReader(file) if not row["line"]]
    return sorted(failed, key=lambda f: (f.source, f.start if f.start is not None else -1.0, f.key))


def write_failed_inputs(failed: list[FailedInput], out: Path) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(["" if value is None else value for value in astuple(f)] for f in failed)
    write_bytes(out, text.getvalue().encode("utf-8"))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m emoprep.failed_inputs WORK OUT.csv", file=sys.stderr)
        return 2
    failed = failed_inputs(Path(argv[0]))
    write_failed_inputs(failed, Path(argv[1]))
    for f in failed:
        if f.key:
            print(f"failed {f.source}: {f.key}: {f.reason}", file=sys.stderr)
    return SOME_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The WORK folder that `emoprep extract` writes and `emoprep shard` reads: its layout, the record, the manifest.

    WORK/audio/<speaker>/<utt>.flac      16 kHz mono 16-bit, at most 6 s, not padded (none for a video-only clip)
    WORK/frames/<speaker>/<utt>.npy      (T, 96, 96, 3) uint8 face crops at 25 fps (none for an audio-only clip)
    WORK/records/<speaker>/<utt>.json    what happened, written LAST: the "done" marker
    WORK/manifest.parquet                the labels table + records (MANIFEST_SCHEMA), rebuilt at the end of each run
    WORK/problems.csv                    what the recipe left out (path, line, utterance_id, reason), with it
    WORK/extract.json                    the corpus and detector the folder was made with

The manifest's schema is defined here once: the labels table's columns (LABELS_SCHEMA,
what `emoprep labels` writes) followed by the record's (RECORD_SCHEMA), so that labels,
extract and shard agree on every column by importing it. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emoprep.atomic import atomic_path, write_bytes
from emoprep.corpus.base import Problem

MANIFEST = "manifest.parquet"
PROBLEMS = "problems.csv"
CONFIG_FILE = "extract.json"
LOCK_FILE = ".extract.lock"

LABELS_SCHEMA = pa.schema([
    ("utterance_id", pa.string()),
    ("corpus", pa.string()),
    ("speaker", pa.string()),
    ("gender", pa.string()),
    ("emotion", pa.string()),
    ("corpus_label", pa.string()),
    ("group", pa.string()),
    ("audio_file", pa.string()),  # the source media; WORK's own files are audio_path / frames_path
    ("audio_start", pa.float64()),  # null with audio_end: the whole audio file is the clip
    ("audio_end", pa.float64()),
    ("video_file", pa.string()),  # null: an audio-only clip
    ("start", pa.float64()),
    ("end", pa.float64()),  # null: to the end of the video
    ("region", pa.string()),
    ("crop", pa.string()),
    ("extra", pa.string()),  # the recipe's own fields, JSON text
    ("label_policy", pa.string()),
])


@dataclass(frozen=True)
class Record:
    """What extraction did for one utterance; WORK/records/<speaker>/<utt>.json, and its manifest columns."""

    utterance_id: str
    status: str  # "ok" | "failed"
    error: str | None  # "<kind>: <detail>" when failed
    warning: str | None  # "; "-joined notes on an ok utterance (short video, resampled audio, no face found)
    audio_path: str | None  # relative to WORK; None when failed, or a video-only clip
    frames_path: str | None  # None when failed, or an audio-only clip
    n_samples: int | None
    n_frames: int | None
    face_ratio: float | None  # sampled frames with a detection / sampled frames; None: no frame looked at
    detector: str
    seconds: float  # time spent on it

    @property
    def error_kind(self) -> str | None:
        return None if self.error is None else self.error.split(":", 1)[0]


RECORD_FIELDS = tuple(f.name for f in fields(Record))
RECORD_SCHEMA = pa.schema([  # the record's columns after utterance_id, which the labels columns already hold
    ("status", pa.string()), ("error", pa.string()), ("warning", pa.string()), ("audio_path", pa.string()),
    ("frames_path", pa.string()), ("n_samples", pa.int64()), ("n_frames", pa.int64()),
    ("face_ratio", pa.float64()), ("detector", pa.string()), ("seconds", pa.float64()),
])
MANIFEST_SCHEMA = pa.schema([*LABELS_SCHEMA, *RECORD_SCHEMA])


def work_paths(utterance_id: str, folder: str) -> dict[str, str]:
    """Where an utterance's files live, relative to WORK."""
    return {
        "audio": f"audio/{folder}/{utterance_id}.flac",
        "frames": f"frames/{folder}/{utterance_id}.npy",
        "record": f"records/{folder}/{utterance_id}.json",
    }


def write_record(work: Path, folder: str, record: Record) -> None:
    write_bytes(work / work_paths(record.utterance_id, folder)["record"],
                (json.dumps(asdict(record), indent=1) + "\n").encode())


def read_record(path: Path) -> Record | None:
    """A record file, or None when it is absent or not a record (then the utterance is done again)."""
    try:
        data = json.loads(path.read_text())
        return Record(**{name: data[name] for name in RECORD_FIELDS})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def manifest_table(labels: pa.Table, records: dict[str, Record]) -> pa.Table:
    """A labels table (its rows and metadata) with each row's record appended: MANIFEST_SCHEMA."""
    rows = [records[uid] for uid in labels.column("utterance_id").to_pylist()]
    table = labels
    for column in RECORD_SCHEMA:
        table = table.append_column(column, pa.array([getattr(r, column.name) for r in rows], column.type))
    return table


def write_manifest(work: Path, labels: pa.Table, records: dict[str, Record]) -> Path:
    path = work / MANIFEST
    with atomic_path(path) as temporary:
        pq.write_table(manifest_table(labels, records), temporary)
    return path


def write_problems(work: Path, problems: Iterable[Problem]) -> Path:
    """WORK/problems.csv: the recipe's problems, so that what never became a clip is on record beside the manifest."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "line", "utterance_id", "reason"])
    writer.writerows([p.path, "" if p.line is None else p.line, p.utterance_id or "", p.reason] for p in problems)
    path = work / PROBLEMS
    write_bytes(path, text.getvalue().encode("utf-8"))
    return path

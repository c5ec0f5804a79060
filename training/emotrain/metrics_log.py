"""The run's metric log: RUN/metrics.jsonl (one object per epoch and part) and RUN/metrics.csv.

metrics.jsonl is the record (every key, the confusion matrix included) that a resumed run reads
back and an experiment's reports are built from; metrics.csv holds its scalar columns for a
spreadsheet. Both are rewritten whole, atomically, after every epoch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from emotrain.atomic import write_atomic
from emotrain.metrics import SCALAR_KEYS

CSV_COLUMNS = ("epoch", "part", *SCALAR_KEYS, "samples", "skipped", "lr")


def write_metrics(run: Path, rows: list[dict]) -> None:
    """RUN/metrics.jsonl (one object per epoch and part) and RUN/metrics.csv (its scalar columns)."""
    write_atomic(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(run / "metrics.csv", table.getvalue())


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


"""The run's metric log: RUN/metrics.jsonl, RUN/metrics.csv and, with --tensorboard, RUN/tensorboard/.

metrics.jsonl (one object per epoch and part) is the record, every key and the confusion matrix
included, that a resumed run reads back and an experiment's reports are built from; metrics.csv
holds its scalar columns for a spreadsheet. Both are rewritten whole, atomically, after every epoch.

TensorBoard gets the same scalars (metrics.csv's columns) at step = epoch, one event folder per
part (RUN/tensorboard/train, RUN/tensorboard/val) under the same tag names, so TensorBoard draws a
metric's train and val curves in one chart. Event files can only be appended to: a resumed run
opens its writers with purge_step = the first epoch it trains, so the steps a crashed attempt
logged past last.pt are hidden, not shown twice.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from emotrain.atomic import write_atomic
from emotrain.config import ConfigError
from emotrain.metrics import SCALAR_KEYS

CSV_COLUMNS = ("epoch", "part", *SCALAR_KEYS, "samples", "skipped", "lr")
TENSORBOARD_KEYS = CSV_COLUMNS[2:]  # every scalar column; epoch is the step, part the event folder


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


class TensorBoardLog:
    """RUN/tensorboard/<part>/: TENSORBOARD_KEYS of every metrics row, at step = epoch (rank 0 only)."""

    def __init__(self, run: Path, parts: tuple[str, ...], after_epoch: int) -> None:
        """Writers for `parts` that continue a run whose epochs up to `after_epoch` are kept (0: a new run)."""
        try:
            # Imported here: tensorboard (and its protobuf) load only for runs that log to it.
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exn:
            raise ConfigError(f"--tensorboard needs the tensorboard package ({exn}); "
                              "pip install tensorboard (it is in emoav's train extra)") from exn
        self.writers = {part: SummaryWriter(str(run / "tensorboard" / part), purge_step=after_epoch + 1)
                        for part in parts}

    def add(self, row: dict) -> None:
        writer = self.writers[row["part"]]
        for key in TENSORBOARD_KEYS:
            writer.add_scalar(key, row[key], row["epoch"])
        writer.flush()  # an epoch's figures show up now, not after SummaryWriter's 2-minute flush

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

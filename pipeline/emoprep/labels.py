"""Clip records -> the labels table (Parquet), whatever the corpus; and back.

The table is the chain between the stages: `emoprep labels` writes it, `emoprep extract`
writes the same columns (plus what extraction did) as WORK/manifest.parquet, and
`emoprep shard` reads that. What a stage after the recipe needs to know about the
corpus as a whole (its name, class list, label policy and splits) rides along in the
schema metadata, so labelling and splitting are decided once, by the recipe.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emoprep.atomic import atomic_path
from emoprep.corpus.base import ClipRecord, CorpusClips, RandomSplit, SpeakerSplit, SplitSpec
from emoprep.work import LABELS_SCHEMA  # the manifest's first columns: one schema, defined with WORK's layout

NOT_KEPT = "not kept"
# Parquet schema metadata: the corpus-wide decisions of the recipe, as JSON.
METADATA_KEYS = {"corpus": b"emoav.corpus", "root": b"emoav.root", "classes": b"emoav.classes",
                 "label_policy": b"emoav.label_policy", "splits": b"emoav.splits"}



def split_to_json(split: SplitSpec) -> dict[str, Any]:
    data = asdict(split)
    data["kind"] = "random" if isinstance(split, RandomSplit) else "speakers"
    return {key: sorted(value) if isinstance(value, frozenset) else value for key, value in data.items()}


def split_from_json(data: dict[str, Any]) -> SplitSpec:
    fields = {key: frozenset(value) if isinstance(value, list) else value
              for key, value in data.items() if key != "kind"}
    return RandomSplit(**fields) if data["kind"] == "random" else SpeakerSplit(**fields)


def labels_table(clips: CorpusClips, records: Sequence[ClipRecord] | None = None) -> pa.Table:
    """One row per record (all of the corpus's by default), sorted by id; corpus decisions in the metadata."""
    rows = sorted(clips.clips if records is None else records, key=lambda r: r.clip_id)
    columns = {
        "utterance_id": [r.clip_id for r in rows],
        "corpus": [r.corpus for r in rows],
        "speaker": [r.speaker for r in rows],
        "gender": [r.gender for r in rows],
        "emotion": [r.emotion for r in rows],
        "corpus_label": [r.corpus_label for r in rows],
        "group": [r.group for r in rows],
        "audio_file": [r.audio_path for r in rows],
        "audio_start": [None if r.audio_window is None else r.audio_window[0] for r in rows],
        "audio_end": [None if r.audio_window is None else r.audio_window[1] for r in rows],
        "video_file": [r.video_path for r in rows],
        "start": [r.start for r in rows],
        "end": [r.end for r in rows],
        "region": [r.region for r in rows],
        "crop": [r.crop for r in rows],
        "extra": [json.dumps(dict(r.extra), sort_keys=True) for r in rows],
        "label_policy": [clips.label_policy.get("name")] * len(rows),
    }
    metadata = {
        METADATA_KEYS["corpus"]: clips.corpus,
        METADATA_KEYS["root"]: clips.root,
        METADATA_KEYS["classes"]: json.dumps(list(clips.classes)),
        METADATA_KEYS["label_policy"]: json.dumps(dict(clips.label_policy), sort_keys=True),
        METADATA_KEYS["splits"]: json.dumps([split_to_json(s) for s in clips.splits]),
    }
    return pa.table(columns, schema=LABELS_SCHEMA.with_metadata(metadata))


def record_of(row: dict[str, Any]) -> ClipRecord:
    """A labels-table row -> its ClipRecord (the inverse of labels_table, row by row)."""
    window = None if row["audio_start"] is None else (row["audio_start"], row["audio_end"])
    return ClipRecord(
        clip_id=row["utterance_id"], corpus=row["corpus"], speaker=row["speaker"], gender=row["gender"],
        emotion=row["emotion"], corpus_label=row["corpus_label"], group=row["group"],
        audio_path=row["audio_file"], audio_window=window, video_path=row["video_file"],
        start=row["start"], end=row["end"], region=row["region"], crop=row["crop"],
        extra=json.loads(row["extra"]),
    )


def corpus_metadata(table: pa.Table) -> dict[str, Any]:
    """corpus, root, classes, label_policy and splits (as SplitSpecs) from a labels table or manifest."""
    metadata = table.schema.metadata or {}
    missing = [name for name, key in METADATA_KEYS.items() if key not in metadata]
    if missing:
        raise ValueError(f"no {', '.join(missing)} in the table's metadata: was it written by this emoprep's "
                         "`labels` or `extract`? (re-run extract on the WORK folder to rebuild its manifest)")
    return {
        "corpus": metadata[METADATA_KEYS["corpus"]].decode(),
        "root": metadata[METADATA_KEYS["root"]].decode(),
        "classes": tuple(json.loads(metadata[METADATA_KEYS["classes"]])),
        "label_policy": json.loads(metadata[METADATA_KEYS["label_policy"]]),
        "splits": tuple(split_from_json(s) for s in json.loads(metadata[METADATA_KEYS["splits"]])),
    }


def write_labels(table: pa.Table, path: str | Path) -> Path:
    """Write the table as Parquet atomically: a temporary file beside it, then os.replace."""
    path = Path(path)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)
    return path


def count_table(records: Sequence[ClipRecord], classes: Sequence[str]) -> str:
    """Class x gender counts as aligned text: each class, their total, the rest, and all."""
    counts: Counter[tuple[str, str]] = Counter((r.emotion or NOT_KEPT, r.gender or "?") for r in records)
    genders = ["F", "M"] + (["?"] if any(g == "?" for _, g in counts) else [])

    def row(name: str, names: Sequence[str]) -> list[str]:
        cells = [sum(counts[(c, g)] for c in names) for g in genders]
        return [name, *map(str, cells), str(sum(cells))]

    rows = [["emotion", *genders, "total"]]
    rows += [row(emotion, [emotion]) for emotion in classes]
    rows.append(row("kept", classes))
    rows.append(row(NOT_KEPT, [NOT_KEPT]))
    rows.append(row("all", [*classes, NOT_KEPT]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(r[1:], widths[1:])])
        for r in rows
    )

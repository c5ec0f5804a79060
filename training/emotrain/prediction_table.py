"""What `emotrain predict` writes: a row per window, a row per video, timelines, and the summary.

Per window (`predictions.csv`, or `.parquet`): key, source, start, end, status ("ok" or
"failed"), modalities (what the sample had), filled (the branch that stood in for a missing
modality: "audio" or "video"), p_<class> for each of the run's emotion classes, emotion (the
most probable), p_F, p_M, gender, true_emotion / true_gender (labelled sets), reason (why a
window failed). A failed window has empty probabilities.

Per video (`predictions-videos.csv`, beside it): source, windows, failed (windows), seconds
(predicted), modalities, the window probabilities averaged weighted by each window's
duration (a window without times weighs 1 s), the argmax of the averages, and reason (why
windows failed, each reason once).

Inputs that never became a sample (`--failed-inputs`, a CSV of source, key, start, end,
reason: what emoprep.failed_inputs writes from a WORK folder) are failed rows too, so
every input file has its row; one with an empty key is a file that gave no window at all.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotrain.atomic import atomic_path, write_atomic
from emotrain.metrics import unweighted_accuracy, weighted_accuracy
from emotrain.predict import WindowPrediction

TABLE_SUFFIXES = (".csv", ".parquet")


def window_columns(emotions: Sequence[str], genders: Sequence[str]) -> list[str]:
    return ["key", "source", "start", "end", "status", "modalities", "filled", "face_ratio",
            *(f"p_{e}" for e in emotions), "emotion", *(f"p_{g}" for g in genders), "gender",
            "true_emotion", "true_gender", "reason"]


def video_columns(emotions: Sequence[str], genders: Sequence[str]) -> list[str]:
    return ["source", "windows", "failed", "seconds", "modalities",
            *(f"p_{e}" for e in emotions), "emotion", *(f"p_{g}" for g in genders), "gender", "reason"]


def window_rows(predictions: Sequence[WindowPrediction], emotions: Sequence[str],
                genders: Sequence[str]) -> list[dict]:
    """One dict per window, sorted by source and start (loader workers interleave shards)."""
    rows = []
    for p in predictions:
        row = {"key": p.info.key, "source": p.info.source, "start": p.info.start, "end": p.info.end,
               "status": "ok" if p.reason is None else "failed", "modalities": p.modalities,
               "filled": p.filled or "", "face_ratio": p.info.face_ratio, "true_emotion": p.info.emotion or "",
               "true_gender": p.info.gender or "", "reason": p.reason or ""}
        row.update(_probability_columns(p.emotion, emotions, "emotion"))
        row.update(_probability_columns(p.gender, genders, "gender"))
        rows.append(row)
    return sorted(rows, key=row_order)


def row_order(row: dict) -> tuple:
    """Rows by source, then start (a row without times first), then key."""
    return row["source"], row["start"] if row["start"] is not None else -1.0, row["key"]


def failed_input_rows(path: Path, emotions: Sequence[str], genders: Sequence[str]) -> list[dict]:
    """The `--failed-inputs` CSV as failed window rows (see the module docstring)."""
    with path.open(newline="", encoding="utf-8") as file:
        return [{"key": row["key"], "source": row["source"], "start": _seconds(row["start"]),
                 "end": _seconds(row["end"]), "status": "failed", "modalities": "", "filled": "", "face_ratio": None,
                 "true_emotion": "", "true_gender": "", "reason": row["reason"],
                 **_probability_columns(None, emotions, "emotion"), **_probability_columns(None, genders, "gender")}
                for row in csv.DictReader(file)]


def _seconds(text: str) -> float | None:
    return float(text) if text else None


def _probability_columns(probabilities: np.ndarray | None, classes: Sequence[str], name: str) -> dict:
    if probabilities is None:
        return {**{f"p_{c}": None for c in classes}, name: ""}
    return {**{f"p_{c}": float(v) for c, v in zip(classes, probabilities)},
            name: classes[int(np.argmax(probabilities))]}


def video_rows(rows: Sequence[dict], emotions: Sequence[str], genders: Sequence[str]) -> list[dict]:
    """One dict per source: duration-weighted means of its predicted windows' probabilities."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    videos = []
    for source, windows in sorted(by_source.items()):
        ok = [w for w in windows if w["status"] == "ok"]
        cut = [w for w in windows if w["key"]]  # a row without key: a file that gave no window
        weights = np.array([window_seconds(w) for w in ok])
        video = {"source": source, "windows": len(cut), "failed": len(cut) - len(ok),
                 "seconds": float(weights.sum()) if ok else 0.0,
                 "modalities": ",".join(sorted({w["modalities"] for w in ok})),
                 "reason": "; ".join(dict.fromkeys(w["reason"] for w in windows if w["reason"]))}
        for classes, name in ((emotions, "emotion"), (genders, "gender")):
            mean = None
            if ok:
                table = np.array([[w[f"p_{c}"] for c in classes] for w in ok])
                mean = (table * weights[:, None]).sum(axis=0) / weights.sum()
            video.update(_probability_columns(mean, classes, name))
        videos.append(video)
    return videos


def window_seconds(row: dict) -> float:
    if row["start"] is None or row["end"] is None or row["end"] <= row["start"]:
        return 1.0
    return row["end"] - row["start"]


def videos_path(out: Path) -> Path:
    """predictions.csv -> predictions-videos.csv (same folder, same format)."""
    return out.with_name(f"{out.stem}-videos{out.suffix}")


def write_table(rows: Sequence[dict], columns: Sequence[str], path: Path) -> None:
    """CSV or Parquet by the file's suffix, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [row[c] for row in rows] for c in columns})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_value(row[c]) for c in columns})
    write_atomic(path, text.getvalue())


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.9g}"
    return value


def write_timelines(rows: Sequence[dict], emotions: Sequence[str], folder: Path) -> list[Path]:
    """A PNG per video with predicted windows: each emotion's probability over time, a step per window."""
    from matplotlib.figure import Figure

    from emotrain.metrics import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    by_source: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and row["start"] is not None and row["end"] is not None:
            by_source[row["source"]].append(row)
    written = []
    for source, windows in sorted(by_source.items()):
        fig = Figure(figsize=(8, 3))
        ax = fig.add_subplot()
        times = [t for w in windows for t in (w["start"], w["end"])]
        for emotion in emotions:
            ax.plot(times, [w[f"p_{emotion}"] for w in windows for _ in range(2)], label=emotion)
        ax.set(xlabel="seconds", ylabel="probability", ylim=(0, 1), title=source)
        ax.legend(loc="upper right", fontsize="small", ncol=len(emotions))
        fig.tight_layout()
        path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', source).strip('_') or 'video'}.png"
        save_figure(fig, path)
        written.append(path)
    return written


@dataclass(frozen=True)
class Summary:
    windows: int
    videos: int
    failed: int
    modalities: dict[str, int]  # "audio+video" -> windows predicted from both, ...
    filled: dict[str, int]  # "audio" -> windows whose audio branch was filled in, ...
    labelled: int  # predicted windows with a true emotion among the run's classes
    emotion_wa: float | None
    emotion_ua: float | None
    gender_acc: float | None

    def line(self) -> str:
        ok = self.windows - self.failed
        parts = [f"predicted {ok} of {self.windows} windows of {self.videos} videos"]
        if self.modalities:
            parts.append(", ".join(f"{n} {m}" for m, n in sorted(self.modalities.items())))
        if self.filled:
            parts.append("filled in: " + ", ".join(f"{m} for {n}" for m, n in sorted(self.filled.items())))
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.labelled:
            parts.append(f"emotion WA {self.emotion_wa:.1%} UA {self.emotion_ua:.1%}, gender "
                         + (f"{self.gender_acc:.1%}" if self.gender_acc is not None else "-")
                         + f" on {self.labelled} labelled")
        return "; ".join(parts)


def summarise(rows: Sequence[dict], emotions: Sequence[str], genders: Sequence[str]) -> Summary:
    ok = [r for r in rows if r["status"] == "ok"]
    labelled = [r for r in ok if r["true_emotion"] in emotions]
    confusion = np.zeros((len(emotions), len(emotions)), np.int64)
    for r in labelled:
        confusion[emotions.index(r["true_emotion"]), emotions.index(r["emotion"])] += 1
    gendered = [r for r in ok if r["true_gender"] in genders]
    return Summary(
        windows=len(rows), videos=len({r["source"] for r in rows}), failed=len(rows) - len(ok),
        modalities=dict(Counter(r["modalities"] for r in ok)),
        filled=dict(Counter(r["filled"] for r in ok if r["filled"])),
        labelled=len(labelled),
        emotion_wa=weighted_accuracy(confusion) if labelled else None,
        emotion_ua=unweighted_accuracy(confusion) if labelled else None,
        gender_acc=(sum(r["gender"] == r["true_gender"] for r in gendered) / len(gendered)) if gendered else None,
    )

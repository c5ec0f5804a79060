"""docs/figures/video-alone.png: the video-alone runs (data/video/runs/<name>/seed-0) against epoch.

    python docs/video-alone/plot.py docs/figures/video-alone.png
"""

import json
import sys
from pathlib import Path

from matplotlib.figure import Figure

RUNS = Path("data/video/runs")
LABELS = {"emotion-only": "emotion only (static 1/0)", "static": "static 0.5/0.5", "uncertainty": "uncertainty",
          "dwa": "DWA", "dynamic": "dynamic (paper)"}
PANELS = (("train", "emotion_nll", "train emotion NLL (chance 1.386)", 1.386),
          ("val", "emotion_ua", "validation emotion UA (chance 0.25)", 0.25),
          ("val", "gender_acc", "validation gender accuracy", None),
          ("train", "w_emotion", "w_emotion", None))


def main(path: str) -> None:
    fig = Figure(figsize=(16, 4.2), layout="constrained")
    axes = fig.subplots(1, len(PANELS))
    for colour, (name, label) in enumerate(LABELS.items()):
        metrics = RUNS / name / "seed-0" / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        for axis, (part, key, _, _) in zip(axes, PANELS):
            mine = [row for row in rows if row["part"] == part]
            axis.plot([row["epoch"] for row in mine], [row[key] for row in mine], "-o", color=f"C{colour}",
                      label=label, markersize=3)
    for axis, (_, _, title, chance) in zip(axes, PANELS):
        if chance is not None:
            axis.axhline(chance, color="grey", linewidth=0.6, linestyle=":")
        axis.set(title=title, xlabel="epoch")
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    fig.suptitle("video alone (small model, split paper of the synthetic corpus, 106 train / 36 validation, "
                 "seed 0): the emotion task under each weighting", fontsize=10)
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1])

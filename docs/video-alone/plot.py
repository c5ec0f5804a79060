"""docs/figures/video-alone.png: the video-alone runs (data/video/runs/<name>/seed-0) per epoch."""
import json, sys
from pathlib import Path
from matplotlib.figure import Figure

runs = Path("data/video/runs")
names = ["emotion-only", "static", "uncertainty", "dwa", "dynamic"]
labels = {"emotion-only": "emotion only (static 1/0)", "static": "static 0.5/0.5", "uncertainty": "uncertainty",
          "dwa": "DWA", "dynamic": "dynamic (paper)"}
fig = Figure(figsize=(16, 4.2), layout="constrained")
axes = fig.subplots(1, 4)
for i, name in enumerate(names):
    path = runs / name / "seed-0" / "metrics.jsonl"
    if not path.exists():
        continue
    rows = [json.loads(l) for l in path.read_text().splitlines()]
    for axis, part, key in ((axes[0], "train", "emotion_nll"), (axes[1], "val", "emotion_ua"), (axes[2], "val", "gender_acc"), (axes[3], "train", "w_emotion")):
        r = [x for x in rows if x["part"] == part]
        axis.plot([x["epoch"] for x in r], [x[key] for x in r], "-o", color=f"C{i}", label=labels[name], markersize=3)
axes[0].axhline(1.386, color="grey", lw=0.6, ls=":"); axes[1].axhline(0.25, color="grey", lw=0.6, ls=":")
for axis, title in zip(axes, ("train emotion NLL (chance 1.386)", "validation emotion UA (chance 0.25)", "validation gender accuracy", "w_emotion")):
    axis.set(title=title, xlabel="epoch"); axis.legend(fontsize=7); axis.grid(alpha=0.3)
fig.suptitle("video alone (small model, split paper of the synthetic corpus, 106 train / 36 val, seed 0): the emotion task under each weighting", fontsize=10)
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/video-alone.png", dpi=80)

"""The paper's Table 1 and Figure 2 in one command, and two better-founded weightings beside them.

Every configuration is trained with the same data, epochs and seeds as an ordinary `emotrain fit`
run folder, DIR/<name>/seed-<s>/, then its best checkpoint (chosen on validation, never on the last
batch) is scored on validation and test. A configuration whose run finished and was scored is not
trained again; one that was interrupted is resumed.

The paper compares configurations on the validation NLL *weighted by each run's own task weights*.
That figure falls when the dynamic weights move toward the easier task (gender) even if nothing is
learnt better, so the table also carries the unweighted L_e + L_g and the accuracies, and DIR/README.md
says whether the two NLL rankings agree.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import click

from emotrain.checkpoint import load_checkpoint, write_atomic
from emotrain.config import TrainConfig
from emotrain.evaluate import evaluate_run
from emotrain.metrics import save_figure
from emotrain.train import fit, read_metrics


@dataclass(frozen=True)
class Configuration:
    name: str
    modality: str
    weighting: str


# The paper's four rows, then the two alternatives (engineering notes: both need one backward pass).
CONFIGURATIONS = (
    Configuration("UM-dynamic-A", "a", "dynamic"),
    Configuration("UM-dynamic-V", "v", "dynamic"),
    Configuration("MM-static", "av", "static"),
    Configuration("MM-dynamic", "av", "dynamic"),
    Configuration("MM-uncertainty", "av", "uncertainty"),
    Configuration("MM-dwa", "av", "dwa"),
)
MODALITY_NAMES = {"a": "audio", "v": "video", "av": "audio + video"}
# Columns of table1.json, each the mean over seeds, with "<column>_std" beside it.
COLUMNS = (
    "w_emotion", "w_gender", "val_nll_weighted_sum", "val_unweighted_nll",
    "val_emotion_wa", "val_emotion_ua", "val_emotion_f1", "val_gender_acc",
    "test_emotion_wa", "test_emotion_ua", "test_emotion_f1", "test_gender_acc", "best_epoch",
)


@dataclass(frozen=True)
class SeedResult:
    configuration: Configuration
    seed: int
    run: Path
    figures: dict[str, float]  # COLUMNS for this seed
    rows: list[dict]  # the run's metrics.jsonl


def run_experiment(base: TrainConfig, out: Path, seeds: int, configurations: Sequence[Configuration] = CONFIGURATIONS,
                   echo: Callable[[str], None] = click.echo) -> list[dict]:
    """Train and score every configuration for seeds base.seed .. base.seed + seeds - 1; write the reports."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[SeedResult] = []
    total = len(configurations) * seeds
    for number, (configuration, seed) in enumerate(
            ((c, base.seed + s) for c in configurations for s in range(seeds)), start=1):
        run = out / configuration.name / f"seed-{seed}"
        cfg = replace(base, out=str(run), seed=seed, modality=configuration.modality,
                      weighting=configuration.weighting)
        status = train_or_reuse(cfg, echo)
        result = score_run(configuration, cfg)
        results.append(result)
        echo(f"[{number}/{total}] {configuration.name} seed {seed}: {status}; "
             f"val UA {result.figures['val_emotion_ua']:.3f}, test UA {result.figures['test_emotion_ua']:.3f}, "
             f"test gender {result.figures['test_gender_acc']:.3f}, "
             f"w = {result.figures['w_emotion']:.2f}/{result.figures['w_gender']:.2f}")
    table = summarise(results, configurations)
    write_atomic(out / "table1.json", json.dumps(table, indent=2) + "\n")
    write_atomic(out / "table1.md", table_markdown(table, base) + "\n")
    plot_figure2(results, out / "fig2.png")
    write_atomic(out / "README.md", reading(table, base) + "\n")
    return table


def train_or_reuse(cfg: TrainConfig, echo: Callable[[str], None]) -> str:
    """Fit the run unless it already finished; resume it if it was interrupted."""
    last = Path(cfg.out) / "last.pt"
    if not last.exists():
        fit(cfg, echo=lambda message: None)
        return "trained"
    done = load_checkpoint(last)["epoch"]
    if done >= cfg.epochs:
        return "reused"
    echo(f"resuming {cfg.out} after epoch {done}")
    fit(cfg, resume=True, echo=lambda message: None)
    return "resumed"


def score_run(configuration: Configuration, cfg: TrainConfig) -> SeedResult:
    """The best checkpoint's figures on validation and test (scored once, then read back)."""
    run = Path(cfg.out)
    scored = {}
    for part in ("val", "test"):
        path = run / f"eval-{cfg.split}-{part}.json"
        if path.exists() and path.stat().st_mtime >= (run / "best.pt").stat().st_mtime:
            scored[part] = json.loads(path.read_text(encoding="utf-8"))
        else:
            scored[part] = evaluate_run(run, split=cfg.split, part=part, checkpoint="best", device=cfg.device,
                                        workers=0).metrics
    val, test = scored["val"], scored["test"]
    figures = {
        "w_emotion": val["w_emotion"],
        "w_gender": val["w_gender"],
        # The paper's column: each task's NLL summed over the validation set, weighted by the run's weights.
        "val_nll_weighted_sum": val["w_emotion"] * val["emotion_nll_sum"] + val["w_gender"] * val["gender_nll_sum"],
        "val_unweighted_nll": val["unweighted_nll"],
        "best_epoch": float(val["epoch"]),
    }
    for part, metrics in scored.items():
        for key in ("emotion_wa", "emotion_ua", "emotion_f1", "gender_acc"):
            figures[f"{part}_{key}"] = metrics[key]
    return SeedResult(configuration, cfg.seed, run, figures, read_metrics(run))


def summarise(results: Sequence[SeedResult], configurations: Sequence[Configuration]) -> list[dict]:
    table = []
    for configuration in configurations:
        mine = [r for r in results if r.configuration == configuration]
        row: dict = {"name": configuration.name, "modalities": MODALITY_NAMES[configuration.modality],
                     "weighting": configuration.weighting, "seeds": [r.seed for r in mine]}
        for column in COLUMNS:
            values = [r.figures[column] for r in mine]
            row[column] = statistics.fmean(values)
            row[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(row)
    return table


def _cell(row: dict, column: str, percent: bool = False) -> str:
    """mean ± std over seeds; the mean alone for one seed, where a std of 0 would say nothing."""
    scale, digits = (100, 1) if percent else (1, 3 if column.startswith("w_") else 2)
    mean = f"{scale * row[column]:.{digits}f}"
    if len(row["seeds"]) == 1:
        return mean
    return f"{mean} ± {scale * row[f'{column}_std']:.{digits}f}"


def table_markdown(table: Sequence[dict], base: TrainConfig) -> str:
    header = ("| configuration | modalities | w_emotion | w_gender | val NLL, weighted sum (paper) "
              "| val L_e + L_g (mean) | val UA % | test WA % | test UA % | test F1 % | test gender % "
              "| best epoch |")
    lines = [
        f"# Table 1: split `{base.split}`, model `{base.model}`, {base.epochs} epochs, "
        f"seeds {table[0]['seeds']}" + (" (mean ± std)" if len(table[0]["seeds"]) > 1 else ""),
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for row in table:
        lines.append(
            f"| {row['name']} | {row['modalities']} | {_cell(row, 'w_emotion')} | {_cell(row, 'w_gender')} "
            f"| {_cell(row, 'val_nll_weighted_sum')} | {_cell(row, 'val_unweighted_nll')} "
            f"| {_cell(row, 'val_emotion_ua', True)} | {_cell(row, 'test_emotion_wa', True)} "
            f"| {_cell(row, 'test_emotion_ua', True)} | {_cell(row, 'test_emotion_f1', True)} "
            f"| {_cell(row, 'test_gender_acc', True)} | {row['best_epoch']:.1f} |")
    return "\n".join(lines)


def ranking(table: Sequence[dict], column: str, higher_is_better: bool = False) -> list[str]:
    return [row["name"] for row in sorted(table, key=lambda r: r[column], reverse=higher_is_better)]


def reading(table: Sequence[dict], base: TrainConfig) -> str:
    """A short reading of the table: who wins what, and whether the paper's criterion misleads."""
    def best(column: str, higher: bool) -> str:
        row = (max if higher else min)(table, key=lambda r: r[column])
        return f"{row['name']} ({row[column]:.3f})"

    weighted = ranking(table, "val_nll_weighted_sum")
    unweighted = ranking(table, "val_unweighted_nll")
    agree = weighted == unweighted
    lines = [
        f"# Reading Table 1 (split `{base.split}`, model `{base.model}`)",
        "",
        "See table1.md for the figures and fig2.png for the curves.",
        "",
        f"- Lowest validation NLL, weighted as in the paper: {best('val_nll_weighted_sum', False)}.",
        f"- Lowest validation L_e + L_g (unweighted): {best('val_unweighted_nll', False)}.",
        f"- Best validation emotion UA: {best('val_emotion_ua', True)}.",
        f"- Best test emotion UA: {best('test_emotion_ua', True)}; best test WA: {best('test_emotion_wa', True)}; "
        f"best test macro-F1: {best('test_emotion_f1', True)}.",
        f"- Best test gender accuracy: {best('test_gender_acc', True)}.",
        "",
        f"Ranking by the paper's weighted NLL: {', '.join(weighted)}.",
        f"Ranking by the unweighted L_e + L_g: {', '.join(unweighted)}.",
        "",
        ("The two rankings agree." if agree else
         "The two rankings disagree: the weighted figure rewards runs whose weights moved toward the easier "
         "task, so compare configurations on the unweighted NLL and the accuracies."),
    ]
    return "\n".join(lines)


def plot_figure2(results: Sequence[SeedResult], path: Path) -> None:
    """Joint loss against epoch (train and validation; static vs dynamic; unimodal vs multimodal) and weights."""
    from matplotlib.figure import Figure

    def mean_curve(name: str, part: str, key: str) -> tuple[list[int], list[float]]:
        runs = [r.rows for r in results if r.configuration.name == name]
        epochs = sorted({row["epoch"] for rows in runs for row in rows if row["part"] == part})
        values = [statistics.fmean(row[key] for rows in runs for row in rows
                                   if row["part"] == part and row["epoch"] == e) for e in epochs]
        return epochs, values

    names = list(dict.fromkeys(r.configuration.name for r in results))
    colour = {name: f"C{i}" for i, name in enumerate(names)}  # one colour per configuration in every panel
    panels = [
        ("static vs dynamic (audio + video)", [n for n in names if n in ("MM-static", "MM-dynamic")], "joint_loss"),
        ("unimodal vs multimodal (dynamic)", [n for n in names if n.endswith("dynamic") or "dynamic-" in n],
         "joint_loss"),
        ("all configurations: unweighted L_e + L_g", names, "unweighted_nll"),
    ]
    fig = Figure(figsize=(20, 4.5), layout="constrained")
    axes = fig.subplots(1, 4)
    for axis, (title, chosen, key) in zip(axes, panels):
        for name in chosen:
            for part, style in (("train", "--"), ("val", "-")):
                epochs, values = mean_curve(name, part, key)
                axis.plot(epochs, values, style, color=colour[name], label=f"{name} {part}")
        axis.set_title(f"{title}\n(dashed: train, solid: validation)", fontsize=9)
        axis.set_xlabel("epoch")
        axis.set_ylabel(key.replace("_", " "))
        axis.legend(fontsize=7)
    weights_axis = axes[3]
    for name in names:
        epochs, values = mean_curve(name, "val", "w_emotion")
        weights_axis.plot(epochs, values, color=colour[name], label=name)
    weights_axis.axhline(0.5, color="grey", linewidth=0.5)
    weights_axis.set_title("task weights (w_gender = 1 - w_emotion)")
    weights_axis.set_xlabel("epoch")
    weights_axis.set_ylabel("w_emotion")
    weights_axis.legend(fontsize=7)
    save_figure(fig, path)

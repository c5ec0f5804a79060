"""An experiment's reports from its scored runs: tables with paired tests, a reading in words, figures.

  table.md / table.json  per configuration the mean and std over folds x seeds of every figure;
                         paired comparisons of every two configurations on the same folds and seeds
                         (emotrain.stats), Holm-adjusted per figure, and which differences hold;
                         pooled test confusion matrices
  README.md              the paper's weighted-NLL ranking against the unweighted one, and the regenerating
                         commands from provenance.jsonl
  fig2.png               Figure 2's curves averaged over folds and seeds, with a band of one std
  folds.png              each configuration's test UA on each fold, paired lines
  weights.png            the task weight w_emotion of every run against epoch
  confusion-<name>.png   the pooled confusion matrix of each configuration

A difference "holds" when its 95 % paired bootstrap interval excludes 0 and its Holm-adjusted
p-value is below 0.05. Seeds of one fold share that fold's test speaker, so with several seeds
the pairs are not independent; the fold-level p (the test on seed-averaged differences, one per
fold) is reported beside it and is the one to trust when the two disagree.

matplotlib is imported only inside the plotting functions.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
import numpy as np

from emotrain.atomic import write_atomic
from emotrain.config import TrainConfig, read_run_config
from emotrain.experiment_plan import Configuration, Folds, RunResult, Unit
from emotrain.metrics import plot_confusion, save_figure
from emotrain.provenance import read_provenance
from emotrain.stats import compare_paired, holm, mean_and_std, sign_flip_test, smallest_p


MODALITY_NAMES = {"a": "audio", "v": "video", "av": "audio + video"}
# Per-run figures; table.json carries each one's mean and "<column>_std" over the configuration's runs.
COLUMNS = (
    "w_emotion", "w_gender", "val_nll_weighted_sum", "val_unweighted_nll", "test_unweighted_nll",
    "val_emotion_wa", "val_emotion_ua", "val_emotion_f1", "val_gender_acc",
    "test_emotion_wa", "test_emotion_ua", "test_emotion_f1", "test_gender_acc", "best_epoch",
)
# Figures compared between configurations, and whether higher is better.
COMPARED = {
    "test_emotion_ua": True, "test_emotion_wa": True, "test_emotion_f1": True, "test_gender_acc": True,
    "test_unweighted_nll": False,
}
FIGURE_NAMES = {
    "test_emotion_ua": "test emotion UA", "test_emotion_wa": "test emotion WA", "test_emotion_f1": "test macro-F1",
    "test_gender_acc": "test gender accuracy", "test_unweighted_nll": "test L_e + L_g",
}
ALPHA = 0.05


def write_reports(out: Path, base: TrainConfig, folds: Folds, configurations: Sequence[Configuration],
                  results: Sequence[RunResult], missing: Sequence[Unit]) -> dict:
    """Every report of the module docstring into `out`; returns the table.json document."""
    present = [c for c in configurations if any(r.unit.configuration == c for r in results)]
    rows = summarise(results, present)
    comparisons = compare_configurations(results, present)
    confusion = pooled_confusion(results, present)
    document = {
        "protocol": protocol(base, folds, results),
        "rows": rows,
        "comparisons": comparisons,
        "pooled_test_confusion": confusion,
        "missing": [{"fold": u.fold, "configuration": u.configuration.name, "seed": u.seed} for u in missing],
        "runs": [{"fold": r.unit.fold, "configuration": r.unit.configuration.name, "seed": r.unit.seed,
                  "run": str(r.run), **r.figures} for r in results],
    }
    write_atomic(out / "table.json", json.dumps(document, indent=2) + "\n")
    write_atomic(out / "table.md", table_markdown(document) + "\n")
    write_atomic(out / "README.md", reading(document, read_provenance(out)) + "\n")
    plot_figure2(results, present, out / "fig2.png")
    plot_folds(results, present, folds, len(document["protocol"]["emotions"]), out / "folds.png")
    plot_weights(results, present, out / "weights.png")
    for name, matrix in confusion.items():
        counts = np.asarray(matrix)
        plot_confusion(matrix, document["protocol"]["emotions"], out / f"confusion-{name}.png",
                       f"{name}: test, pooled over {len(runs_of(results, name))} runs ({counts.sum()} predictions)")
    return document


def protocol(base: TrainConfig, folds: Folds, results: Sequence[RunResult]) -> dict:
    # The classes come from the shards (fit sets them): read them from a run rather than the base config.
    emotions = read_run_config(results[0].run)["train"]["emotions"] if results else list(base.emotions)
    return {"split": base.split, "family": folds.family, "folds": list(folds.splits), "emotions": emotions,
            "model": base.model,
            "epochs": base.epochs, "batch_size": base.batch_size, "lr": base.lr, "lr_step": base.lr_step,
            "seeds": sorted({r.unit.seed for r in results}), "select": base.select}


def runs_of(results: Sequence[RunResult], name: str) -> list[RunResult]:
    return [r for r in results if r.unit.configuration.name == name]


def summarise(results: Sequence[RunResult], configurations: Sequence[Configuration]) -> list[dict]:
    table = []
    for configuration in configurations:
        mine = runs_of(results, configuration.name)
        row: dict = {"name": configuration.name, "modalities": MODALITY_NAMES[configuration.modality],
                     "weighting": configuration.weighting, "runs": len(mine),
                     "folds": sorted({r.unit.fold for r in mine}), "seeds": sorted({r.unit.seed for r in mine})}
        for column in COLUMNS:
            row[column], row[f"{column}_std"] = mean_and_std([r.figures[column] for r in mine])
        table.append(row)
    return table


def compare_configurations(results: Sequence[RunResult], configurations: Sequence[Configuration]) -> list[dict]:
    """Every pair (A, B) and every COMPARED figure: B - A over the (fold, seed) pairs both have."""
    by_unit = {(r.unit.configuration.name, r.unit.fold, r.unit.seed): r.figures for r in results}
    comparisons = []
    for figure, higher_is_better in COMPARED.items():
        family = []
        for a, b in combinations([c.name for c in configurations], 2):
            keys = sorted({(f, s) for (n, f, s) in by_unit if n == a} & {(f, s) for (n, f, s) in by_unit if n == b})
            entry = {"figure": figure, "higher_is_better": higher_is_better, "a": a, "b": b, "n": len(keys),
                     "folds": len({f for f, _ in keys})}
            if len(keys) >= 2:
                first = [by_unit[(a, *k)][figure] for k in keys]
                second = [by_unit[(b, *k)][figure] for k in keys]
                result = compare_paired(first, second)
                entry.update(mean_difference=result.mean_difference, ci_low=result.ci_low, ci_high=result.ci_high,
                             p=result.p_value, test=result.test, smallest_p=smallest_p(len(keys)),
                             p_fold=fold_level_p(keys, first, second))
            family.append(entry)
        tested = [e for e in family if "p" in e]
        for entry, adjusted in zip(tested, holm([e["p"] for e in tested])):
            entry["p_holm"] = adjusted
            entry["holds"] = adjusted < ALPHA and (entry["ci_low"] > 0 or entry["ci_high"] < 0)
        comparisons += family
    return comparisons


def fold_level_p(keys: Sequence[tuple[str, int]], first: Sequence[float], second: Sequence[float]) -> float | None:
    """The sign-flip p on the per-fold mean differences (seeds averaged); None with under 2 folds."""
    per_fold: dict[str, list[float]] = {}
    for (fold, _), x, y in zip(keys, first, second):
        per_fold.setdefault(fold, []).append(y - x)
    if len(per_fold) < 2:
        return None
    return sign_flip_test([statistics.fmean(d) for d in per_fold.values()])[0]


def pooled_confusion(results: Sequence[RunResult], configurations: Sequence[Configuration]) -> dict[str, list]:
    """Test confusion summed over every fold and seed (an utterance counts once per seed)."""
    return {c.name: np.sum([r.test_confusion for r in runs_of(results, c.name)], axis=0).tolist()
            for c in configurations}


# ---------------------------------------------------------------------------------------------
# text


def cell(row: dict, column: str, percent: bool = False) -> str:
    """mean ± std over runs; the mean alone for one run, where a std of 0 would say nothing."""
    scale, digits = (100, 1) if percent else (1, 3 if column.startswith("w_") else 2)
    mean = f"{scale * row[column]:.{digits}f}"
    if row["runs"] == 1:
        return mean
    return f"{mean} ± {scale * row[f'{column}_std']:.{digits}f}"


def describe_protocol(p: dict) -> str:
    where = (f"split family `{p['family']}` ({len(p['folds'])} folds: {', '.join(p['folds'])})" if p["family"]
             else f"split `{p['split']}`")
    return (f"{where}, model `{p['model']}`, {p['epochs']} epoch(s), batch {p['batch_size']}, lr {p['lr']:g} "
            f"(step {p['lr_step']}), seeds {p['seeds']}; best checkpoint by validation {p['select']}")


def table_markdown(document: dict) -> str:
    p, rows = document["protocol"], document["rows"]
    header = ("| configuration | modalities | runs | w_emotion | val NLL, weighted sum (paper) | val L_e + L_g "
              "| test L_e + L_g | test WA % | test UA % | test F1 % | test gender % | best epoch |")
    lines = [
        f"# Table 1, {'cross-validated' if p['family'] else 'one split'}",
        "",
        describe_protocol(p) + ".",
        "",
        ("Each cell: mean ± std over the configuration's runs (folds x seeds)"
         if any(row["runs"] > 1 for row in rows) else "Each cell: the configuration's one run")
        + "; test = each fold's held-out part.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['modalities']} | {row['runs']} | {cell(row, 'w_emotion')} "
            f"| {cell(row, 'val_nll_weighted_sum')} | {cell(row, 'val_unweighted_nll')} "
            f"| {cell(row, 'test_unweighted_nll')} | {cell(row, 'test_emotion_wa', True)} "
            f"| {cell(row, 'test_emotion_ua', True)} | {cell(row, 'test_emotion_f1', True)} "
            f"| {cell(row, 'test_gender_acc', True)} | {cell(row, 'best_epoch')} |")
    if document["missing"]:
        lines += ["", f"**Incomplete**: {len(document['missing'])} run(s) not finished and left out: "
                  + ", ".join(f"{m['fold']} {m['configuration']} seed {m['seed']}" for m in document["missing"])
                  + ". Comparisons use only the (fold, seed) pairs both configurations have."]
    lines += comparison_markdown(document["comparisons"], "test_emotion_ua")
    lines += ["", "## What holds", ""] + verdicts(document["comparisons"])
    lines += ["", "## Pooled test confusion matrices (rows true, columns predicted; every fold and seed)", ""]
    emotions = p["emotions"]
    for name, matrix in document["pooled_test_confusion"].items():
        lines += [f"**{name}**", "", "| true \\ predicted | " + " | ".join(emotions) + " | recall |",
                  "|---|" + "---|" * (len(emotions) + 1)]
        for label, counts in zip(emotions, matrix):
            recall = f"{counts[emotions.index(label)] / sum(counts):.0%}" if sum(counts) else "-"
            lines.append(f"| {label} | " + " | ".join(str(n) for n in counts) + f" | {recall} |")
        lines.append("")
    lines += ["Every figure's comparisons, with the runs' own figures, are in table.json."]
    return "\n".join(lines)


def comparison_markdown(comparisons: Sequence[dict], figure: str) -> list[str]:
    mine = [c for c in comparisons if c["figure"] == figure]
    tested = [c for c in mine if "p" in c]
    lines = ["", f"## Paired comparisons: {FIGURE_NAMES[figure]}", ""]
    if not tested:
        return lines + ["No two configurations share two or more (fold, seed) runs: nothing can be tested."]
    first = tested[0]
    lines += [
        f"B - A on the same folds and seeds, in points; 95 % paired bootstrap interval of the mean difference; "
        f"p from the {first['test']}, Holm-adjusted over the {len(tested)} comparisons; `fold p`: the same test on "
        f"the per-fold differences averaged over seeds. With {first['n']} pairs the smallest attainable p is "
        f"{first['smallest_p']:.3g}.",
        "",
        "| A | B | pairs | B - A | 95 % CI | p | p (Holm) | fold p | holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in tested:
        fold_p = "-" if c["p_fold"] is None else f"{c['p_fold']:.3g}"
        lines.append(f"| {c['a']} | {c['b']} | {c['n']} | {100 * c['mean_difference']:+.1f} "
                     f"| {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f} | {c['p']:.3g} | {c['p_holm']:.3g} "
                     f"| {fold_p} | {'yes' if c['holds'] else 'no'} |")
    return lines


def verdicts(comparisons: Sequence[dict]) -> list[str]:
    """One sentence per compared figure: the differences that hold, and that the rest do not."""
    lines = []
    for figure, higher_is_better in COMPARED.items():
        tested = [c for c in comparisons if c["figure"] == figure and "p" in c]
        name = FIGURE_NAMES[figure]
        if not tested:
            lines.append(f"- {name}: not tested (fewer than two shared runs per pair).")
            continue
        scale, unit, digits = (1, "", 3) if figure.endswith("nll") else (100, " points", 1)
        held = []
        for c in (c for c in tested if c["holds"]):
            b_better = (c["mean_difference"] > 0) == higher_is_better
            winner, loser = (c["b"], c["a"]) if b_better else (c["a"], c["b"])
            held.append(f"{winner} over {loser} by {scale * abs(c['mean_difference']):.{digits}f}{unit} "
                        f"(B - A = {c['b']} - {c['a']}: 95 % CI {scale * c['ci_low']:+.{digits}f} to "
                        f"{scale * c['ci_high']:+.{digits}f}, Holm p {c['p_holm']:.3g}"
                        + fold_caveat(c) + ")")
        rest = len(tested) - len(held)
        best = min(tested, key=lambda c: c["p_holm"])
        if held:
            lines.append(f"- {name}: holds: " + "; ".join(held) + "."
                         + (f" The other {rest} difference(s) do not hold." if rest else ""))
        else:
            lines.append(f"- {name}: no difference holds among the {len(tested)} comparison(s) (smallest Holm-adjusted "
                         f"p {best['p_holm']:.3g}, {best['a']} vs {best['b']}; the smallest attainable raw p with "
                         f"{best['n']} pairs is {best['smallest_p']:.3g}).")
    return lines


def fold_caveat(comparison: dict) -> str:
    """Where the runs agree but the folds cannot confirm it (the fold-level p is the stricter test)."""
    p_fold = comparison.get("p_fold")
    if p_fold is None or p_fold < ALPHA:
        return ""
    folds = comparison["folds"]
    floor = smallest_p(folds)
    why = f" (with {folds} folds it cannot be: the smallest attainable is {floor:.3g})" if floor >= ALPHA else ""
    return f"; but fold by fold p = {p_fold:.3g}, not below {ALPHA}{why}: the folds do not confirm it"


def ranking(rows: Sequence[dict], column: str) -> list[str]:
    return [row["name"] for row in sorted(rows, key=lambda r: r[column])]


def reading(document: dict, provenance: Sequence[dict]) -> str:
    """Who wins what, whether the paper's criterion misleads, and how to regenerate the table."""
    rows = document["rows"]

    def best(column: str, higher: bool) -> str:
        row = (max if higher else min)(rows, key=lambda r: r[column])
        return f"{row['name']} ({row[column]:.3f})"

    weighted = ranking(rows, "val_nll_weighted_sum")
    unweighted = ranking(rows, "val_unweighted_nll")
    lines = [
        "# Reading the table",
        "",
        describe_protocol(document["protocol"]) + ".",
        "",
        "See table.md for the figures and the paired tests, fig2.png, folds.png and weights.png for the curves.",
        "Means over runs; whether a difference is more than noise is for table.md's tests to say.",
        "",
        f"- Lowest validation NLL, weighted as in the paper: {best('val_nll_weighted_sum', False)}.",
        f"- Lowest validation L_e + L_g (unweighted): {best('val_unweighted_nll', False)}.",
        f"- Best test emotion UA: {best('test_emotion_ua', True)}; best test WA: {best('test_emotion_wa', True)}; "
        f"best test macro-F1: {best('test_emotion_f1', True)}.",
        f"- Best test gender accuracy: {best('test_gender_acc', True)}.",
        "",
        f"Ranking by the paper's weighted NLL: {', '.join(weighted)}.",
        f"Ranking by the unweighted L_e + L_g: {', '.join(unweighted)}.",
        "",
        ("The two rankings agree." if weighted == unweighted else
         "The two rankings disagree: the weighted figure rewards runs whose weights moved toward the easier "
         "task, so compare configurations on the unweighted NLL and the accuracies."),
        "",
        "## Regenerating",
        "",
        "Each invocation that trained or collected into this folder (provenance.jsonl has the environment of each: "
        "package versions, git commit, device):",
        "",
    ]
    for record in provenance:
        git = record["environment"]["git"]
        commit = f"{git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}" if git["commit"] else "?"
        lines.append(f"- {record['time']}, commit {commit}, mode {record['mode']}: `{record['command']}`")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# figures


def colours(configurations: Sequence[Configuration]) -> dict[str, str]:
    """One colour per configuration in every figure."""
    return {c.name: f"C{i}" for i, c in enumerate(configurations)}


def curve_band(runs: Sequence[RunResult], part: str, key: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Epochs every run has, and the mean and std over the runs of `key` on `part` at each."""
    per_run = [{row["epoch"]: row[key] for row in r.rows if row["part"] == part} for r in runs]
    epochs = sorted(set.intersection(*(set(values) for values in per_run))) if per_run else []
    values = np.array([[values[e] for e in epochs] for values in per_run], dtype=np.float64)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(len(epochs))
    return epochs, values.mean(axis=0) if len(values) else values, std


def plot_figure2(results: Sequence[RunResult], configurations: Sequence[Configuration], path: Path) -> None:
    """Joint loss against epoch (train and validation; static vs dynamic; unimodal vs multimodal), the
    unweighted L_e + L_g of every configuration, and the weights: means over folds and seeds, band +- 1 std."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = [c.name for c in configurations]
    colour = colours(configurations)
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
                epochs, mean, std = curve_band(runs_of(results, name), part, key)
                axis.plot(epochs, mean, style, color=colour[name], label=f"{name} {part}")
                axis.fill_between(epochs, mean - std, mean + std, color=colour[name], alpha=0.12, linewidth=0)
        axis.set_title(f"{title}\n(dashed: train, solid: validation; band: ± 1 std over runs)", fontsize=9)
        axis.set(xlabel="epoch", ylabel=key.replace("_", " "))
        if chosen:  # a panel may have none of its configurations in this experiment
            axis.legend(fontsize=7)
    weights_axis = axes[3]
    for name in names:
        epochs, mean, std = curve_band(runs_of(results, name), "val", "w_emotion")
        weights_axis.plot(epochs, mean, color=colour[name], label=name)
        weights_axis.fill_between(epochs, mean - std, mean + std, color=colour[name], alpha=0.12, linewidth=0)
    weights_axis.axhline(0.5, color="grey", linewidth=0.5)
    weights_axis.set(title="task weights (w_gender = 1 - w_emotion)", xlabel="epoch", ylabel="w_emotion")
    weights_axis.legend(fontsize=7)
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"means over folds and seeds ({len({(r.unit.fold, r.unit.seed) for r in results})} runs "
                 "per configuration at most)", fontsize=9)
    save_figure(fig, path)


def plot_folds(results: Sequence[RunResult], configurations: Sequence[Configuration], folds: Folds,
               classes: int, path: Path) -> None:
    """Test UA of each configuration on each fold (mean over seeds, seeds as dots), one line per configuration."""
    from matplotlib.figure import Figure

    colour = colours(configurations)
    fig = Figure(figsize=(max(6.0, 1.4 * len(folds.splits) + 3), 4.5), layout="constrained")
    axis = fig.subplots()
    positions = {fold: i for i, fold in enumerate(folds.splits)}
    for configuration in configurations:
        mine = runs_of(results, configuration.name)
        xs = [positions[r.unit.fold] for r in mine]
        axis.scatter(xs, [100 * r.figures["test_emotion_ua"] for r in mine], s=12, color=colour[configuration.name],
                     alpha=0.5)
        means = [(positions[f], 100 * statistics.fmean(r.figures["test_emotion_ua"] for r in mine if r.unit.fold == f))
                 for f in folds.splits if any(r.unit.fold == f for r in mine)]
        axis.plot([x for x, _ in means], [y for _, y in means], "-o", color=colour[configuration.name],
                  label=configuration.name)
    axis.axhline(100 / classes, color="grey", linewidth=0.5, linestyle=":", label="chance")
    axis.set_xticks(range(len(folds.splits)), folds.splits)
    axis.set(xlabel="fold (held-out test part)", ylabel="test emotion UA %",
             title="each configuration on each fold (line: mean over seeds; dots: seeds)")
    axis.legend(fontsize=7)
    save_figure(fig, path)


def plot_weights(results: Sequence[RunResult], configurations: Sequence[Configuration], path: Path) -> None:
    """w_emotion against epoch: every run thin, the configuration's mean thick."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    colour = colours(configurations)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    axis = fig.subplots()
    for configuration in configurations:
        mine = runs_of(results, configuration.name)
        for r in mine:
            rows = [row for row in r.rows if row["part"] == "train"]
            axis.plot([row["epoch"] for row in rows], [row["w_emotion"] for row in rows],
                      color=colour[configuration.name], linewidth=0.6, alpha=0.35)
        epochs, mean, _ = curve_band(mine, "train", "w_emotion")
        axis.plot(epochs, mean, color=colour[configuration.name], linewidth=2, label=configuration.name)
    axis.axhline(0.5, color="grey", linewidth=0.5)
    axis.set(xlabel="epoch", ylabel="w_emotion (w_gender = 1 - w_emotion)",
             title="task weights of every run (thin) and their mean (thick)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=7)
    save_figure(fig, path)

"""The paper's Table 1 and Figure 2, cross-validated: every fold x configuration x seed, then paired tests.

`--split` names one split of SHARDS/splits.json (`paper`) or a family of folds: every split named
`<family>-<k>` (`loso` -> loso-1 .. loso-5; another corpus's recipe may define `actor-1 .. actor-6`).
Every (fold, configuration, seed) is an ordinary `emotrain fit` run folder, DIR/<fold>/<name>/seed-<s>/
(DIR/<name>/seed-<s>/ for a single split); its best checkpoint (chosen on validation, never on the last
batch) is scored on validation and test. A run that finished and was scored is not trained again; one
that was interrupted is resumed.

Three modes, so the runs can be spread over GPUs or machines sharing DIR:
  all      train what is missing, then write the reports (the default);
  train    train and score only the units asked for (`--folds 1,3`, `--configs ...`), no reports;
  collect  train nothing: gather the finished runs and write the reports, naming what is missing.

The reports (emotrain.experiment_report): table.md / table.json with each figure's mean and std over
folds x seeds and paired tests between configurations on the same folds and seeds, README.md, the
figures. DIR/provenance.jsonl records every invocation's command and environment.

The paper compares configurations on the validation NLL *weighted by each run's own task weights*.
That figure falls when the dynamic weights move toward the easier task (gender) even if nothing is
learnt better, so the table also carries the unweighted L_e + L_g and the accuracies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import click

from emotrain.checkpoint import load_checkpoint
from emotrain.config import ConfigError, TrainConfig, check_same_run, read_run_config
from emotrain.data import ShardsError, Sources, as_sources, fetch_policy, read_splits
from emotrain.evaluate import evaluate_run
from emotrain.experiment_plan import CONFIGURATIONS, Configuration, Folds, RunResult, Unit, plan_units
from emotrain.experiment_report import write_reports
from emotrain.metrics_log import read_metrics
from emotrain.provenance import record_invocation
from emotrain.train import fit

MODES = ("all", "train", "collect")


def resolve_folds(shards: Sources, split: str, chosen: Sequence[str] = ()) -> Folds:
    """`split` as one split of splits.json or as the family of `<split>-<k>` splits; `chosen` picks folds.

    A fold in `chosen` is its number k or its full name. The (first) shard set's splits.json is
    read wherever it is (a folder or a URL prefix), as fit reads it.
    """
    source = as_sources(shards)[0]
    splits_file = source.url_of("splits.json")
    names = list(read_splits(source, fetch_policy()).splits)
    pattern = re.compile(rf"{re.escape(split)}-(\d+)")
    members = sorted((int(m.group(1)), name) for name in names if (m := pattern.fullmatch(name)))
    if split in names:
        if chosen:
            raise ConfigError(f"--folds needs a family of folds, but {split!r} is a single split of {splits_file}")
        return Folds(None, (split,))
    if not members:
        families = sorted({name.rsplit("-", 1)[0] for name in names if re.fullmatch(r".+-\d+", name)})
        raise ShardsError(f"{splits_file}: no split {split!r} and no folds {split}-1, {split}-2, ...; splits: "
                          f"{', '.join(names) or 'none'}; families: {', '.join(families) or 'none'}")
    folds = tuple(name for _, name in members)
    if not chosen:
        return Folds(split, folds)
    picked = []
    for item in chosen:
        name = f"{split}-{item}" if item.isdigit() else item
        if name not in folds:
            raise ConfigError(f"--folds {item}: {split!r} has the folds {', '.join(folds)}")
        picked.append(name)
    return Folds(split, tuple(f for f in folds if f in picked))


def unit_config(base: TrainConfig, out: Path, folds: Folds, unit: Unit) -> TrainConfig:
    prefix = out if folds.family is None else out / unit.fold
    return replace(base, out=str(prefix / unit.configuration.name / f"seed-{unit.seed}"), split=unit.fold,
                   seed=unit.seed, modality=unit.configuration.modality, weighting=unit.configuration.weighting)


def run_experiment(base: TrainConfig, out: Path, seeds: int, configurations: Sequence[Configuration] = CONFIGURATIONS,
                   *, folds: Sequence[str] = (), mode: str = "all", command: str = "",
                   echo: Callable[[str], None] = click.echo) -> list[RunResult]:
    """Train (unless collecting) and score every unit; write the reports (unless only training).

    Returns the scored runs; in collect mode the missing ones are reported by echo and in table.md.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = Path(out)
    resolved = resolve_folds(base.shards, base.split, folds)
    units = plan_units(resolved, configurations, base.seed, seeds)
    out.mkdir(parents=True, exist_ok=True)
    record_invocation(out, command=command, mode=mode, device=base.device, units=len(units))

    results: list[RunResult] = []
    missing: list[Unit] = []
    for number, unit in enumerate(units, start=1):
        cfg = unit_config(base, out, resolved, unit)
        if mode == "collect":
            if not is_finished(cfg):
                missing.append(unit)
                continue
            status = "collected"
        else:
            status = train_or_reuse(cfg, echo)
        result = score_run(unit, cfg)
        results.append(result)
        echo(f"[{number}/{len(units)}] {unit.fold} {unit.configuration.name} seed {unit.seed}: {status}; "
             f"val UA {result.figures['val_emotion_ua']:.3f}, test UA {result.figures['test_emotion_ua']:.3f}, "
             f"test gender {result.figures['test_gender_acc']:.3f}, "
             f"w = {result.figures['w_emotion']:.2f}/{result.figures['w_gender']:.2f}")
    for unit in missing:
        echo(f"missing: {unit.fold} {unit.configuration.name} seed {unit.seed} (not trained or not finished)")
    if mode != "train":
        if not results:
            raise ConfigError(f"{out}: none of the {len(units)} runs has finished; nothing to collect")
        write_reports(out, base, resolved, configurations, results, missing)
    return results


def is_finished(cfg: TrainConfig) -> bool:
    """The run holds cfg.epochs epochs (or more) and a best checkpoint; a run trained with other options
    is refused (ConfigError naming them), never reused or collected."""
    run = Path(cfg.out)
    if not ((run / "last.pt").is_file() and (run / "best.pt").is_file()):
        return False
    check_same_run(read_run_config(run), cfg, str(run / "config.json"))
    return load_checkpoint(run / "last.pt")["epoch"] >= cfg.epochs


def train_or_reuse(cfg: TrainConfig, echo: Callable[[str], None]) -> str:
    """Fit the run unless it already finished; resume it if it was interrupted."""
    last = Path(cfg.out) / "last.pt"
    if not last.exists():
        fit(cfg, echo=lambda message: None)
        return "trained"
    if is_finished(cfg):
        return "reused"
    echo(f"resuming {cfg.out} after epoch {load_checkpoint(last)['epoch']}")
    fit(cfg, resume=True, echo=lambda message: None)
    return "resumed"


def score_run(unit: Unit, cfg: TrainConfig) -> RunResult:
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
        "test_unweighted_nll": test["unweighted_nll"],
        "best_epoch": float(val["epoch"]),
    }
    for part, metrics in scored.items():
        for key in ("emotion_wa", "emotion_ua", "emotion_f1", "gender_acc"):
            figures[f"{part}_{key}"] = metrics[key]
    return RunResult(unit, run, figures, read_metrics(run), test["confusion"])

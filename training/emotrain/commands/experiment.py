"""`emotrain experiment`: the paper's Table 1 and Figure 2 over every fold, with paired tests."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import click

from emotrain.checkpoint import CheckpointError
from emotrain.commands.options import shards_option
from emotrain.config import DEVICES, MODEL_NAMES, ConfigError, TrainConfig
from emotrain.data import SampleError, ShardsError
from emotrain.experiment import CONFIGURATIONS, run_experiment
from emotrain.train import NonFiniteLoss

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
NAMES = [c.name for c in CONFIGURATIONS]


def split_folds(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    folds = tuple(item.strip() for item in value.split(",") if item.strip())
    if not folds:
        raise click.BadParameter("give fold numbers or names separated by commas, e.g. 1,3")
    return folds


def full_command(ctx: click.Context) -> str:
    """The invocation with every option spelled out (defaults too), so it regenerates the same runs."""
    words = ["emotrain", ctx.info_name or "experiment"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name not in ctx.params:
            continue
        value, flag = ctx.params[param.name], param.opts[0]
        if param.is_flag:
            words += [flag] if value else []
        elif param.multiple:
            for item in value:
                words += [flag, str(item)]
        elif param.name == "folds":
            words += [flag, ",".join(value)] if value else []
        elif value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


@click.command()
@shards_option(required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Experiment folder: one fit run per fold, configuration and seed, plus the reports.")
@click.option("--split", default="paper", show_default=True,
              help="A split in splits.json (paper), or a family of folds: loso runs loso-1, loso-2, ...")
@click.option("--folds", default=None, callback=split_folds,
              help="Only these folds of the family, by number or name: 1,3 or loso-1,loso-3 (default: all).")
# One network for every row (the paper's Table 1 compares modalities and weightings within one model),
# so not fit's per-modality default.
@click.option("--model", type=click.Choice(MODEL_NAMES), default="paper", show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Seeds per fold and configuration (--seed, --seed + 1, ...).")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="First seed.")
@click.option("--configs", "names", multiple=True, type=click.Choice(NAMES),
              help="Train only these configurations (repeatable; default: all six).")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS["batch_size"], show_default=True)
@click.option("--lr", type=float, default=None, help="Default: 1e-3 for --model speech, 1e-4 otherwise.")
@click.option("--lr-step", type=click.IntRange(1), default=DEFAULTS["lr_step"], show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULTS["device"], show_default=True)
@click.option("--workers", type=click.IntRange(0), default=DEFAULTS["workers"], show_default=True)
@click.option("--visual-weights", default=None, help="imagenet, or a path to ResNet-50 weights (default: random).")
@click.option("--train-only", is_flag=True,
              help="Train and score this process's runs, write no reports (to spread runs over machines).")
@click.option("--collect", is_flag=True,
              help="Train nothing: gather the finished runs into the reports, naming the missing ones.")
@click.pass_context
def experiment(ctx: click.Context, shards: str, out: str, seeds: int, names: tuple[str, ...], folds: tuple[str, ...],
               train_only: bool, collect: bool, **options) -> None:
    """Train UM-dynamic-A, UM-dynamic-V, MM-static, MM-dynamic (the paper's Table 1) and
    MM-uncertainty, MM-dwa on every fold of --split with the same data, epochs and seeds; write
    OUT/table.md (mean ± std over folds and seeds, paired tests), table.json, README.md,
    fig2.png, folds.png, weights.png, confusion-<name>.png, and append the command and
    environment to OUT/provenance.jsonl. Finished runs are reused, interrupted ones resumed.

    \b
    Examples:
      emotrain experiment --shards shards --out runs/loso --split loso --model small --epochs 8
      emotrain experiment --shards shards --out runs/loso --split loso --epochs 30 --seeds 3 --device cuda
      emotrain experiment --shards shards --out runs/table1 --split paper --configs MM-static --configs MM-dynamic
    \b
    Spread over machines sharing OUT (one fold per process), then gather:
      emotrain experiment --shards shards --out runs/loso --split loso --folds 1 --train-only --device cuda
      emotrain experiment --shards shards --out runs/loso --split loso --collect
    """
    if train_only and collect:
        raise click.UsageError("--train-only and --collect exclude each other")
    mode = "train" if train_only else "collect" if collect else "all"
    chosen = [c for c in CONFIGURATIONS if not names or c.name in names]
    try:
        base = TrainConfig(shards=shards, out=out, **options)
        results = run_experiment(base, Path(out), seeds, chosen, folds=folds, mode=mode, command=full_command(ctx))
    except (ConfigError, ShardsError, SampleError, CheckpointError, NonFiniteLoss) as exn:
        raise click.ClickException(str(exn)) from exn
    runs = f"{len(results)} run(s) of {len(chosen)} configuration(s) x {seeds} seed(s)"
    if mode == "train":
        click.echo(f"{runs} trained and scored in {out}/; gather them with --collect")
        return
    click.echo((Path(out) / "table.md").read_text(encoding="utf-8"))
    click.echo(f"{runs}: reports in {out}/ (table.md, table.json, README.md, fig2.png, folds.png, weights.png)")

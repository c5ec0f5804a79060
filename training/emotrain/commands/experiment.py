"""`emotrain experiment`: the paper's Table 1 and Figure 2, plus two alternative weightings."""

from __future__ import annotations

import dataclasses
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


@click.command()
@shards_option(required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Experiment folder: one fit run per configuration and seed, plus the reports.")
@click.option("--split", default="paper", show_default=True, help="Split in splits.json.")
@click.option("--model", type=click.Choice(MODEL_NAMES), default=DEFAULTS["model"], show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Seeds per configuration (--seed, --seed + 1, ...): the table shows mean ± std.")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="First seed.")
@click.option("--configs", "names", multiple=True, type=click.Choice(NAMES),
              help="Train only these configurations (repeatable; default: all six).")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS["batch_size"], show_default=True)
@click.option("--lr", type=float, default=DEFAULTS["lr"], show_default=True)
@click.option("--lr-step", type=click.IntRange(1), default=DEFAULTS["lr_step"], show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULTS["device"], show_default=True)
@click.option("--workers", type=click.IntRange(0), default=DEFAULTS["workers"], show_default=True)
@click.option("--visual-weights", default=None, help="imagenet, or a path to ResNet-50 weights (default: random).")
def experiment(shards: str, out: str, seeds: int, names: tuple[str, ...], **options) -> None:
    """Train UM-dynamic-A, UM-dynamic-V, MM-static, MM-dynamic (the paper's Table 1) and
    MM-uncertainty, MM-dwa with the same data, epochs and seeds; write OUT/table1.md,
    OUT/table1.json, OUT/fig2.png and OUT/README.md. Finished runs are reused, interrupted ones resumed.

    \b
    Examples:
      emotrain experiment --shards shards --out runs/table1 --model small --epochs 8
      emotrain experiment --shards shards --out runs/table1 --epochs 30 --seeds 3 --device cuda
      emotrain experiment --shards shards --out runs/loso1 --split loso-1 --configs MM-static --configs MM-dynamic
    """
    chosen = [c for c in CONFIGURATIONS if not names or c.name in names]
    try:
        base = TrainConfig(shards=shards, out=out, **options)
        table = run_experiment(base, Path(out), seeds, chosen)
    except (ConfigError, ShardsError, SampleError, CheckpointError, NonFiniteLoss) as exn:
        raise click.ClickException(str(exn)) from exn
    click.echo((Path(out) / "table1.md").read_text(encoding="utf-8"))
    click.echo(f"{len(table)} configurations x {seeds} seed(s): reports in {out}/ (table1.md, table1.json, "
               "fig2.png, README.md)")

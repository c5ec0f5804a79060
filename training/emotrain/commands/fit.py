"""`emotrain fit`: train the model on one split of a shard folder."""

from __future__ import annotations

import os

import click

from emotrain import train
from emotrain.checkpoint import CheckpointError
from emotrain.commands.options import DEFAULTS, shards_option, training_options
from emotrain.config import WEIGHTINGS, ConfigError, TrainConfig
from emotrain.data import MODALITIES, SampleError, ShardsError


def parse_weights(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        emotion, gender = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give two numbers, emotion,gender (e.g. 0.5,0.5)") from None
    return emotion, gender


@click.command()
@shards_option(required=True)
@click.option("--split", required=True, help="Split in the shards' splits.json: paper, loso-1..5 (IEMOCAP), "
                                             "actor-1.. (CREMA-D, RAVDESS); `emoprep inspect SHARDS` lists them.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option("--modality", type=click.Choice(MODALITIES), default=DEFAULTS["modality"], show_default=True,
              help="av: audio + video; a: audio only; v: video only.")
@click.option("--weighting", type=click.Choice(WEIGHTINGS), default=DEFAULTS["weighting"], show_default=True,
              help="Joint loss weighting; dynamic is the paper's.")
@click.option("--static-weights", default="0.5,0.5", show_default=True, callback=parse_weights,
              help="emotion,gender weights for --weighting static.")
@training_options
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
def fit(resume: bool, **options) -> None:
    """Train the emotion + gender model on one split; write checkpoints and metrics to --out.

    \b
    Writes OUT/config.json, OUT/last.pt, OUT/best.pt, OUT/metrics.jsonl, OUT/metrics.csv
    and OUT/curves.png (and OUT/tensorboard/ with --tensorboard). Several processes (GPUs,
    or CPU with gloo) with torchrun.

    \b
    Examples:
      emotrain fit --shards shards --split paper --out runs/av-dynamic
      emotrain fit --shards shards --split loso-1 --out runs/a-uncert --modality a --weighting uncertainty
      emotrain fit --shards shards --split paper --out runs/av-dynamic --epochs 30 --resume
      emotrain fit --shards shards --split paper --out runs/av-dynamic --tensorboard
      emotrain fit --shards http://data:8000/iemocap/ --shards s3://corpora/msp/@0.5 --split paper --out runs/mix
      emotrain fit --shards shards --split paper --out runs/gpu --device cuda --decode-frames device
      torchrun --nproc_per_node 4 -m emotrain.cli fit --shards shards --split paper --out runs/ddp
    """
    try:
        result = train.fit(TrainConfig(**options), resume=resume)
    except (ConfigError, ShardsError, SampleError, CheckpointError, train.NonFiniteLoss) as exn:
        raise click.ClickException(str(exn)) from exn
    if os.environ.get("RANK", "0") == "0":
        best = result.best
        best_text = f"best val {best['metric']} {best['value']:.4f} at epoch {best['epoch']}" if best else "no best yet"
        click.echo(f"{result.run}: {result.epochs_done} epochs; {best_text}; "
                   "best.pt, last.pt, metrics.jsonl, metrics.csv, curves.png")

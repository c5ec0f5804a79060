"""`emotrain fit`: train the model on one split of a shard folder."""

from __future__ import annotations

import dataclasses
import os

import click

from emotrain import train
from emotrain.checkpoint import CheckpointError
from emotrain.commands.options import decode_frames_option, shards_option
from emotrain.config import AUDIO_CONVS, DEVICES, MODEL_NAMES, WEIGHTINGS, ConfigError, TrainConfig
from emotrain.data import MODALITIES, SampleError, ShardsError
from emotrain.metrics import SELECTABLE

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def parse_weights(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        emotion, gender = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give two numbers, emotion,gender (e.g. 0.5,0.5)") from None
    return emotion, gender


def parse_select(ctx: click.Context, param: click.Parameter, value: str) -> str:
    metric = value.removeprefix("val_")
    if metric not in SELECTABLE:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(SELECTABLE)}")
    return metric


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
@click.option("--model", type=click.Choice(MODEL_NAMES), default=None,
              help="paper: the paper's network; small: a narrow twin for CPUs and tests; speech: small with a "
                   "log-envelope front end and mean pooling, for real speech (docs/real-speech.md). "
                   "Default: speech for --modality a, paper otherwise.")
@click.option("--audio-conv", type=click.Choice(AUDIO_CONVS), default=DEFAULTS["audio_conv"], show_default=True,
              help="How the 4,000-tap audio convolution is computed.")
@click.option("--visual-weights", default=None, help="imagenet, or a path to ResNet-50 weights (default: random).")
@click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS["batch_size"], show_default=True,
              help="Per process. The paper used 1.")
@click.option("--lr", type=float, default=None, help="Adam's learning rate. Default: 1e-3 for --model speech, 1e-4 otherwise.")
@click.option("--lr-step", type=click.IntRange(1), default=DEFAULTS["lr_step"], show_default=True,
              help="Multiply the learning rate by --lr-gamma every this many epochs.")
@click.option("--lr-gamma", type=float, default=DEFAULTS["lr_gamma"], show_default=True)
@click.option("--grad-clip", type=float, default=DEFAULTS["grad_clip"], show_default=True,
              help="Clip the gradient's global norm to this.")
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULTS["device"], show_default=True)
@click.option("--workers", type=click.IntRange(0), default=DEFAULTS["workers"], show_default=True,
              help="Data loader processes per training process.")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True)
@click.option("--select", default=DEFAULTS["select"], show_default=True, callback=parse_select,
              help=f"Validation metric that picks best.pt, one of {', '.join(SELECTABLE)} (a val_ prefix is "
                   "accepted; losses: lower is better, the others: higher).")
@click.option("--shuffle-buffer", type=click.IntRange(1), default=DEFAULTS["shuffle_buffer"], show_default=True,
              help="Samples in the shuffle buffer (raw, ~0.5 MB each) per loader process.")
@click.option("--tensorboard", is_flag=True,
              help="Also write the metrics as TensorBoard events in OUT/tensorboard/ (tensorboard --logdir OUT).")
@click.option("--augment", default=DEFAULTS["augment"], show_default=True,
              help="Waveform augmentation of training batches (audio modalities), any of "
                   "speed=REL,gain=DB,noise_snr=DB,shift=SECONDS, e.g. speed=0.1,noise_snr=10 (emotrain.augment).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--strict", is_flag=True, help="Stop at the first corrupt sample instead of skipping it.")
@decode_frames_option
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

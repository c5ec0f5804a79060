"""Options several commands share, defined once: where the shards are, how a run trains, how a run is read."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click

from emotrain.config import AUDIO_CONVS, DEVICES, MODEL_NAMES, TrainConfig
from emotrain.data import FRAME_DECODING
from emotrain.metrics import SELECTABLE
from emotrain.sources import parse_source

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
# `emotrain evaluate` and `emotrain predict`: one process reading a run's shards.
READ_WORKERS = 0
READ_BATCH_SIZE = 16

SHARDS_HELP = ("Shard set: a folder written by `emoprep shard`, or a URL prefix (http(s)://, s3://, gs://, "
               "pipe:COMMAND; see docs/streaming.md). Repeat to mix shard sets with the same classes; "
               "LOCATION@WEIGHT weights a set's share in training (default 1: in proportion to its size).")


def check_sources(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Each value parses as LOCATION[@WEIGHT], and a local LOCATION is an existing folder (URLs are read later)."""
    for value in values:
        try:
            source = parse_source(value)
        except ValueError as exn:
            raise click.BadParameter(str(exn)) from None
        folder = Path(source.location.removeprefix("file://"))
        if not source.remote and not folder.is_dir():
            raise click.BadParameter(f"{source.location}: not a folder (nor an http(s)://, s3://, gs:// or "
                                     "pipe: URL prefix)")
    return values


def shards_option(*, required: bool, help: str = SHARDS_HELP) -> Callable:
    """--shards LOCATION[@WEIGHT], repeatable: the value is the tuple of what was given (TrainConfig.shards)."""
    return click.option("--shards", multiple=True, required=required, callback=check_sources,
                        metavar="LOCATION[@WEIGHT]", help=help)


decode_frames_option = click.option(
    "--decode-frames", type=click.Choice(FRAME_DECODING), default="loader", show_default=True,
    help="Where the stacked JPEG frames are decoded: loader (PIL, in the loader workers) or device "
         "(per batch on the training device: nvJPEG on CUDA; frees the workers for fetching and audio).")


def parse_select(ctx: click.Context, param: click.Parameter, value: str) -> str:
    metric = value.removeprefix("val_")
    if metric not in SELECTABLE:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(SELECTABLE)}")
    return metric


# How a run trains, for `fit` and `experiment` alike (each adds what it alone decides: fit the modality
# and weighting, experiment the configurations and seeds). Every name is a TrainConfig field.
TRAINING_OPTIONS = (
    click.option("--model", type=click.Choice(MODEL_NAMES), default=None,
                 help="paper: the paper's network; small: a narrow twin for CPUs and tests; speech: small with a "
                      "log-envelope front end and mean pooling, for real speech (docs/real-speech.md). Default: "
                      "speech for fit --modality a, paper otherwise (experiment: paper, one network for every row)."),
    click.option("--audio-conv", type=click.Choice(AUDIO_CONVS), default=DEFAULTS["audio_conv"], show_default=True,
                 help="How the 4,000-tap audio convolution is computed."),
    click.option("--visual-weights", default=None, help="imagenet, or a path to ResNet-50 weights (default: random)."),
    click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True),
    click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS["batch_size"], show_default=True,
                 help="Per process. The paper used 1."),
    click.option("--lr", type=float, default=None,
                 help="Adam's learning rate. Default: 1e-3 for --model speech, 1e-4 otherwise."),
    click.option("--lr-step", type=click.IntRange(1), default=DEFAULTS["lr_step"], show_default=True,
                 help="Multiply the learning rate by --lr-gamma every this many epochs."),
    click.option("--lr-gamma", type=float, default=DEFAULTS["lr_gamma"], show_default=True),
    click.option("--grad-clip", type=float, default=DEFAULTS["grad_clip"], show_default=True,
                 help="Clip the gradient's global norm to this."),
    click.option("--device", type=click.Choice(DEVICES), default=DEFAULTS["device"], show_default=True),
    click.option("--workers", type=click.IntRange(0), default=DEFAULTS["workers"], show_default=True,
                 help="Data loader processes per training process."),
    click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True,
                 help="Seed of the run (experiment: of its first seed)."),
    click.option("--select", default=DEFAULTS["select"], show_default=True, callback=parse_select,
                 help=f"Validation metric that picks best.pt, one of {', '.join(SELECTABLE)} (a val_ prefix is "
                      "accepted; losses: lower is better, the others: higher)."),
    click.option("--shuffle-buffer", type=click.IntRange(1), default=DEFAULTS["shuffle_buffer"], show_default=True,
                 help="Samples in the shuffle buffer (raw, ~0.5 MB each) per loader process."),
    click.option("--tensorboard", is_flag=True,
                 help="Also write the metrics as TensorBoard events in OUT/tensorboard/ (tensorboard --logdir OUT)."),
    click.option("--augment", default=DEFAULTS["augment"], show_default=True,
                 help="Waveform augmentation of training batches (audio modalities), any of "
                      "speed=REL,gain=DB,noise_snr=DB,shift=SECONDS, e.g. speed=0.1,noise_snr=10 (emotrain.augment)."),
    click.option("--strict", is_flag=True, help="Stop at the first corrupt sample instead of skipping it."),
    decode_frames_option,
)


def training_options(command: Callable) -> Callable:
    """Decorate a command with TRAINING_OPTIONS, in their order."""
    for option in reversed(TRAINING_OPTIONS):
        command = option(command)
    return command


def read_options(command: Callable) -> Callable:
    """--batch-size and --workers for the commands that read a trained run's shards (evaluate, predict)."""
    command = click.option("--workers", type=click.IntRange(0), default=READ_WORKERS, show_default=True,
                           help="Data loader processes.")(command)
    return click.option("--batch-size", type=click.IntRange(1), default=READ_BATCH_SIZE, show_default=True,
                        help="Samples per forward pass.")(command)

"""Options several commands share, defined once: where the shards are, where frames are decoded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from emotrain.data import FRAME_DECODING
from emotrain.sources import parse_source

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

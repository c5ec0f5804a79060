"""`emotrain evaluate`: score a trained run's checkpoint on one part of a split."""

from __future__ import annotations

import click
from shardformat import PARTS

from emotrain.checkpoint import CheckpointError
from emotrain.commands.options import SHARDS_HELP, read_options, shards_option
from emotrain.config import DEVICES, ConfigError
from emotrain.data import SampleError, ShardsError
from emotrain.evaluate import evaluate_run


@click.command()
@click.option("--run", "run", required=True, type=click.Path(exists=True, file_okay=False),
              help="Run folder written by `emotrain fit`.")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a path to a .pt file.")
@click.option("--split", required=True, help="Split in the shards' splits.json: paper, loso-1..5 (IEMOCAP), "
              "actor-1.. (CREMA-D, RAVDESS).")
@click.option("--part", type=click.Choice(PARTS), default="test", show_default=True)
@shards_option(required=False, help=SHARDS_HELP.split(" Repeat")[0] + " Repeat to score several sets as one "
              "(weights are ignored). Default: what the run was trained on.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Metrics JSON to write (default: RUN/eval-<split>-<part>.json); the PNG goes beside it.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@read_options
@click.option("--strict", is_flag=True, help="Stop at the first corrupt sample instead of skipping it.")
def evaluate(run: str, **options) -> None:
    """Score a checkpoint of a run on one part of a split: WA, UA, macro-F1, gender accuracy, NLLs.

    With --shards, on another shard set: another corpus's, made with the same class set
    (`emoprep extract --classes shared`) for a cross-corpus score; other classes are refused.

    \b
    Examples:
      emotrain evaluate --run runs/av-dynamic --split paper
      emotrain evaluate --run runs/crema-d --shards shards-ravdess --split actor-1 --out ravdess.json
      emotrain evaluate --run runs/av-dynamic --split paper --part val --checkpoint last
      emotrain evaluate --run runs/loso-1 --split loso-1 --out results/loso-1/metrics.json
      emotrain evaluate --run runs/av-dynamic --split paper --shards https://data.example.org/iemocap/
    """
    try:
        result = evaluate_run(run, on_skip=lambda message: click.echo(f"skipped {message}", err=True), **options)
    except (ConfigError, ShardsError, SampleError, CheckpointError) as exn:
        raise click.ClickException(str(exn)) from exn
    m = result.metrics
    click.echo(f"{m['split']} {m['part']} ({m['samples']} samples, checkpoint epoch {m['epoch']}"
               + (f", {m['skipped']} skipped" if m["skipped"] else "") + ")")
    click.echo(f"  emotion  WA {m['emotion_wa']:.1%}  UA {m['emotion_ua']:.1%}  macro-F1 {m['emotion_f1']:.3f}  "
               f"NLL {m['emotion_nll']:.4f} (sum {m['emotion_nll_sum']:.1f})")
    click.echo(f"  gender   accuracy {m['gender_acc']:.1%}  NLL {m['gender_nll']:.4f} (sum {m['gender_nll_sum']:.1f})")
    click.echo(f"  joint loss {m['joint_loss']:.4f}  L_e+L_g {m['unweighted_nll']:.4f}")
    click.echo(f"wrote {result.json_path} and {result.png_path}")

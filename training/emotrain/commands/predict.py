"""`emotrain predict`: emotion and gender probabilities for every window of a shard folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from shardformat import PARTS

from emotrain.checkpoint import CheckpointError
from emotrain.commands.options import read_options, shards_option
from emotrain.config import DEVICES, ConfigError
from emotrain.data import Part, ShardsError
from emotrain.predict import DROPS, FILLS, Predictor, WindowPrediction, predict_shards, select_shards
from emotrain.prediction_table import (
    TABLE_SUFFIXES, failed_input_rows, row_order, summarise, video_columns, video_rows, videos_path, window_columns,
    window_rows, write_table, write_timelines,
)

# Exit status: 0 every window predicted; SOME_FAILED some windows failed (named on stderr and in the
# table), the others predicted; 1 nothing predicted or the run/shards unusable.
SOME_FAILED = 3


@click.command()
@click.option("--run", "run", required=True, type=click.Path(exists=True, file_okay=False),
              help="Run folder written by `emotrain fit`.")
@shards_option(required=False, help="Shard set(s) to predict: a folder written by `emoprep shard` (e.g. after "
              "`emoprep extract --corpus clips`) or a URL prefix (docs/streaming.md); repeatable. "
              "Required unless --failed-inputs alone says why nothing was extracted.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("predictions.csv"),
              show_default=True, help="Per-window table, .csv or .parquet; the per-video table goes beside it.")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a path to a .pt file.")
@click.option("--split", default=None, help="Only one split's part of a labelled set (default: every shard).")
@click.option("--part", type=click.Choice(PARTS), default="test", show_default=True, help="The part of --split.")
@click.option("--timeline", is_flag=True, help="Also a PNG per video of the emotion probabilities over time.")
@read_options
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--fill", type=click.Choice(FILLS), default="mean", show_default=True,
              help="What stands in for a missing modality: the branch's mean features (docs/prediction.md), "
                   "or zeros fed to the branch (silence, black frames; for comparison).")
@click.option("--fill-shards", type=click.Path(exists=True, file_okay=False), default=None,
              help="The run's training shards, for the branch means (default: where the run was trained from).")
@click.option("--drop", type=click.Choice(DROPS), default=None,
              help="Predict as if every sample lacked this modality (to measure what a missing one costs).")
@click.option("--failed-inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A CSV of inputs that never became a sample (source,key,start,end,reason; "
                   "`python -m emoprep.failed_inputs WORK OUT.csv` writes it): failed rows in both tables. "
                   "Without --shards (nothing was extracted): tables of failed rows only, exit status 1.")
def predict(run: str, shards: tuple[str, ...], out: Path, checkpoint: str, split: str | None, part: str, timeline: bool,
            batch_size: int, workers: int, device: str, fill: str, fill_shards: str | None, drop: str | None,
            failed_inputs: Path | None) -> None:
    """Predict emotion and gender for every window (sample) of a shard folder; a row per window and per video.

    \b
    Examples:
      emotrain predict --run runs/mm-dynamic --shards my-shards --out predictions.csv --timeline
      emotrain predict --run runs/mm-dynamic --shards shards --split paper --part test --out test.parquet
      emotrain predict --run runs/mm-dynamic --shards shards --split paper --drop video --out no-video.csv
      emotrain predict --run runs/mm-dynamic --failed-inputs failed-inputs.csv --out p.csv  # nothing extracted

    Exit status: 0 when every window was predicted, 3 when some failed (each named on stderr
    and in the table with its reason), 1 when none could be.
    """
    if out.suffix not in TABLE_SUFFIXES:
        raise click.BadParameter(f"{out}: give a .csv or .parquet file", param_hint="--out")
    if not shards and failed_inputs is None:
        raise click.UsageError("give --shards (or --failed-inputs alone, when no input gave a sample)")
    selection: Part | None = None
    predictions: list[WindowPrediction] = []
    try:
        # The run is loaded even with nothing to predict: its classes are the tables' columns.
        predictor = Predictor.from_run(run, checkpoint=checkpoint, device=device, fill=fill, fill_shards=fill_shards)
        if shards:
            selection = select_shards(shards, split, part if split else None)
            with click.progressbar(length=selection.samples, label="predicting", show_pos=True,
                                   file=sys.stderr) as bar:
                predictions = predict_shards(predictor, selection, batch_size=batch_size, workers=workers,
                                             drop=drop, on_window=lambda: bar.update(1))
    except (ConfigError, CheckpointError, ShardsError) as exn:
        raise click.ClickException(str(exn)) from exn
    emotions, genders = predictor.emotions, predictor.genders
    rows = window_rows(predictions, emotions, genders)
    for row in rows:
        if row["status"] == "failed":
            click.echo(f"failed {row['source']}: {row['key'] or '-'}: {row['reason']}", err=True)
    if failed_inputs is not None:  # named on stderr by what wrote the file
        rows = sorted(rows + failed_input_rows(failed_inputs, emotions, genders), key=row_order)
    write_table(rows, window_columns(emotions, genders), out)
    write_table(video_rows(rows, emotions, genders), video_columns(emotions, genders), videos_path(out))
    written = [str(out), str(videos_path(out))]
    if timeline:
        pngs = write_timelines(rows, emotions, out.with_name(f"{out.stem}-timelines"))
        written.append(f"{len(pngs)} timeline(s) in {out.with_name(f'{out.stem}-timelines')}")
    summary = summarise(rows, emotions, genders)
    if selection is not None and selection.emotions and tuple(selection.emotions) != tuple(emotions):
        click.echo(f"note: the shards' classes are {', '.join(selection.emotions)}; the run's "
                   f"{', '.join(emotions)} (probabilities are the run's; labels compared by name)", err=True)
    click.echo(summary.line())
    click.echo(f"wrote {', '.join(written)}")
    if summary.failed == summary.windows:
        raise click.ClickException("no window could be predicted")
    if summary.failed:
        sys.exit(SOME_FAILED)

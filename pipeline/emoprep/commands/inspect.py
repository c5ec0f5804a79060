"""`emoprep inspect`: counts per split and a contact sheet of a shard set."""

from __future__ import annotations

from pathlib import Path

import click

from emoprep.inspection import UnknownSplit, contact_sheet, counts_table
from emoprep.verify import FormatError


@click.command()
@click.argument("shards", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default=None, help="Only this split (paper, loso-1, actor-1, ...); default: all.")
@click.option("--out", default="contact-sheet.png", show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the contact sheet PNG goes.")
@click.option("--per-class", type=click.IntRange(1, 20), default=6, show_default=True,
              help="Samples shown per emotion.")
def inspect(shards: Path, split: str | None, out: Path, per_class: int) -> None:
    """Print the counts of SHARDS by split, part, class and gender, and draw a contact sheet: per
    emotion a row of middle frames (with a faint cross at the crop centre) over waveform strips.

    \b
    Examples:
      emoprep inspect shards
      emoprep inspect shards --split loso-1 --out loso1.png --per-class 8

    \b
    Exit status:
      0  done
      1  SHARDS is not a readable shard set (the damaged shard is named)
      2  bad usage: SHARDS is not a folder, or an unknown --split
    """
    try:
        click.echo(counts_table(shards, split))
        shown = contact_sheet(shards, out, split=split, per_class=per_class)
    except UnknownSplit as err:
        raise click.BadParameter(str(err), param_hint="--split") from err
    except (FormatError, OSError) as err:
        raise click.ClickException(f"{err}; run emoprep verify {shards}") from err
    click.echo(f"contact sheet: {out} ({', '.join(f'{n} {e}' for e, n in shown.items())})")

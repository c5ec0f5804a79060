"""`emoprep corpora`: every recipe, with the label policies, class sets and settings it declares."""

from __future__ import annotations

import click

from emoprep.corpus import RECIPES, recipe_spec


@click.command()
@click.argument("names", nargs=-1, type=click.Choice(RECIPES))
def corpora(names: tuple[str, ...]) -> None:
    """List the corpus recipes (or only NAMES) and the options each one takes.

    \b
    Examples:
      emoprep corpora
      emoprep corpora ravdess
      emoprep labels --corpus ravdess --root /data/RAVDESS --out r.parquet --set copies=audio-only
    """
    for index, name in enumerate(names or RECIPES):
        if index:
            click.echo()
        click.echo(recipe_spec(name).describe())

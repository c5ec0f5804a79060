"""`emoprep extract` (placeholder until its issue lands)."""

import click


@click.command()
def extract() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep extract is not built yet")

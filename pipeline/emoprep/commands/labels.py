"""`emoprep labels` (placeholder until its issue lands)."""

import click


@click.command()
def labels() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep labels is not built yet")

"""`emoprep verify` (placeholder until its issue lands)."""

import click


@click.command()
def verify() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep verify is not built yet")

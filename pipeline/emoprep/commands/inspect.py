"""`emoprep inspect` (placeholder until its issue lands)."""

import click


@click.command()
def inspect() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep inspect is not built yet")

"""`emotrain evaluate` (placeholder until its issue lands)."""

import click


@click.command()
def evaluate() -> None:
    """Not built yet."""
    raise click.ClickException("emotrain evaluate is not built yet")

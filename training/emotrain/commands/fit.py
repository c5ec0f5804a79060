"""`emotrain fit` (placeholder until its issue lands)."""

import click


@click.command()
def fit() -> None:
    """Not built yet."""
    raise click.ClickException("emotrain fit is not built yet")

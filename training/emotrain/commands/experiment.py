"""`emotrain experiment` (placeholder until its issue lands)."""

import click


@click.command()
def experiment() -> None:
    """Not built yet."""
    raise click.ClickException("emotrain experiment is not built yet")

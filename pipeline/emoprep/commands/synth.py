"""`emoprep synth` (placeholder until its issue lands)."""

import click


@click.command()
def synth() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep synth is not built yet")

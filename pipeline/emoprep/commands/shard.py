"""`emoprep shard` (placeholder until its issue lands)."""

import click


@click.command()
def shard() -> None:
    """Not built yet."""
    raise click.ClickException("emoprep shard is not built yet")

"""`emoprep verify`: re-hash and decode a shard set."""

from __future__ import annotations

from pathlib import Path

import click

from emoprep.verify import FormatError, load_index, verify_shards


@click.command()
@click.argument("shards", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify(shards: Path) -> None:
    """Check SHARDS: every shard's size and sha256 against index.json, every sample decoded (json keys
    and format_version, FLAC as 16-bit mono 16 kHz of n_samples, JPEG as n_frames 96x96 frames), and
    splits.json's shard lists and counts against what was read.

    \b
    Examples:
      emoprep verify shards

    \b
    Exit status:
      0  all good
      1  a problem was found (each one is printed with its shard and sample)
      2  bad usage: SHARDS is not a folder
    """
    try:
        length = len(load_index(shards).entries)
    except FormatError:
        length = 0  # verify_shards reports it
    with click.progressbar(length=length, label="Verifying", show_pos=True) as bar:
        report = verify_shards(shards, progress=bar.update)
    for problem in report.problems:
        click.echo(f"PROBLEM {problem}", err=True)
    click.echo(f"{report.shards} shards, {report.samples} samples, {report.bytes / 1e6:.1f} MB, "
               f"{report.seconds / 3600:.2f} h of audio ({report.seconds:.0f} s)")
    if report.problems:
        raise click.ClickException(f"{len(report.problems)} problem(s) in {shards}; re-run emoprep shard")
    click.echo("OK")

"""`emoprep shard`: a WORK folder -> WebDataset shards, splits.json and index.json (format v2)."""

from __future__ import annotations

from pathlib import Path

import click

from emoprep.shard import DEFAULT_MAX_SAMPLES_PER_SHARD, NotAWorkFolder, ShardError, plan_shard_set, write_shards


@click.command()
@click.option("--work", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder `emoprep extract --out` wrote (manifest.parquet, audio/, frames/).")
@click.option("--out", default="shards", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the shards go; an earlier shard set there is replaced.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds a random split's draw (IEMOCAP's paper 60/20/20) and the sample order within shards.")
@click.option("--max-samples-per-shard", type=click.IntRange(min=1), default=DEFAULT_MAX_SAMPLES_PER_SHARD,
              show_default=True, help="A speaker's group is cut into near-equal shards of at most this many samples.")
def shard(work: Path, out: Path, seed: int, max_samples_per_shard: int) -> None:
    """Write the ok utterances of WORK as WebDataset shards in format v2 (shards/README.md).

    Each shard, <speaker>-<group>[-<part>]-NNNN.tar, holds one speaker and one group of the
    corpus recipe (and one part of its random split, if it has one), so every split of the recipe
    (IEMOCAP: paper, loso-1..5; CREMA-D, RAVDESS: actor-k) is a plain list of shards in
    splits.json, which also holds the class list. Same WORK and seed give byte-identical shards.
    Nothing is replaced until every file was written.

    \b
    Examples:
      emoprep shard --work work --out shards
      emoprep shard --work work --out shards --seed 1 --max-samples-per-shard 32

    \b
    Exit status:
      0  done
      1  the WORK content cannot be sharded: a missing media file, a bad manifest
         row or media file, no ok utterance
      2  bad usage: --work is missing or not a WORK folder (no manifest.parquet)
    """
    try:
        plan = plan_shard_set(work, seed=seed, max_samples_per_shard=max_samples_per_shard)
        with click.progressbar(length=plan.samples, label="Sharding", show_pos=True) as bar:
            result = write_shards(plan, out, progress=bar.update)
    except NotAWorkFolder as err:
        raise click.BadParameter(str(err), param_hint="--work") from err
    except ShardError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{result.samples} samples in {result.shards} shards, {result.bytes / 1e6:.1f} MB, in {out}")
    click.echo(f"splits: {', '.join(result.splits)}")
    for name, why in result.omitted.items():
        click.echo(f"omitted {name}: {why}")
    if result.removed:
        click.echo(f"removed {len(result.removed)} stale shard(s) of an earlier run: {', '.join(result.removed)}")

"""Test helpers that read a local shard through the format's one reader."""

from __future__ import annotations

from pathlib import Path

from shardformat.reader import RawSample, iter_tar


def tar_samples(path: Path) -> list[RawSample]:
    """Every raw sample of a local shard, in tar order."""
    with Path(path).open("rb") as stream:
        return list(iter_tar(stream, str(path)))

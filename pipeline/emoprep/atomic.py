"""Atomic file writes: a temporary name in the same folder, then os.replace.

A reader (or a resumed run) therefore sees either the old file or the whole
new one, never a part. Temporary names start with a dot and end in `.tmp`
(`.<name>.<pid>.tmp`) so a killed run's leftovers are easy to find and remove.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def is_temporary(path: Path) -> bool:
    """A name that `atomic_path` gives its temporary files."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)

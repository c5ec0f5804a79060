"""Atomic writes for everything in a run folder: a temporary file beside the target, then os.replace.

A reader (evaluate, a resumed run, an experiment report) therefore sees the old file or the whole
new one, never a part of it, even when training is killed mid-write. emoprep has its own
(emoprep.atomic): emotrain imports nothing from the preprocessing side.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates its file 0600 whatever the umask; a run's files get the mode any new file
# gets (0644 under umask 022), so another user can read the run: `evaluate` or `predict` run
# as another uid, a run folder on shared storage, a container run with --user.
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; on success it replaces `path` in one step."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

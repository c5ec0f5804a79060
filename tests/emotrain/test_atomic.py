"""emotrain.atomic: a run's files are written whole, with the mode the umask gives any new file."""

from __future__ import annotations

import os
import stat

from emotrain.atomic import atomic_path, write_atomic


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_written_files_get_the_umasks_mode_not_mkstemps_0600(tmp_path):
    write_atomic(tmp_path / "config.json", "{}")
    with atomic_path(tmp_path / "last.pt") as tmp:
        tmp.write_bytes(b"x")
    expected = 0o666 & ~current_umask()
    for name in ("config.json", "last.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "last.pt"]


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    try:
        with atomic_path(tmp_path / "best.pt") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []

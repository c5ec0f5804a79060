"""What every benchmark does with its figures besides printing them."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path | None, figures: dict, indent: int = 2) -> None:
    """Write the figures to `path` (the `--json` option), creating its folder; nothing when None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=indent) + "\n")

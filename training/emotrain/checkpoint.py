"""Checkpoints (RUN/last.pt, RUN/best.pt): writing them whole, reading them without unpickling.

A checkpoint is a plain dict that `torch.load(..., weights_only=True)` reads: tensors, numbers,
strings, lists and dicts only (RNG states are stored as tensors and lists, the configuration as
plain dicts), so loading one never runs pickled code.

  format      CHECKPOINT_FORMAT
  epoch       epochs completed
  config      {"train": TrainConfig.to_dict(), "model": ModelConfig.to_dict()}
  model, weighting, optimizer, scheduler   state dicts
  rng         {"torch": ByteTensor, "cuda": [ByteTensor], "numpy": {...}, "python": [...]}
  best        {"metric": str, "value": float, "epoch": int} or None
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from emotrain.atomic import atomic_path

CHECKPOINT_FORMAT = "emotrain-checkpoint-1"


class CheckpointError(Exception):
    """A checkpoint that cannot be read, or that belongs to another configuration."""


def capture_rng() -> dict:
    """The global RNG states of torch, CUDA, numpy and python, in weights_only-loadable types."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [version, list(state), python_gauss],
    }


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    """torch.save to a temporary file in the same folder, then os.replace: never a half-written .pt."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **checkpoint}, tmp)


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exn:
        raise CheckpointError(f"{path}: not a readable emotrain checkpoint ({exn})") from exn
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path}: format {found!r}, expected {CHECKPOINT_FORMAT!r}: "
                              "not a checkpoint written by this emotrain")
    return checkpoint

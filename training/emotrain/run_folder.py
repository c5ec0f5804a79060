"""A trained run folder, loaded: RUN/config.json and one of its checkpoints, checked to belong together.

What `emotrain evaluate` and `emotrain predict` start from. A run folder may come from someone
else: the configuration is validated by emotrain.config and the checkpoint read weights-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emotrain.checkpoint import load_checkpoint
from emotrain.config import ConfigError, TrainConfig, check_same_run, read_run_config
from emotrain.objective import Objective, build_objective, load_objective_state


def checkpoint_path(run: Path, checkpoint: str) -> Path:
    return run / f"{checkpoint}.pt" if checkpoint in ("best", "last") else Path(checkpoint)


@dataclass(frozen=True)
class LoadedRun:
    cfg: TrainConfig
    objective: Objective  # on the CPU, weights from the checkpoint
    state: dict  # the checkpoint
    path: Path  # of the checkpoint


def load_run(run: Path, checkpoint: str = "best") -> LoadedRun:
    """A run's configuration and one of its checkpoints, checked to belong together (weights_only loading).

    Raises ConfigError or CheckpointError with a one-line reason: no run folder, a config.json
    that is not JSON, a checkpoint that is corrupt, or written by another configuration.
    """
    run = Path(run)
    try:
        cfg = TrainConfig.from_dict(read_run_config(run)["train"])
    except (ValueError, KeyError, TypeError) as exn:  # bad JSON, or a document without "train"
        raise ConfigError(f"{run / 'config.json'}: not a run configuration ({exn})") from exn
    path = checkpoint_path(run, checkpoint)
    state = load_checkpoint(path)
    check_same_run(state["config"], cfg, str(path))
    objective = build_objective(cfg, from_checkpoint=True)
    load_objective_state(objective, state, path)
    return LoadedRun(cfg, objective, state, path)

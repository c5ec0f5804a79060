"""What an experiment runs: its configurations (the paper's Table 1 rows), folds and fit units, and their results.

The records that `emotrain.experiment` (which runs them) and `emotrain.experiment_report` (which
tabulates them) share, in a module of their own so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Configuration:
    name: str
    modality: str
    weighting: str


# The paper's four rows, then the two alternatives (engineering notes: both need one backward pass).
CONFIGURATIONS = (
    Configuration("UM-dynamic-A", "a", "dynamic"),
    Configuration("UM-dynamic-V", "v", "dynamic"),
    Configuration("MM-static", "av", "static"),
    Configuration("MM-dynamic", "av", "dynamic"),
    Configuration("MM-uncertainty", "av", "uncertainty"),
    Configuration("MM-dwa", "av", "dwa"),
)


@dataclass(frozen=True)
class Folds:
    """What --split resolved to: the family name (None for a single split) and its splits in order."""

    family: str | None
    splits: tuple[str, ...]


@dataclass(frozen=True)
class Unit:
    """One fit run of the experiment."""

    fold: str
    configuration: Configuration
    seed: int


@dataclass(frozen=True)
class RunResult:
    unit: Unit
    run: Path
    figures: dict[str, float]  # experiment_report.COLUMNS for this run
    rows: list[dict]  # the run's metrics.jsonl
    test_confusion: list[list[int]]  # emotion, rows true, columns predicted


def plan_units(folds: Folds, configurations: Sequence[Configuration], first_seed: int, seeds: int) -> list[Unit]:
    return [Unit(fold, configuration, first_seed + s)
            for fold in folds.splits for configuration in configurations for s in range(seeds)]

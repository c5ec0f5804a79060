"""Joint loss weightings for the two tasks: the paper's dynamic weights and three alternatives.

Every weighting is an nn.Module: its state (learned parameters, loss history) is in
its state_dict, so checkpoints carry it, and learned ones are trained by the same
optimizer as the model (pass `weighting.parameters()` along with the model's).

  static       joint = w_e L_e + w_g L_g, fixed (the paper's baseline 0.5 / 0.5)
  dynamic      the paper's: w = softmax(lambda), lambda learned, initialised at 0 (0.5 / 0.5).
               d joint / d lambda_j = w_j (L_j - sum_i w_i L_i): weight always moves toward
               the task whose loss is currently lower, so the weighted loss falls partly
               because the weights move. Compare runs on unweighted figures too.
  uncertainty  Kendall et al. 2018: joint = sum_i L_i / (2 e^{s_i}) + s_i / 2, s learned
               (s_i = log sigma_i^2, initialised at 0). Reported weights are the normalised
               precisions e^{-s_i} / sum_j e^{-s_j} (they sum to 1); the loss itself uses
               e^{-s_i} / 2 plus the s_i / 2 regulariser.
  dwa          Liu et al. 2019, dynamic weight average: w_i = K softmax_i(r_i / T) with
               r_i = L_i(t-1) / L_i(t-2) the ratio of the last two epochs' mean training
               losses, T = 2, K = 2 tasks; w_i = 1 for the first two epochs. The joint loss
               uses these K-scaled weights (they sum to 2, so it is on twice the scale of
               static / dynamic); reported weights are w_i / K (they sum to 1).

Under DDP, learned weightings get their gradients from each rank's own losses: they are
wrapped in the DDP module with the network (emotrain.objective.Objective), which averages
them over the ranks; dwa's `end_epoch` must get the losses averaged over all ranks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

TASKS = ("emotion", "gender")
WEIGHTINGS = ("static", "dynamic", "uncertainty", "dwa")


def _check_tasks(mapping: object, what: str) -> None:
    if not isinstance(mapping, dict) or set(mapping) != set(TASKS):
        found = sorted(mapping) if isinstance(mapping, dict) else type(mapping).__name__
        raise ValueError(f"{what} must be a dict with exactly the keys {TASKS}, got {found}")


def _stack(losses: dict[str, Tensor]) -> Tensor:
    _check_tasks(losses, "losses")
    for task in TASKS:
        if losses[task].dim() != 0:
            raise ValueError(f"loss {task!r} must be a scalar (the batch mean), got shape {tuple(losses[task].shape)}")
    return torch.stack([losses[task].float() for task in TASKS])


class LossWeighting(nn.Module):
    """One interface for all weightings: forward(losses) -> joint loss; weights(); end_epoch(mean losses)."""

    name: str

    def task_weights(self) -> Tensor:
        """The current weights (len(TASKS),) as reported: see each class."""
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """Current task weights for logging, {"emotion": w_e, "gender": w_g}."""
        with torch.no_grad():
            values = self.task_weights().tolist()
        return dict(zip(TASKS, values))

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called once per epoch with the epoch's mean raw training losses; only dwa uses it."""


class StaticWeighting(LossWeighting):
    """Fixed weights, reported as given. (1, 0) or (0, 1) trains one task alone."""

    name = "static"

    def __init__(self, static_weights: tuple[float, float] = (0.5, 0.5)) -> None:
        super().__init__()
        values = tuple(static_weights)
        if len(values) != len(TASKS) or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
            raise ValueError(f"static weights must be {len(TASKS)} finite non-negative numbers, not all zero, got {static_weights!r}")
        self.register_buffer("fixed", torch.tensor(values, dtype=torch.float32))

    def task_weights(self) -> Tensor:
        return self.fixed

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        stacked = _stack(losses)
        return (self.fixed.to(stacked.device) * stacked).sum()


class DynamicWeighting(LossWeighting):
    """The paper's: w = softmax(lambda) with lambda an nn.Parameter starting at 0."""

    name = "dynamic"

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(len(TASKS)))

    def task_weights(self) -> Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        stacked = _stack(losses)
        return (self.task_weights() * stacked).sum()


class UncertaintyWeighting(LossWeighting):
    """Kendall et al.: sum_i L_i / (2 e^{s_i}) + s_i / 2, s learned from 0; reports normalised precisions."""

    name = "uncertainty"

    def __init__(self) -> None:
        super().__init__()
        self.log_variance = nn.Parameter(torch.zeros(len(TASKS)))

    def task_weights(self) -> Tensor:
        return torch.softmax(-self.log_variance, dim=0)  # e^{-s_i} / sum_j e^{-s_j}

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        stacked = _stack(losses)
        s = self.log_variance
        return (0.5 * torch.exp(-s) * stacked + 0.5 * s).sum()


class DWAWeighting(LossWeighting):
    """Liu et al.: K softmax(r / T) from the last two epochs' loss ratios; equal weights until two epochs are seen."""

    name = "dwa"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"dwa temperature must be positive, got {temperature!r}")
        self.temperature = temperature
        # history[0] = L(t-2), history[1] = L(t-1); epochs_seen counts end_epoch calls.
        self.register_buffer("history", torch.zeros(2, len(TASKS)))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def scaled_weights(self) -> Tensor:
        """The K-scaled weights the joint loss uses (sum to K = len(TASKS))."""
        count = len(TASKS)
        if int(self.epochs_seen) < 2:
            return torch.ones(count, device=self.history.device)
        ratios = self.history[1] / self.history[0]
        return count * torch.softmax(ratios / self.temperature, dim=0)

    def task_weights(self) -> Tensor:
        return self.scaled_weights() / len(TASKS)

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        stacked = _stack(losses)
        return (self.scaled_weights().to(stacked.device) * stacked).sum()

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        _check_tasks(mean_losses, "dwa end_epoch's mean losses")
        values = [float(mean_losses[task]) for task in TASKS]
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"dwa end_epoch needs finite positive mean losses (ratios of them are taken), got {dict(zip(TASKS, values))}")
        self.history[0] = self.history[1].clone()
        self.history[1] = torch.tensor(values, device=self.history.device)
        self.epochs_seen += 1


def build_weighting(name: str, static_weights: tuple[float, float] = (0.5, 0.5)) -> LossWeighting:
    """The weighting called `name` (one of WEIGHTINGS); static_weights is used by "static" only."""
    if name == "static":
        return StaticWeighting(static_weights)
    if name == "dynamic":
        return DynamicWeighting()
    if name == "uncertainty":
        return UncertaintyWeighting()
    if name == "dwa":
        return DWAWeighting()
    raise ValueError(f"unknown loss weighting {name!r}; choose one of {WEIGHTINGS}")

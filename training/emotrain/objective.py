"""The training objective: the network and its loss weighting in one module, and how a batch is scored.

The Objective is the one nn.Module that training wraps in DistributedDataParallel: it holds
both the network and the loss weighting, so the gradients of the weighting's own parameters
(the dynamic weighting's lambdas, uncertainty weighting's log-variances) are all-reduced with
the network's, and one optimizer steps them all. Training, evaluation (and anything else that
loads a run) build it, restore it from a checkpoint and put it on its device with these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emotrain.checkpoint import CheckpointError
from emotrain.config import ConfigError, TrainConfig
from emotrain.data import Batch
from emotrain.metrics import MetricSums
from emotrain.model import build_model
from emotrain.weighting import build_weighting


class Losses(NamedTuple):
    joint: Tensor  # the weighted joint loss of the batch: what is optimised
    emotion_nll: Tensor  # (B,) per-sample NLL
    gender_nll: Tensor  # (B,)
    emotion_logits: Tensor  # (B, 4)
    gender_logits: Tensor  # (B, 2)


class Objective(nn.Module):
    """Model and loss weighting in one module: forward gives every loss term of a batch."""

    def __init__(self, model: nn.Module, weighting: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.weighting = weighting

    def forward(self, audio: Tensor | None, frames: Tensor | None, lengths: Tensor, emotion: Tensor,
                gender: Tensor) -> Losses:
        emotion_logits, gender_logits = self.model(audio, frames, lengths)
        # Losses in float32 even under bf16 autocast: the NLL sums are reported to 4 digits.
        emotion_nll = F.cross_entropy(emotion_logits.float(), emotion, reduction="none")
        gender_nll = F.cross_entropy(gender_logits.float(), gender, reduction="none")
        joint = self.weighting({"emotion": emotion_nll.mean(), "gender": gender_nll.mean()})
        return Losses(joint, emotion_nll, gender_nll, emotion_logits, gender_logits)


def build_objective(cfg: TrainConfig, *, from_checkpoint: bool = False) -> Objective:
    """A new Objective for `cfg`; from_checkpoint skips loading visual_weights (the checkpoint has them)."""
    try:
        model = build_model(cfg.model_config(), load_weights=not from_checkpoint)
    except (FileNotFoundError, ValueError) as exn:  # visual_weights missing or not a ResNet-50
        raise ConfigError(str(exn)) from exn
    return Objective(model, build_weighting(cfg.weighting, static_weights=cfg.static_weights))


def load_objective_state(objective: Objective, checkpoint: dict, path: Path) -> None:
    try:
        objective.model.load_state_dict(checkpoint["model"])
        objective.weighting.load_state_dict(checkpoint["weighting"])
    except (RuntimeError, KeyError) as exn:
        first_line = str(exn).strip().splitlines()[0]
        raise CheckpointError(f"{path}: its weights do not fit this model ({first_line}); "
                              "was it written by another configuration?") from exn


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def prepare_for_device(objective: Objective, device: torch.device) -> Objective:
    objective.to(device)
    if device.type == "cuda":
        # Convolutions run NHWC on tensor cores: the model hands its frames over channels_last,
        # and weights stored that way are not converted at every call.
        objective.to(memory_format=torch.channels_last)
    return objective


def score(module: nn.Module, batch: Batch) -> Losses:
    """One forward of Objective (or its DDP wrapper) on a batch already on its device; bf16 autocast on CUDA."""
    device_type = batch.lengths.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
        return module(batch.audio, batch.frames, batch.lengths, batch.emotion, batch.gender)


def add_losses(sums: MetricSums, losses: Losses, batch: Batch) -> None:
    sums.add(losses.joint, losses.emotion_nll, losses.gender_nll, losses.emotion_logits,
             losses.gender_logits, batch.emotion, batch.gender)

"""Scoring a model: the Objective (model + loss weighting), evaluation over a loader, `emotrain evaluate`.

The Objective is the one nn.Module that training wraps in DistributedDataParallel: it holds
both the network and the loss weighting, so the gradients of the weighting's own parameters
(the dynamic weighting's lambdas, uncertainty weighting's log-variances) are all-reduced with
the network's, and one optimizer steps them all.

`evaluate_run` rebuilds the network from RUN/config.json, loads a checkpoint, scores one part
of a split on one process (every sample once) and writes the metrics (the keys of
metrics.jsonl) as JSON plus the emotion confusion matrix as a PNG.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emotrain.checkpoint import CheckpointError, load_checkpoint, write_atomic
from emotrain.config import ConfigError, TrainConfig, check_same_run, read_run_config
from emotrain.data import Batch, ShardsError, eval_loader, read_part
from emotrain.metrics import MetricSums, plot_confusion
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


def evaluate_loader(objective: Objective, batches: Iterable[Batch], device: torch.device,
                    on_skip: Callable[[str], None]) -> tuple[MetricSums, float]:
    """Sums over this rank's batches, reduced across ranks; and the seconds it took."""
    objective.eval()
    sums = MetricSums(len(objective.model.config.emotions), device)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            for message in batch.skipped:
                on_skip(message)
            sums.add_skipped(len(batch.skipped))
            if batch.size:
                batch = batch.to(device, non_blocking=True)
                add_losses(sums, score(objective, batch), batch)
    sums.all_reduce()
    return sums, time.perf_counter() - start


@dataclass(frozen=True)
class EvalResult:
    metrics: dict
    json_path: Path
    png_path: Path


def checkpoint_path(run: Path, checkpoint: str) -> Path:
    return run / f"{checkpoint}.pt" if checkpoint in ("best", "last") else Path(checkpoint)


def evaluate_run(
    run: Path, *, split: str, part: str = "test", checkpoint: str = "best",
    shards: str | tuple[str, ...] | None = None,
    out: Path | None = None, device: str = "auto", batch_size: int | None = None, workers: int = 0,
    strict: bool = False, on_skip: Callable[[str], None] = lambda message: None,
) -> EvalResult:
    """Score `checkpoint` of `run` on one part of a split; write metrics JSON and a confusion PNG."""
    run = Path(run)
    doc = read_run_config(run)
    cfg = TrainConfig.from_dict(doc["train"])
    data = read_part(shards or cfg.shards, split, part)
    if data.emotions != cfg.emotions:
        raise ShardsError(f"{shards or cfg.shards}: its classes are {', '.join(data.emotions)}, but {run} learnt "
                          f"{', '.join(cfg.emotions)}; score it on shards made with the same class set "
                          "(`emoprep extract --classes shared`)")
    path = checkpoint_path(run, checkpoint)
    state = load_checkpoint(path)
    check_same_run(state["config"], cfg, str(path))
    torch_device = resolve_device(device)
    objective = build_objective(cfg, from_checkpoint=True)
    load_objective_state(objective, state, path)
    prepare_for_device(objective, torch_device)

    loader = eval_loader(data, modality=cfg.modality, batch_size=batch_size or cfg.batch_size, workers=workers,
                         on_error="raise" if strict else "skip", pin_memory=torch_device.type == "cuda",
                         frames_on=cfg.decode_frames)
    sums, seconds = evaluate_loader(objective, loader, torch_device, on_skip)
    metrics = {"split": split, "part": part, "checkpoint": str(path), "epoch": state["epoch"],
               **sums.summary(objective.weighting.weights(), seconds), "emotions": list(cfg.emotions)}

    json_path = Path(out) if out else run / f"eval-{split}-{part}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(json_path, json.dumps(metrics, indent=2) + "\n")
    png_path = json_path.with_name(f"{json_path.stem}-confusion.png")
    plot_confusion(metrics["confusion"], cfg.emotions, png_path,
                   f"{split} {part}: UA {metrics['emotion_ua']:.1%}, WA {metrics['emotion_wa']:.1%}")
    return EvalResult(metrics, json_path, png_path)

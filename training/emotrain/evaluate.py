"""Scoring a model: evaluation over a loader (validation in training, `emotrain evaluate`).

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

import torch

from emotrain.atomic import write_atomic
from emotrain.data import Batch, ShardsError, check_modality, eval_loader, read_part
from emotrain.metrics import MetricSums, plot_confusion
from emotrain.objective import Objective, add_losses, prepare_for_device, resolve_device, score
from emotrain.run_folder import load_run


def evaluate_loader(objective: Objective, batches: Iterable[Batch], device: torch.device,
                    on_skip: Callable[[str], None]) -> tuple[MetricSums, float]:
    """Sums over this rank's batches, reduced across ranks; and the seconds it took."""
    objective.eval()
    sums = MetricSums(len(objective.model.config.emotions), device)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            for skipped in batch.skipped:
                on_skip(str(skipped))
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


def evaluate_run(
    run: Path, *, split: str, part: str = "test", checkpoint: str = "best",
    shards: str | tuple[str, ...] | None = None,
    out: Path | None = None, device: str = "auto", batch_size: int | None = None, workers: int = 0,
    strict: bool = False, on_skip: Callable[[str], None] = lambda message: None,
) -> EvalResult:
    """Score `checkpoint` of `run` on one part of a split; write metrics JSON and a confusion PNG."""
    run = Path(run)
    loaded = load_run(run, checkpoint)
    cfg, objective, state, path = loaded.cfg, loaded.objective, loaded.state, loaded.path
    sources = shards or cfg.shards
    data = read_part(sources, split, part)
    check_modality(data, cfg.modality)
    if data.emotions != cfg.emotions:
        where = sources if isinstance(sources, str) else ", ".join(sources)
        raise ShardsError(f"{where}: its classes are {', '.join(data.emotions)}, but {run} learnt "
                          f"{', '.join(cfg.emotions)}; score it on shards made with the same class set "
                          "(`emoprep extract --classes shared`)")
    torch_device = resolve_device(device)
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

"""`emotrain fit`: the whole training loop, readable top to bottom.

Sections: config and run folder, distributed setup, data, model (new or resumed), optimizer,
wrap, then the loop: train an epoch, evaluate on validation, log, checkpoint.

- One device or many: under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set) every process
  trains on its own batches in DistributedDataParallel (NCCL on GPUs, gloo on CPU); only
  rank 0 writes files and prints. Each rank yields the same number of batches per epoch
  (emotrain.data), so no rank waits for another.
- Train metrics are accumulated over the epoch's training batches as they are trained on
  (with the weights of the moment: the model improves within the epoch, so they read a
  little worse than a pass at the epoch's end); validation metrics are one pass after the
  epoch, every sample once, reduced across ranks. `w_emotion` / `w_gender` are the weights
  after the epoch's last update, the ones validation is scored with.
- RUN/last.pt after every epoch, RUN/best.pt when the validation metric `--select` improves;
  both written to a temporary file and moved into place. `--resume` continues from last.pt
  and gives the metrics an uninterrupted run gives (data order comes from (seed, epoch);
  the global RNG states travel in the checkpoint).
- A non-finite loss stops every rank before the update, naming epoch and batch; the
  checkpoints keep the last good epoch.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from emotrain.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    write_atomic,
)
from emotrain.config import ConfigError, TrainConfig, check_same_run, read_run_config, run_document, write_run_config
from emotrain.data import Batch, batches_per_rank, eval_loader, read_part, train_loader
from emotrain.evaluate import (
    Objective,
    add_losses,
    build_objective,
    evaluate_loader,
    load_objective_state,
    prepare_for_device,
    resolve_device,
    score,
)
from emotrain.metrics import SCALAR_KEYS, MetricSums, is_better, plot_curves


class NonFiniteLoss(Exception):
    """The joint loss became NaN or infinite; training stopped before the update."""


@dataclasses.dataclass(frozen=True)
class FitResult:
    run: Path
    epochs_done: int
    best: dict | None  # {"metric", "value", "epoch"}
    rows: list[dict]  # metrics.jsonl


def fit(cfg: TrainConfig, *, resume: bool = False, echo: Callable[[str], None] = click.echo) -> FitResult:
    """Train (or continue training) the run cfg.out; see the module docstring."""
    # --- data: the shard set's parts, and its classes (the emotion head's size) -----------------------
    train_part = read_part(cfg.shards, cfg.split, "train")
    val_part = read_part(cfg.shards, cfg.split, "val")
    cfg = dataclasses.replace(cfg, emotions=train_part.emotions)

    # --- config and run folder: refuse before any work what would overwrite or mix runs --------------
    run = Path(cfg.out)
    checkpoint = None
    if resume:
        check_same_run(read_run_config(run), cfg, str(run / "config.json"))
        checkpoint = load_checkpoint(run / "last.pt")
        check_same_run(checkpoint["config"], cfg, str(run / "last.pt"))
    elif (run / "last.pt").exists():
        raise ConfigError(f"{run} already holds a run (last.pt); pass --resume to continue it, "
                          "or choose another --out")

    # --- distributed setup ----------------------------------------------------------------------------
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    if distributed:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    try:
        on_error = "raise" if cfg.strict else "skip"
        pin = device.type == "cuda"
        n_batches = batches_per_rank(train_part, cfg.batch_size, world_size)

        # --- model (new or resumed) and optimizer ------------------------------------------------------
        seed_everything(cfg.seed)  # the same initial weights on every rank
        objective = prepare_for_device(build_objective(cfg, from_checkpoint=resume), device)
        # One optimizer for the network and the weighting's own parameters (the paper's lambdas).
        optimizer = torch.optim.Adam(objective.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        start_epoch, best, rows = 0, None, []
        if checkpoint is not None:
            load_objective_state(objective, checkpoint, run / "last.pt")
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            start_epoch, best = checkpoint["epoch"], checkpoint["best"]
            rows = [r for r in read_metrics(run) if r["epoch"] <= start_epoch]
            restore_rng(checkpoint["rng"])
            if is_main:
                echo(f"resuming {run} after epoch {start_epoch} of {cfg.epochs}")
        if rank:
            seed_everything(cfg.seed * 1000 + rank)  # distinct dropout per rank
        if is_main and not resume:  # only now: a bad split or model option leaves no run folder behind
            run.mkdir(parents=True, exist_ok=True)
            write_run_config(run, cfg)

        # --- wrap: DDP over model + weighting, so every learnable weight's gradient is all-reduced ---
        step_module = objective
        if distributed:
            device_ids = [device.index] if device.type == "cuda" else None
            step_module = DistributedDataParallel(objective, device_ids=device_ids)

        # --- loop ---------------------------------------------------------------------------------
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            report = skip_reporter(rank, world_size)
            loader = train_loader(train_part, modality=cfg.modality, batch_size=cfg.batch_size, epoch=epoch,
                                  seed=cfg.seed, rank=rank, world_size=world_size, workers=cfg.workers,
                                  shuffle_buffer=cfg.shuffle_buffer, on_error=on_error, pin_memory=pin,
                                  frames_on=cfg.decode_frames)
            with progress(loader, n_batches, f"epoch {epoch}/{cfg.epochs} train", is_main) as batches:
                train_sums, train_seconds = train_epoch(step_module, objective, optimizer, batches, cfg,
                                                        device, epoch, distributed, report)
            if distributed:
                # DDP sends rank 0's buffers (BatchNorm statistics) before each forward, so after the last
                # step every rank holds its own; validate all ranks with rank 0's, the ones checkpointed.
                for buffer in objective.buffers():
                    dist.broadcast(buffer, src=0)
            loader = eval_loader(val_part, modality=cfg.modality, batch_size=cfg.batch_size, rank=rank,
                                 world_size=world_size, workers=cfg.workers, on_error=on_error, pin_memory=pin,
                                 frames_on=cfg.decode_frames)
            val_batches = math.ceil(val_part.samples / world_size / cfg.batch_size)
            with progress(loader, val_batches, f"epoch {epoch}/{cfg.epochs} val", is_main) as batches:
                val_sums, val_seconds = evaluate_loader(objective, batches, device, report)

            weights = objective.weighting.weights()
            lr = optimizer.param_groups[0]["lr"]
            train = {"epoch": epoch, "part": "train", **train_sums.summary(weights, train_seconds), "lr": lr}
            val = {"epoch": epoch, "part": "val", **val_sums.summary(weights, val_seconds), "lr": lr}
            rows += [train, val]
            objective.weighting.end_epoch({"emotion": train["emotion_nll"], "gender": train["gender_nll"]})
            scheduler.step()
            improved = is_better(cfg.select, val[cfg.select], best["value"] if best else None)
            if improved:
                best = {"metric": cfg.select, "value": val[cfg.select], "epoch": epoch}

            if is_main:
                # Metrics first: a resume drops rows past last.pt's epoch, never misses one.
                write_metrics(run, rows)
                plot_curves(rows, run / "curves.png")
                state = {"epoch": epoch, "config": run_document(cfg), "model": objective.model.state_dict(),
                         "weighting": objective.weighting.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": capture_rng(), "best": best}
                if improved:
                    save_checkpoint(run / "best.pt", state)
                save_checkpoint(run / "last.pt", state)
                echo(epoch_line(epoch, cfg.epochs, train, val, cfg.select, improved))
            if distributed:
                dist.barrier()
        return FitResult(run, max(start_epoch, cfg.epochs), best, rows)
    finally:
        if distributed:
            dist.destroy_process_group()


def train_epoch(step_module: torch.nn.Module, objective: Objective, optimizer: torch.optim.Optimizer,
                batches: Iterable[Batch], cfg: TrainConfig, device: torch.device, epoch: int,
                distributed: bool, on_skip: Callable[[str], None]) -> tuple[MetricSums, float]:
    """One pass over the epoch's batches; returns the sums over the batches trained on (all ranks)."""
    objective.train()
    sums = MetricSums(len(cfg.emotions), device)
    start = time.perf_counter()
    for number, batch in enumerate(batches, 1):
        for message in batch.skipped:
            on_skip(message)
        sums.add_skipped(len(batch.skipped))
        batch = batch.to(device, non_blocking=True)
        losses = score(step_module, batch)
        stop_if_not_finite(losses.joint, epoch, number, batch, distributed)
        optimizer.zero_grad(set_to_none=True)
        losses.joint.backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), cfg.grad_clip)
        optimizer.step()
        add_losses(sums, losses, batch)
    sums.all_reduce()
    return sums, time.perf_counter() - start


def stop_if_not_finite(loss: torch.Tensor, epoch: int, number: int, batch: Batch, distributed: bool) -> None:
    """Raise NonFiniteLoss on every rank at once if any rank's loss is NaN or infinite."""
    bad = (~torch.isfinite(loss.detach())).float()
    if distributed:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    if bad.item():
        keys = ", ".join(batch.keys[:4]) + (", ..." if batch.size > 4 else "")
        raise NonFiniteLoss(f"epoch {epoch}, batch {number}: the joint loss is {loss.item()} (samples {keys}); "
                            "stopped before the update, the checkpoints keep the last completed epoch. "
                            "Try a lower --lr or --grad-clip, or check these samples.")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def skip_reporter(rank: int, world_size: int) -> Callable[[str], None]:
    """Print each skipped sample on stderr, with the rank when there are several (it found it, not rank 0)."""
    prefix = f"[rank {rank}] " if world_size > 1 else ""
    return lambda message: click.echo(f"{prefix}skipped {message}", err=True)


@contextmanager
def progress(batches: Iterable[Batch], length: int, label: str, show: bool) -> Iterator[Iterable[Batch]]:
    if not show:
        yield batches
        return
    with click.progressbar(batches, length=length, label=label, file=sys.stderr) as bar:
        yield bar


def epoch_line(epoch: int, epochs: int, train: dict, val: dict, select: str, improved: bool) -> str:
    def part(r: dict) -> str:
        return (f"joint {r['joint_loss']:.4f}  L_e+L_g {r['unweighted_nll']:.4f}  WA {r['emotion_wa']:.1%}  "
                f"UA {r['emotion_ua']:.1%}  F1 {r['emotion_f1']:.3f}  gender {r['gender_acc']:.1%}")

    skipped = train["skipped"] + val["skipped"]
    return (f"epoch {epoch}/{epochs} | train {part(train)} | val {part(val)} | "
            f"w_e {train['w_emotion']:.3f} w_g {train['w_gender']:.3f} | {train['samples_per_s']:.1f} samples/s"
            + (f" | skipped {skipped}" if skipped else "") + (f" | best {select}" if improved else ""))


CSV_COLUMNS = ("epoch", "part", *SCALAR_KEYS, "samples", "skipped", "lr")


def write_metrics(run: Path, rows: list[dict]) -> None:
    """RUN/metrics.jsonl (one object per epoch and part) and RUN/metrics.csv (its scalar columns)."""
    write_atomic(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(run / "metrics.csv", table.getvalue())


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


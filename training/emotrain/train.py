"""`emotrain fit`: the whole training loop, readable top to bottom.

`fit` reads in order: the data (its parts and classes), the run folder (new, or resumed:
`open_run`), the processes (one, or torchrun's: `joined_processes`), model and optimizer (new,
or restored from last.pt: `restore_training`), the DDP wrap, then the loop: train an epoch,
validate, log, checkpoint.

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

import dataclasses
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from emotrain.augment import augment_audio, parse_augment
from emotrain.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from emotrain.config import ConfigError, TrainConfig, check_same_run, read_run_config, run_document, write_run_config
from emotrain.data import Batch, batches_per_rank, check_modality, eval_loader, read_part, train_loader
from emotrain.evaluate import evaluate_loader
from emotrain.metrics import MetricSums, is_better, plot_curves
from emotrain.metrics_log import TensorBoardLog, read_metrics, write_metrics
from emotrain.objective import (
    Objective,
    add_losses,
    build_objective,
    load_objective_state,
    prepare_for_device,
    resolve_device,
    score,
)


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
    check_modality(train_part, cfg.modality)
    cfg = dataclasses.replace(cfg, emotions=train_part.emotions)
    run = Path(cfg.out)
    checkpoint = open_run(run, cfg, resume)  # refuses, before any work, what would overwrite or mix runs
    with joined_processes(cfg.device) as procs, ExitStack() as closing:
        on_error = "raise" if cfg.strict else "skip"
        pin = procs.device.type == "cuda"
        n_batches = batches_per_rank(train_part, cfg.batch_size, procs.world_size)

        # --- model (new or resumed) and optimizer ------------------------------------------------------
        seed_everything(cfg.seed)  # the same initial weights on every rank
        objective = prepare_for_device(build_objective(cfg, from_checkpoint=resume), procs.device)
        # One optimizer for the network and the weighting's own parameters (the paper's lambdas).
        optimizer = torch.optim.Adam(objective.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        start_epoch, best, rows = 0, None, []
        if checkpoint is not None:
            start_epoch, best, rows = restore_training(run, checkpoint, objective, optimizer, scheduler)
            if procs.is_main:
                echo(f"resuming {run} after epoch {start_epoch} of {cfg.epochs}")
        if procs.rank:
            seed_everything(cfg.seed * 1000 + procs.rank)  # distinct dropout per rank
        board = None
        if procs.is_main and cfg.tensorboard:  # before the run folder: it refuses if tensorboard is missing
            board = closing.enter_context(TensorBoardLog(run, ("train", "val"), after_epoch=start_epoch))
        if procs.is_main and not resume:  # only now: a bad split or model option leaves no run folder behind
            run.mkdir(parents=True, exist_ok=True)
            write_run_config(run, cfg)
        step_module = wrap_for_ddp(objective, procs)

        # --- loop: train an epoch, validate, log, checkpoint ----------------------------------------
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            report = skip_reporter(procs.rank, procs.world_size)
            loader = train_loader(train_part, modality=cfg.modality, batch_size=cfg.batch_size, epoch=epoch,
                                  seed=cfg.seed, rank=procs.rank, world_size=procs.world_size, workers=cfg.workers,
                                  shuffle_buffer=cfg.shuffle_buffer, on_error=on_error, pin_memory=pin,
                                  frames_on=cfg.decode_frames)
            with progress(loader, n_batches, f"epoch {epoch}/{cfg.epochs} train", procs.is_main) as batches:
                train_sums, train_seconds = train_epoch(step_module, objective, optimizer, batches, cfg,
                                                        procs.device, epoch, procs.distributed, report)
            if procs.distributed:
                share_rank0_buffers(objective)
            loader = eval_loader(val_part, modality=cfg.modality, batch_size=cfg.batch_size, rank=procs.rank,
                                 world_size=procs.world_size, workers=cfg.workers, on_error=on_error, pin_memory=pin,
                                 frames_on=cfg.decode_frames)
            val_batches = math.ceil(val_part.samples / procs.world_size / cfg.batch_size)
            with progress(loader, val_batches, f"epoch {epoch}/{cfg.epochs} val", procs.is_main) as batches:
                val_sums, val_seconds = evaluate_loader(objective, batches, procs.device, report)

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

            if procs.is_main:
                # Metrics first: a resume drops rows past last.pt's epoch, never misses one.
                write_metrics(run, rows)
                plot_curves(rows, run / "curves.png")
                if board is not None:
                    board.add(train)
                    board.add(val)
                state = training_state(epoch, cfg, objective, optimizer, scheduler, best)
                if improved:
                    save_checkpoint(run / "best.pt", state)
                save_checkpoint(run / "last.pt", state)
                echo(epoch_line(epoch, cfg.epochs, train, val, cfg.select, improved))
            if procs.distributed:
                dist.barrier()
        return FitResult(run, max(start_epoch, cfg.epochs), best, rows)


def open_run(run: Path, cfg: TrainConfig, resume: bool) -> dict | None:
    """The checkpoint to resume from (None for a new run), after refusing a run folder it would overwrite or mix."""
    if not resume:
        if (run / "last.pt").exists():
            raise ConfigError(f"{run} already holds a run (last.pt); pass --resume to continue it, "
                              "or choose another --out")
        return None
    check_same_run(read_run_config(run), cfg, str(run / "config.json"))
    checkpoint = load_checkpoint(run / "last.pt")
    check_same_run(checkpoint["config"], cfg, str(run / "last.pt"))
    return checkpoint


def restore_training(run: Path, checkpoint: dict, objective: Objective, optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler) -> tuple[int, dict | None, list[dict]]:
    """Load last.pt's weights, optimizer, schedule and RNG states; return its epoch, best, and metric rows so far.

    Rows past the checkpoint's epoch (written before a crash that came before last.pt) are dropped:
    those epochs are trained again.
    """
    load_objective_state(objective, checkpoint, run / "last.pt")
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    restore_rng(checkpoint["rng"])
    epoch = checkpoint["epoch"]
    return epoch, checkpoint["best"], [r for r in read_metrics(run) if r["epoch"] <= epoch]


def training_state(epoch: int, cfg: TrainConfig, objective: Objective, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, best: dict | None) -> dict:
    """What last.pt and best.pt hold (emotrain.checkpoint's docstring lists it); restore_training reads it back."""
    return {"epoch": epoch, "config": run_document(cfg), "model": objective.model.state_dict(),
            "weighting": objective.weighting.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": capture_rng(), "best": best}


@dataclasses.dataclass(frozen=True)
class Processes:
    """This process among the training processes: one, or torchrun's several."""

    distributed: bool
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0


@contextmanager
def joined_processes(device_name: str) -> Iterator[Processes]:
    """Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set) join the process group (NCCL on GPUs, gloo
    on CPU) for the block and leave it after; otherwise one process on one device."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    device = resolve_device(device_name, int(os.environ.get("LOCAL_RANK", 0)))
    procs = Processes(distributed, int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), device)
    if distributed:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield procs
    finally:
        if distributed:
            dist.destroy_process_group()


def wrap_for_ddp(objective: Objective, procs: Processes) -> torch.nn.Module:
    """The module a training step calls: DDP over model + weighting when distributed, so every learnable
    weight's gradient is all-reduced; the objective itself otherwise."""
    if not procs.distributed:
        return objective
    device_ids = [procs.device.index] if procs.device.type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=device_ids)


def share_rank0_buffers(objective: Objective) -> None:
    """DDP sends rank 0's buffers (BatchNorm statistics) before each forward, so after the last step every
    rank holds its own; validate all ranks with rank 0's, the ones checkpointed."""
    for buffer in objective.buffers():
        dist.broadcast(buffer, src=0)


def train_epoch(step_module: torch.nn.Module, objective: Objective, optimizer: torch.optim.Optimizer,
                batches: Iterable[Batch], cfg: TrainConfig, device: torch.device, epoch: int,
                distributed: bool, on_skip: Callable[[str], None]) -> tuple[MetricSums, float]:
    """One pass over the epoch's batches; returns the sums over the batches trained on (all ranks)."""
    objective.train()
    sums = MetricSums(len(cfg.emotions), device)
    augment = parse_augment(cfg.augment)
    # Seeded by (seed, epoch, rank) like the data order, so a resumed run draws the same perturbations.
    rank = dist.get_rank() if distributed else 0
    generator = torch.Generator().manual_seed((cfg.seed * 100_003 + epoch) * 1_009 + rank)
    start = time.perf_counter()
    for number, batch in enumerate(batches, 1):
        for skipped in batch.skipped:
            on_skip(str(skipped))
        sums.add_skipped(len(batch.skipped))
        if augment.active:  # on the CPU batch, before it moves: training only, never validation
            audio, lengths = augment_audio(batch.audio, batch.lengths, augment, generator)
            batch = dataclasses.replace(batch, audio=audio, lengths=lengths)
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

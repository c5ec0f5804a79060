"""Shards -> padded batches, as a visible list of WebDataset stages (shards/README.md is the contract).

Training, per epoch (`train_loader`):

    ResampledShards(part's shards, seeded by (seed, epoch), per rank and worker)
    -> ReadShards        tar members -> raw samples; a broken tar is named, then skipped or raised
    -> ShuffleSamples    sample shuffle buffer (raw bytes, before decoding: ~0.5 MB a sample)
    -> Decode            json/flac/jpg -> Example; a bad sample is named, then skipped or raised
    -> Batcher           Examples -> Batch (padded); skipped samples ride along, to be counted
    => WebLoader(...).with_epoch(ceil(samples / (batch_size * world_size)))

Resampling means no rank or worker can run out of shards, and `with_epoch` on the loader
(not the dataset, where it would count per worker) makes every rank yield exactly the same
number of batches, so DDP never waits on a rank that got fewer shards. Every shuffle is
seeded from (seed, epoch, rank, worker), never from global RNG state, so a resumed run sees
the same data as an uninterrupted one.

Validation and test (`eval_loader`): every sample exactly once. Each rank reads all shards of
the part in order (split across its loader workers), and keeps sample i of each worker's
stream where i % world_size == rank; metric sums are then reduced across ranks.

Decoding follows the contract: labels from json (class order: the shard set's emotion classes, GENDERS); the FLAC to
int16, normalised per utterance to zero mean and unit variance over its valid samples (a
silent utterance stays zero); the stacked JPEG (PIL) to frames (steps, 3, 96, 96) uint8, the
layout the model takes. steps = ceil(n_samples / 640), at most 150 (6 s; longer audio is
cut, which the contract does not produce); frames beyond `steps` are dropped and the last
frame is repeated to reach it. Modality "a" never decodes the JPEG, "v" never the FLAC.
Decoding and collating work in numpy, single-threaded: torch's intra-op threads spin on
small copies when the cores are busy (collating a batch took 6x longer in torch here).

A corrupt sample (bad json, unknown format_version, undecodable flac/jpeg, wrong shapes) or
an unreadable tar becomes a `Skipped` record naming shard and key. With on_error="skip" it
travels in the stream to the next Batch (`Batch.skipped`), so the training loop can print
and count it even when it was found in a loader worker; with on_error="raise" (--strict)
it stops the run with a SampleError.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import shardformat
import torch
import webdataset as wds
from shardformat import FRAME_SIZE, GENDERS, MAX_AUDIO_SAMPLES, SAMPLES_PER_FRAME
from torch import Tensor

MODALITIES = ("av", "a", "v")
# A Batcher that sees this many bad samples without one good sample stops: the shards are
# broken beyond skipping (and a resampled stream would otherwise spin forever).
MAX_SKIPS_WITHOUT_A_SAMPLE = 1000

ErrorPolicy = Literal["raise", "skip"]


class ShardsError(Exception):
    """The shard folder or splits.json is unusable for the requested split and part."""


class SampleError(Exception):
    """A sample or shard that cannot be read; the message names the shard and key."""


# ---------------------------------------------------------------------------------------------
# splits.json


@dataclass(frozen=True)
class Part:
    split: str
    name: str  # "train", "val" or "test"
    shards: tuple[str, ...]  # paths of the tar files
    samples: int
    shard_samples: dict[str, int]  # path -> samples, from index.json (shards it lists)
    emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS  # the shard set's classes, in label order


def read_part(shards_dir: Path | str, split: str, part: str) -> Part:
    """One part of one split of SHARDS/splits.json, checked: known version, non-empty, files present."""
    shards_dir = Path(shards_dir)
    splits_file = shards_dir / "splits.json"
    if not splits_file.is_file():
        raise ShardsError(f"{splits_file}: not found; is {shards_dir} a folder written by `emoprep shard`?")
    try:
        doc = shardformat.parse_splits(splits_file.read_text(encoding="utf-8"))
        entry = doc.part(split, part)
    except (ValueError, UnicodeDecodeError) as exn:
        raise ShardsError(f"{splits_file}: {exn}") from exn
    paths = tuple(str(shards_dir / name) for name in entry.shards)
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ShardsError(f"split {split!r} part {part!r}: {len(missing)} shard file(s) missing, "
                          f"e.g. {missing[0]}; re-run `emoprep shard` or copy the whole folder")
    counts = read_shard_counts(shards_dir)
    return Part(split=split, name=part, shards=paths, samples=entry.samples,
                shard_samples={p: counts[p] for p in paths if p in counts}, emotions=doc.emotions)


def read_shard_counts(shards_dir: Path) -> dict[str, int]:
    """path -> samples from SHARDS/index.json; empty when there is none (the check is then skipped)."""
    try:
        doc = shardformat.parse_index((shards_dir / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(shards_dir / name): samples for name, samples in doc.shard_samples.items()}


# ---------------------------------------------------------------------------------------------
# records that flow through the stages


@dataclass(frozen=True)
class Skipped:
    """A sample (or the rest of a shard) that was left out, and why."""

    shard: str
    key: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.shard}: {self.key or '-'}: {self.reason}"


@dataclass(frozen=True)
class Example:
    """One decoded utterance; audio is None for modality "v", frames None for "a"."""

    key: str
    audio: np.ndarray | None  # (n,) float32, normalised, n <= steps * SAMPLES_PER_FRAME
    frames: np.ndarray | None  # (steps, 3, 96, 96) uint8
    steps: int
    emotion: int
    gender: int


@dataclass(frozen=True)
class Batch:
    audio: Tensor | None  # (B, max_steps * SAMPLES_PER_FRAME) float32, zero-padded
    frames: Tensor | None  # (B, max_steps, 3, 96, 96) uint8, zero-padded
    lengths: Tensor  # (B,) int64 valid steps
    emotion: Tensor  # (B,) int64
    gender: Tensor  # (B,) int64
    keys: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # messages of samples left out since the previous batch

    @property
    def size(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._map(Tensor.pin_memory)

    def _map(self, f: Callable[[Tensor], Tensor]) -> Batch:
        tensors = (self.audio, self.frames, self.lengths, self.emotion, self.gender)
        return Batch(*(None if t is None else f(t) for t in tensors), self.keys, self.skipped)


# ---------------------------------------------------------------------------------------------
# decoding one sample (pure: bytes in, Example out, ValueError with the reason on bad input)


def normalise_audio(audio: np.ndarray) -> np.ndarray:
    x = audio.astype(np.float32)
    x -= x.mean()
    # One int16 step as the floor: silence stays silence instead of amplified dither.
    x /= max(float(x.std()), 1.0)
    return x


def frames_for_steps(frames: np.ndarray, steps: int) -> np.ndarray:
    """(n, 96, 96, 3) -> (steps, 3, 96, 96) uint8: extra frames dropped, the last one repeated to fill."""
    frames = frames[:steps]
    if len(frames) < steps:
        frames = np.concatenate([frames, np.repeat(frames[-1:], steps - len(frames), axis=0)])
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2))


def decode_sample(raw: dict, modality: str, emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS) -> Example:
    """A raw WebDataset sample (`__key__`, `json`, `flac`, `frames.jpg`) -> Example, for training or scoring.

    The sample must be labelled and carry what the modality needs.
    """
    needed = ["json"] + (["flac"] if modality != "v" else []) + (["frames.jpg"] if modality != "a" else [])
    missing = [m for m in needed if m not in raw]
    if missing:
        raise ValueError(f"missing member(s) {', '.join('.' + m for m in missing)}")
    meta = shardformat.decode_meta(raw["json"], emotions)
    if meta.emotion is None or meta.gender is None:
        raise ValueError("unlabelled sample (emotion or gender is null): it can be predicted, not trained on")
    steps = shardformat.steps_of(meta.n_samples)
    audio = frames = None
    if modality != "v":
        audio = normalise_audio(shardformat.decode_audio(raw["flac"], meta.n_samples)[:MAX_AUDIO_SAMPLES])
    if modality != "a":
        frames = frames_for_steps(shardformat.decode_frames(raw["frames.jpg"], meta.n_frames), steps)
    return Example(
        key=raw["__key__"], audio=audio, frames=frames, steps=steps,
        emotion=emotions.index(meta.emotion), gender=GENDERS.index(meta.gender),
    )


def collate(examples: list[Example], skipped: list[Skipped] = ()) -> Batch:
    """Pad audio to the batch's longest (a multiple of SAMPLES_PER_FRAME) and frames to as many steps."""
    steps = max((e.steps for e in examples), default=0)
    audio = frames = None
    if examples and examples[0].audio is not None:
        audio = np.zeros((len(examples), steps * SAMPLES_PER_FRAME), dtype=np.float32)
        for row, e in enumerate(examples):
            audio[row, : len(e.audio)] = e.audio
        audio = torch.from_numpy(audio)
    if examples and examples[0].frames is not None:
        frames = np.zeros((len(examples), steps, 3, FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)
        for row, e in enumerate(examples):
            frames[row, : e.steps] = e.frames
        frames = torch.from_numpy(frames)
    as_long = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return Batch(
        audio=audio, frames=frames,
        lengths=as_long([e.steps for e in examples]),
        emotion=as_long([e.emotion for e in examples]),
        gender=as_long([e.gender for e in examples]),
        keys=tuple(e.key for e in examples),
        skipped=tuple(str(s) for s in skipped),
    )


# ---------------------------------------------------------------------------------------------
# stages: small picklable callables over iterators, each with its error policy


def _worker_id() -> int:
    info = torch.utils.data.get_worker_info()
    return 0 if info is None else info.id


@dataclass(frozen=True)
class RankWorkerSeed:
    """ResampledShards' worker_seed: distinct per (rank, loader worker), given the rank explicitly."""

    rank: int

    def __call__(self) -> int:
        return self.rank * 1000 + _worker_id()


@dataclass(frozen=True)
class ReadShards:
    """{"url": shard} -> raw samples; a tar error, or fewer samples than index.json lists, names the shard.

    A tar cut between two samples reads without error: only the count can tell.
    """

    on_error: ErrorPolicy = "raise"
    shard_samples: dict[str, int] = field(default_factory=dict)

    def __call__(self, shards: Iterable[dict]) -> Iterator[dict | Skipped]:
        for shard in shards:
            url = shard["url"]
            last_key, count, problem = None, 0, None
            try:
                for sample in wds.tarfile_to_samples()(iter([{"url": url}])):
                    last_key, count = sample["__key__"], count + 1
                    yield sample
            except Exception as exn:  # noqa: BLE001: whatever the tar reader raises is about this shard
                # WebDataset appends " @ <stream>" and stream objects to the message; keep the reason.
                reason = str(exn.args[0]).split(" @ ")[0] if exn.args else type(exn).__name__
                where = f"after sample {last_key}" if last_key else "before its first sample"
                problem = Skipped(url, None, f"unreadable tar {where}: {reason}; the rest of the shard is skipped")
            expected = self.shard_samples.get(url)
            if problem is None and expected is not None and count < expected:
                problem = Skipped(url, None, f"the tar ends after {count} of the {expected} samples index.json "
                                             "lists (truncated?)")
            if problem is not None:
                if self.on_error == "raise":
                    raise SampleError(f"{problem} (run without --strict to skip what cannot be read)")
                yield problem


@dataclass(frozen=True)
class KeepEvery:
    """Sample i of the stream where i % world_size == rank (skipped records count, so ranks agree)."""

    rank: int
    world_size: int

    def __call__(self, samples: Iterable) -> Iterator:
        return itertools.islice(samples, self.rank, None, self.world_size)


@dataclass(frozen=True)
class ShuffleSamples:
    """wds.shuffle with a buffer of raw samples, seeded per (seed, rank, loader worker)."""

    bufsize: int
    seed: int
    rank: int

    def __call__(self, samples: Iterable) -> Iterator:
        rng = random.Random(wds.utils.make_seed(self.seed, self.rank, _worker_id()))
        return wds.shuffle(self.bufsize, initial=min(self.bufsize, 100), rng=rng)(iter(samples))


@dataclass(frozen=True)
class Decode:
    """Raw samples -> Examples; a sample that does not decode is named (shard, key) and skipped or raised."""

    modality: str
    on_error: ErrorPolicy = "raise"
    emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS

    def __call__(self, samples: Iterable[dict | Skipped]) -> Iterator[Example | Skipped]:
        for raw in samples:
            if isinstance(raw, Skipped):
                yield raw
                continue
            try:
                yield decode_sample(raw, self.modality, self.emotions)
            except Exception as exn:  # noqa: BLE001: decoders raise many types; all mean "bad sample"
                problem = Skipped(raw.get("__url__", "?"), raw.get("__key__"), f"{type(exn).__name__}: {exn}")
                if self.on_error == "raise":
                    raise SampleError(f"{problem} (run without --strict to skip what cannot be read)") from exn
                yield problem


@dataclass(frozen=True)
class Batcher:
    """Examples -> Batches of `batch_size` (the last one partial); Skipped records join the next batch."""

    batch_size: int

    def __call__(self, items: Iterable[Example | Skipped]) -> Iterator[Batch]:
        examples: list[Example] = []
        skipped: list[Skipped] = []
        for item in items:
            if isinstance(item, Skipped):
                skipped.append(item)
                if len(skipped) >= MAX_SKIPS_WITHOUT_A_SAMPLE and not examples:
                    raise SampleError(f"{len(skipped)} bad samples in a row, e.g. {skipped[-1]}; "
                                      "check the shards with `emoprep verify`")
                continue
            examples.append(item)
            if len(examples) == self.batch_size:
                yield collate(examples, skipped)
                examples, skipped = [], []
        if examples or skipped:
            yield collate(examples, skipped)


# ---------------------------------------------------------------------------------------------
# loaders


def batches_per_rank(part: Part, batch_size: int, world_size: int) -> int:
    """Training batches every rank yields per epoch: enough for one pass over the part in all."""
    return math.ceil(part.samples / (batch_size * world_size))


def train_loader(
    part: Part, *, modality: str, batch_size: int, epoch: int, seed: int, rank: int = 0,
    world_size: int = 1, workers: int = 0, shuffle_buffer: int = 1000, on_error: ErrorPolicy = "skip",
    pin_memory: bool = False,
) -> wds.WebLoader:
    """One epoch of training batches: exactly batches_per_rank(...) on every rank, order fixed by (seed, epoch)."""
    epoch_seed = wds.utils.make_seed(seed, epoch)
    pipeline = wds.DataPipeline(
        wds.ResampledShards(list(part.shards), seed=epoch_seed, worker_seed=RankWorkerSeed(rank),
                            deterministic=True),
        ReadShards(on_error, part.shard_samples),
        ShuffleSamples(shuffle_buffer, seed=epoch_seed, rank=rank),
        Decode(modality, on_error, part.emotions),
        Batcher(batch_size),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)
    return loader.with_epoch(batches_per_rank(part, batch_size, world_size))


def eval_loader(
    part: Part, *, modality: str, batch_size: int, rank: int = 0, world_size: int = 1, workers: int = 0,
    on_error: ErrorPolicy = "skip", pin_memory: bool = False,
) -> wds.WebLoader:
    """Every sample of the part exactly once over all ranks; this rank's share, in shard order per worker."""
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(list(part.shards)),
        wds.split_by_worker,
        ReadShards(on_error, part.shard_samples),
        KeepEvery(rank, world_size),
        Decode(modality, on_error, part.emotions),
        Batcher(batch_size),
    )
    return wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)

"""Shards -> padded batches, as a visible list of WebDataset stages (shards/README.md is the contract).

Training, per epoch (`train_loader`):

    ResampleShards       the part's shards drawn with replacement (each with its source's weight),
                         seeded by (seed, epoch), per rank and worker
    -> ReadShards        tar members -> raw samples, local or fetched (emotrain.sources: bounded
                         waits, retries); a broken or unfetchable tar is named, then skipped or raised
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
layout the model takes. With frames_on="device" the workers only check the JPEG's header and
Batch.to decodes the batch's JPEGs on the training device (nvJPEG on CUDA), the same pixels. steps = ceil(n_samples / 640), at most 150 (6 s; longer audio is
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
import contextlib
import dataclasses
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import shardformat
import torch
import webdataset as wds
from shardformat import FRAME_SIZE, GENDERS, MAX_AUDIO_SAMPLES, SAMPLES_PER_FRAME
from torch import Tensor

from emotrain.sources import FetchPolicy, ShardSource, is_transient, open_url, parse_source, read_bytes

MODALITIES = ("av", "a", "v")
# A Batcher that sees this many bad samples without one good sample stops: the shards are
# broken beyond skipping (and a resampled stream would otherwise spin forever).
MAX_SKIPS_WITHOUT_A_SAMPLE = 1000

# A stream that cannot fetch this many shards in a row stops even when skipping: the source is
# down, and skipping on would only spin (a resampled stream never runs out of shards to fail on).
MAX_UNFETCHABLE_IN_A_ROW = 3
# Where the stacked JPEG is decoded: in the loader workers (PIL), or per batch on the training
# device by Batch.to (nvJPEG on CUDA, libjpeg-turbo on CPU) while the workers only check its header.
FRAME_DECODING = ("loader", "device")

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
    shards: tuple[str, ...]  # paths or URLs of the tar files
    samples: int
    shard_samples: dict[str, int]  # path -> samples, from index.json (shards it lists)
    emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS  # the shard set's classes, in label order
    weights: Mapping[str, float] = field(default_factory=dict)  # path -> its source's weight (absent: 1)


Sources = str | Path | ShardSource | Sequence[str | Path | ShardSource]


def as_sources(sources: Sources) -> list[ShardSource]:
    """One source or several, as given to --shards (`LOCATION[@WEIGHT]`), as ShardSource records."""
    if isinstance(sources, (str, Path, ShardSource)):
        sources = [sources]
    try:
        parsed = [s if isinstance(s, ShardSource) else parse_source(str(s)) for s in sources]
    except ValueError as exn:
        raise ShardsError(str(exn)) from exn
    if not parsed:
        raise ShardsError("no shard source given")
    return parsed


def read_part(sources: Sources, split: str, part: str, policy: FetchPolicy | None = None) -> Part:
    """One part of one split over one or several shard sets (folders or URL prefixes), checked.

    Several sources are one part: their shards together, each drawn with its source's weight
    in training; their class lists must agree (labels are indices into them).
    """
    try:
        policy = policy or FetchPolicy.from_env()
    except ValueError as exn:
        raise ShardsError(str(exn)) from exn
    parts = [(source, read_source_part(source, split, part, policy)) for source in as_sources(sources)]
    (first, one), rest = parts[0], parts[1:]
    for source, other in rest:
        if other.emotions != one.emotions:
            raise ShardsError(f"the shard sets disagree on the emotion classes: {first} has "
                              f"{', '.join(one.emotions)}; {source} has {', '.join(other.emotions)}. "
                              "Mix only shard sets written with the same class list")
    shards = tuple(url for _, p in parts for url in p.shards)
    if len(set(shards)) < len(shards):
        raise ShardsError(f"split {split!r} part {part!r}: a shard set is given twice (the same shard file "
                          "appears in two sources)")
    return Part(split=split, name=part, shards=shards, samples=sum(p.samples for _, p in parts),
                shard_samples={url: n for _, p in parts for url, n in p.shard_samples.items()},
                emotions=one.emotions,
                weights={url: s.weight for s, p in parts if s.weight != 1.0 for url in p.shards})


def read_splits(source: ShardSource, policy: FetchPolicy) -> shardformat.SplitsDoc:
    """SOURCE/splits.json, fetched wherever it is and parsed; ShardsError naming the URL otherwise."""
    splits_url = source.url_of("splits.json")
    try:
        text = read_bytes(splits_url, policy).decode("utf-8")
    except FileNotFoundError:
        raise ShardsError(f"{splits_url}: not found; is {source.location} a shard set written by "
                          "`emoprep shard`?") from None
    except (OSError, UnicodeDecodeError) as exn:
        raise ShardsError(f"{splits_url}: could not be read: {exn}") from exn
    try:
        return shardformat.parse_splits(text)
    except ValueError as exn:
        raise ShardsError(f"{splits_url}: {exn}") from exn


def read_source_part(source: ShardSource, split: str, part: str, policy: FetchPolicy) -> Part:
    """One part of one split of SOURCE/splits.json: known version, non-empty, local files present."""
    doc = read_splits(source, policy)
    try:
        entry = doc.part(split, part)
    except ValueError as exn:
        raise ShardsError(f"{source.url_of('splits.json')}: {exn}") from exn
    paths = tuple(source.url_of(name) for name in entry.shards)
    # Remote shards are not probed one by one (a request each): the first fetch tells.
    missing = [] if source.remote else [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ShardsError(f"split {split!r} part {part!r}: {len(missing)} shard file(s) missing, "
                          f"e.g. {missing[0]}; re-run `emoprep shard` or copy the whole folder")
    counts = read_shard_counts(source, policy)
    return Part(split=split, name=part, shards=paths, samples=entry.samples,
                shard_samples={p: counts[p] for p in paths if p in counts}, emotions=doc.emotions)


def read_shard_counts(source: ShardSource, policy: FetchPolicy) -> dict[str, int]:
    """path -> samples from SOURCE/index.json; empty when there is none (the count check is then skipped)."""
    index_url = source.url_of("index.json")
    try:
        doc = shardformat.parse_index(read_bytes(index_url, policy).decode("utf-8"))
    except (FileNotFoundError, ValueError):  # none, or not an index: the count check is skipped
        return {}
    except OSError as exn:
        if not source.remote:
            return {}
        raise ShardsError(f"{index_url}: could not be read: {exn}") from exn
    return {source.url_of(name): samples for name, samples in doc.shard_samples.items()}


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
    jpeg: bytes | None = None  # the stacked JPEG, header checked, when frames are decoded on the device
    n_frames: int = 0  # frames in `jpeg`


@dataclass(frozen=True)
class Batch:
    audio: Tensor | None  # (B, max_steps * SAMPLES_PER_FRAME) float32, zero-padded
    frames: Tensor | None  # (B, max_steps, 3, 96, 96) uint8, zero-padded
    lengths: Tensor  # (B,) int64 valid steps
    emotion: Tensor  # (B,) int64
    gender: Tensor  # (B,) int64
    keys: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # messages of samples left out since the previous batch
    # Frames still to decode (frames is None): the batch's stacked JPEGs end to end in one uint8 tensor
    # on the CPU (one shared-memory transfer from a loader worker, not one per sample), their sizes
    # in bytes and their frame counts.
    jpegs: Tensor | None = None
    jpeg_sizes: tuple[int, ...] = ()
    jpeg_frames: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        """The batch on `device`; frames still JPEG are decoded there (nvJPEG on CUDA)."""
        moved = self._map(lambda t: t.to(device, non_blocking=non_blocking), TENSORS)
        if self.jpegs is None:
            return moved
        try:
            jpegs = torch.split(self.jpegs, list(self.jpeg_sizes))  # decode_jpeg takes its input on the CPU
            frames = decode_frames_batch(jpegs, self.jpeg_frames, self.lengths.tolist(), torch.device(device))
        except RuntimeError as exn:  # only the header was checked in the loader
            raise SampleError(f"the frames of one of {', '.join(self.keys)} do not decode on {device}: {exn}") from exn
        return dataclasses.replace(moved, frames=frames, jpegs=None, jpeg_sizes=(), jpeg_frames=())

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._map(Tensor.pin_memory, TENSORS + ("jpegs",))

    def _map(self, f: Callable[[Tensor], Tensor], names: tuple[str, ...]) -> Batch:
        return dataclasses.replace(self, **{n: None if getattr(self, n) is None else f(getattr(self, n))
                                            for n in names})


TENSORS = ("audio", "frames", "lengths", "emotion", "gender")  # what Batch.to moves


def decode_frames_batch(jpegs: Sequence[Tensor], n_frames: Sequence[int], steps: Sequence[int],
                        device: torch.device) -> Tensor:
    """Stacked JPEGs -> (B, max steps, 3, 96, 96) uint8 on `device`, as collate lays out decoded frames.

    One torchvision.io.decode_jpeg call for the batch: on CUDA it is nvJPEG's batched decode; on
    CPU libjpeg-turbo, the library PIL wraps (the same pixels, see tests/emotrain/test_data.py).
    Frames beyond a sample's steps are dropped and its last frame repeated to reach them, as in
    frames_for_steps.
    """
    from torchvision.io import ImageReadMode, decode_jpeg  # torchvision loads slowly; only this path needs it

    images = decode_jpeg(list(jpegs), mode=ImageReadMode.RGB, device=device)
    out = torch.zeros((len(images), max(steps, default=0), 3, FRAME_SIZE, FRAME_SIZE), dtype=torch.uint8,
                      device=device)
    for row, (image, n, length) in enumerate(zip(images, n_frames, steps)):
        frames = image.view(3, n, FRAME_SIZE, FRAME_SIZE).transpose(0, 1)[:length]  # frame i = rows 96 i ..
        out[row, : len(frames)] = frames
        out[row, len(frames): length] = frames[-1]
    return out


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


def decode_frames_turbo(jpeg: bytes, n_frames: int) -> np.ndarray:
    """shardformat.decode_frames through torchvision's libjpeg-turbo binding: the same pixels, no PIL Image."""
    from torchvision.io import ImageReadMode, decode_jpeg

    shardformat.check_frames_jpeg(jpeg, n_frames)
    chw = decode_jpeg(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8), mode=ImageReadMode.RGB)
    return chw.numpy().transpose(1, 2, 0).reshape(n_frames, FRAME_SIZE, FRAME_SIZE, 3)


# CPU decoders of the stacked JPEG, by name. benchmarks/loader.py --decoders times them: torchvision's
# decode is 1.13x PIL's alone but no faster in the loader (benchmarks/README.md, 2026-11-29), so PIL stays.
FRAME_DECODERS: dict[str, Callable[[bytes, int], np.ndarray]] = {
    "pil": shardformat.decode_frames, "torchvision": decode_frames_turbo}
FRAME_DECODER = "pil"


def decode_sample(raw: dict, modality: str, emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS,
                  frames_on: str = "loader", frame_decoder: str = FRAME_DECODER) -> Example:
    """A raw WebDataset sample (`__key__`, `json`, `flac`, `frames.jpg`) -> Example, for training or scoring.

    The sample must be labelled and carry what the modality needs. frames_on="device" keeps
    the JPEG (its header checked) for Batch.to to decode.
    """
    needed = ["json"] + (["flac"] if modality != "v" else []) + (["frames.jpg"] if modality != "a" else [])
    missing = [m for m in needed if m not in raw]
    if missing:
        raise ValueError(f"missing member(s) {', '.join('.' + m for m in missing)}")
    meta = shardformat.decode_meta(raw["json"], emotions)
    if meta.emotion is None or meta.gender is None:
        raise ValueError("unlabelled sample (emotion or gender is null): it can be predicted, not trained on")
    steps = shardformat.steps_of(meta.n_samples)
    audio = frames = jpeg = None
    if modality != "v":
        audio = normalise_audio(shardformat.decode_audio(raw["flac"], meta.n_samples)[:MAX_AUDIO_SAMPLES])
    if modality != "a" and frames_on == "device":
        shardformat.check_frames_jpeg(raw["frames.jpg"], meta.n_frames)
        jpeg = raw["frames.jpg"]
    elif modality != "a":
        frames = frames_for_steps(FRAME_DECODERS[frame_decoder](raw["frames.jpg"], meta.n_frames), steps)
    return Example(
        key=raw["__key__"], audio=audio, frames=frames, steps=steps,
        emotion=emotions.index(meta.emotion), gender=GENDERS.index(meta.gender),
        jpeg=jpeg, n_frames=meta.n_frames if jpeg is not None else 0,
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
    pending = examples and examples[0].jpeg is not None
    as_long = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return Batch(
        audio=audio, frames=frames,
        lengths=as_long([e.steps for e in examples]),
        emotion=as_long([e.emotion for e in examples]),
        gender=as_long([e.gender for e in examples]),
        keys=tuple(e.key for e in examples),
        skipped=tuple(str(s) for s in skipped),
        jpegs=torch.frombuffer(bytearray(b"".join(e.jpeg for e in examples)), dtype=torch.uint8) if pending else None,
        jpeg_sizes=tuple(len(e.jpeg) for e in examples) if pending else (),
        jpeg_frames=tuple(e.n_frames for e in examples) if pending else (),
    )


# ---------------------------------------------------------------------------------------------
# stages: small picklable callables over iterators, each with its error policy


def _worker_id() -> int:
    info = torch.utils.data.get_worker_info()
    return 0 if info is None else info.id


@dataclass(frozen=True)
class ResampleShards:
    """An endless stream of {"url": shard} drawn with replacement, shard i with probability in
    proportion to weights[i], seeded per (seed, rank, loader worker).

    With the weight of its source on every shard, a source's share of the samples is its
    weight times its samples, over the sum of those: weights 1 (the default) mix sources in
    proportion to their sizes.
    """

    urls: tuple[str, ...]
    weights: tuple[float, ...]
    seed: int
    rank: int

    def __call__(self) -> Iterator[dict]:
        rng = random.Random(wds.utils.make_seed(self.seed, self.rank, _worker_id()))
        while True:
            for url in rng.choices(self.urls, self.weights, k=256):
                yield {"url": url}


def tar_samples(url: str, policy: FetchPolicy) -> Iterator[dict]:
    """The raw samples of one tar file (local or remote), the stream closed however the reading ends."""
    with contextlib.closing(open_url(url, policy)) as stream:
        files = wds.tariterators.tar_file_expander(iter([{"url": url, "stream": stream}]))
        yield from wds.tariterators.group_by_keys(files)


def reason_of(exn: BaseException) -> str:
    # WebDataset appends " @ <stream>" and stream objects to the message; keep the reason.
    return str(exn.args[0]).split(" @ ")[0] if exn.args else type(exn).__name__


@dataclass(frozen=True)
class ReadShards:
    """{"url": shard} -> raw samples; a tar error, or fewer samples than index.json lists, names the shard.

    A tar cut between two samples reads without error: only the count can tell. A fetch that
    fails (connection lost, silent for policy.timeout, server error) is tried again after the
    policy's pauses, from the start of the shard, skipping the samples already given, so a
    retried shard still gives each sample once. A shard that cannot be fetched after the
    retries is a problem like a corrupt tar; MAX_UNFETCHABLE_IN_A_ROW of them stop the stream
    whatever the policy.
    """

    on_error: ErrorPolicy = "raise"
    shard_samples: dict[str, int] = field(default_factory=dict)
    policy: FetchPolicy = field(default_factory=FetchPolicy.from_env)

    def __call__(self, shards: Iterable[dict]) -> Iterator[dict | Skipped]:
        unfetchable = 0
        for shard in shards:
            problem, fetched = yield from self.read_shard(shard["url"])
            unfetchable = 0 if fetched else unfetchable + 1
            if problem is not None:
                if self.on_error == "raise":
                    raise SampleError(f"{problem} (run without --strict to skip what cannot be read)")
                if unfetchable >= MAX_UNFETCHABLE_IN_A_ROW:
                    raise SampleError(f"{unfetchable} shards in a row could not be fetched, the last: {problem}; "
                                      "is the shard server up?")
                yield problem

    def read_shard(self, url: str) -> Generator[dict, None, tuple[Skipped | None, bool]]:
        """Yield the shard's samples; return what went wrong (or None) and whether the shard could be fetched."""
        last_key, count = None, 0
        pauses = self.policy.pauses()
        while True:
            try:
                for index, sample in enumerate(tar_samples(url, self.policy)):
                    if index >= count:  # a retry re-reads the shard from its start
                        last_key, count = sample["__key__"], count + 1
                        yield sample
                break
            except Exception as exn:  # noqa: BLE001: whatever the tar reader raises is about this shard
                where = f"after sample {last_key}" if last_key else "before its first sample"
                if isinstance(exn, FileNotFoundError):  # no retry cures it
                    return Skipped(url, None, f"not found: {reason_of(exn)}"), False
                if not is_transient(exn):
                    return Skipped(url, None, f"unreadable tar {where}: {reason_of(exn)}; "
                                              "the rest of the shard is skipped"), True
                pause = next(pauses, None)
                if pause is None:
                    return Skipped(url, None, f"could not be fetched {where} ({self.policy.retries + 1} attempts, "
                                              f"{self.policy.timeout:g} s timeout): {reason_of(exn)}"), False
                time.sleep(pause)
        expected = self.shard_samples.get(url)
        if expected is not None and count < expected:
            return Skipped(url, None, f"the tar ends after {count} of the {expected} samples index.json "
                                      "lists (truncated?)"), True
        return None, True


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
    frames_on: str = "loader"  # one of FRAME_DECODING
    frame_decoder: str = FRAME_DECODER  # with frames_on="loader": a name in FRAME_DECODERS

    def __call__(self, samples: Iterable[dict | Skipped]) -> Iterator[Example | Skipped]:
        for raw in samples:
            if isinstance(raw, Skipped):
                yield raw
                continue
            try:
                yield decode_sample(raw, self.modality, self.emotions, self.frames_on, self.frame_decoder)
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
    pin_memory: bool = False, frames_on: str = "loader", policy: FetchPolicy | None = None,
    frame_decoder: str = FRAME_DECODER,
) -> wds.WebLoader:
    """One epoch of training batches: exactly batches_per_rank(...) on every rank, order fixed by (seed, epoch).

    Shards are drawn with their source's weight (Part.weights); frames_on="device" leaves the
    JPEG decoding to Batch.to on the training device.
    """
    epoch_seed = wds.utils.make_seed(seed, epoch)
    weights = tuple(part.weights.get(url, 1.0) for url in part.shards)
    pipeline = wds.DataPipeline(
        ResampleShards(part.shards, weights, seed=epoch_seed, rank=rank),
        ReadShards(on_error, part.shard_samples, policy or FetchPolicy.from_env()),
        ShuffleSamples(shuffle_buffer, seed=epoch_seed, rank=rank),
        Decode(modality, on_error, part.emotions, frames_on, frame_decoder),
        Batcher(batch_size),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)
    return loader.with_epoch(batches_per_rank(part, batch_size, world_size))


def eval_loader(
    part: Part, *, modality: str, batch_size: int, rank: int = 0, world_size: int = 1, workers: int = 0,
    on_error: ErrorPolicy = "skip", pin_memory: bool = False, frames_on: str = "loader",
    policy: FetchPolicy | None = None, frame_decoder: str = FRAME_DECODER,
) -> wds.WebLoader:
    """Every sample of the part exactly once over all ranks; this rank's share, in shard order per worker."""
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(list(part.shards)),
        wds.split_by_worker,
        ReadShards(on_error, part.shard_samples, policy or FetchPolicy.from_env()),
        KeepEvery(rank, world_size),
        Decode(modality, on_error, part.emotions, frames_on, frame_decoder),
        Batcher(batch_size),
    )
    return wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)

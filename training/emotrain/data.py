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
from typing import Any, Literal

import numpy as np
import shardformat
import torch
import webdataset as wds
from shardformat import FRAME_SIZE, GENDERS, MAX_AUDIO_SAMPLES, MAX_STEPS, SAMPLES_PER_FRAME
from shardformat.reader import RawSample, ShardReadError, iter_tar, read_meta, read_sample, sample_json
from shardformat.sets import IndexDoc, SplitsDoc, parse_index, parse_splits
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
    policy: FetchPolicy = field(default_factory=FetchPolicy)  # how its remote shards are fetched (fetch_policy())


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


def fetch_policy() -> FetchPolicy:
    """The fetch policy of this process (EMOTRAIN_FETCH_* or the defaults), built where a part is read:
    the Part carries it to the loaders."""
    try:
        return FetchPolicy.from_env()
    except ValueError as exn:
        raise ShardsError(str(exn)) from exn


def read_part(sources: Sources, split: str, part: str, policy: FetchPolicy | None = None) -> Part:
    """One part of one split over one or several shard sets (folders or URL prefixes), checked.

    Several sources are one part: their shards together, each drawn with its source's weight
    in training; their class lists must agree (labels are indices into them).
    """
    policy = policy or fetch_policy()
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
                weights={url: s.weight for s, p in parts if s.weight != 1.0 for url in p.shards}, policy=policy)


def read_splits(source: ShardSource, policy: FetchPolicy) -> SplitsDoc:
    """SOURCE/splits.json, fetched wherever it is and parsed; ShardsError naming the URL otherwise."""
    splits_url = source.url_of("splits.json")
    try:
        text = read_bytes(splits_url, policy)
    except FileNotFoundError:
        raise ShardsError(f"{splits_url}: not found; is {source.location} a shard set written by "
                          "`emoprep shard`?") from None
    except OSError as exn:
        raise ShardsError(f"{splits_url}: could not be read: {exn}") from exn
    try:
        return parse_splits(text)
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
    index = read_index(source, policy, required=False)
    return {} if index is None else {source.url_of(name): n for name, n in index.shard_samples.items()}


def read_index(source: ShardSource, policy: FetchPolicy, *, required: bool = True) -> IndexDoc | None:
    """SOURCE/index.json, fetched and parsed (every shard name checked); None when it is absent and not required.

    ShardsError naming the URL when it cannot be read or is not an index: a set whose index
    lists a name outside the format is refused, never half-read.
    """
    index_url = source.url_of("index.json")
    try:
        text = read_bytes(index_url, policy)
    except FileNotFoundError:
        if not required:
            return None
        raise ShardsError(f"{index_url}: not found; is {source.location} a shard set written by "
                          "`emoprep shard`?") from None
    except OSError as exn:
        if not (required or source.remote):
            return None
        raise ShardsError(f"{index_url}: could not be read: {exn}") from exn
    try:
        return parse_index(text)
    except ValueError as exn:
        raise ShardsError(f"{index_url}: {exn}") from exn


def check_modality(part: Part, modality: str) -> None:
    """ShardsError, one line naming what the set holds, when its samples lack what `modality` needs.

    Judged by the part's first sample (a shard set is extracted with or without video as a whole:
    a speech corpus has no frames at all); samples that lack a member further on are skipped and named.
    """
    if not part.shards:
        return
    # Closed at once: the first sample is all it needs, and a pipe: source is a running command.
    with contextlib.closing(tar_samples(part.shards[0], part.policy)) as samples:
        try:
            first = next(samples, None)
            meta = None if first is None else read_meta(first, part.emotions)
        except (OSError, ShardReadError, ValueError):
            return  # the loader names what is wrong with the shard; this check only knows good samples
    if meta is None:
        return
    holds = [name for name, has in (("audio", meta.has_audio), ("video", meta.has_frames)) if has]
    needs = [name for name, code in (("audio", "a"), ("video", "v")) if code in modality]
    lacking = [name for name in needs if name not in holds]
    if lacking:
        usable = {("audio",): "a", ("video",): "v"}.get(tuple(holds), "av")
        raise ShardsError(f"split {part.split!r} part {part.name!r} holds {' and '.join(holds)} only (its first "
                          f"sample {first.key} has no {' or '.join(lacking)}); --modality {modality} needs "
                          f"{' and '.join(needs)}: use --modality {usable}")


# ---------------------------------------------------------------------------------------------
# records that flow through the stages


@dataclass(frozen=True)
class Skipped:
    """A sample (or the rest of a shard) that was left out, and why; `fields`: its json, when that parsed."""

    shard: str
    key: str | None
    reason: str
    fields: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.shard}: {self.key or '-'}: {self.reason}"


@dataclass(frozen=True)
class Example:
    """One decoded utterance, ready to collate; audio or frames are None where the sample (or the modality) has none."""

    key: str
    audio: np.ndarray | None  # (n,) float32, normalised, n <= steps * SAMPLES_PER_FRAME
    frames: np.ndarray | None  # (steps, 3, 96, 96) uint8
    steps: int
    emotion: int  # index into the shard set's classes; UNLABELLED when the sample has no label
    gender: int  # index into GENDERS; UNLABELLED when unknown
    jpeg: bytes | None = None  # the stacked JPEG, header checked, when frames are decoded on the device
    n_frames: int = 0  # frames in `jpeg`
    shard: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)  # the sample's json (where it came from)

    @property
    def has_video(self) -> bool:
        return self.frames is not None or self.jpeg is not None


UNLABELLED = -1


@dataclass(frozen=True)
class Batch:
    """Padded examples, with which of them have each modality (a missing one is zeros, and False here)."""

    audio: Tensor | None  # (B, max_steps * SAMPLES_PER_FRAME) float32, zero-padded; None: no row has audio
    frames: Tensor | None  # (B, max_steps, 3, 96, 96) uint8, zero-padded; None: no row has frames (yet)
    lengths: Tensor  # (B,) int64 valid steps
    emotion: Tensor  # (B,) int64, UNLABELLED where unknown
    gender: Tensor  # (B,) int64, UNLABELLED where unknown
    has_audio: Tensor  # (B,) bool
    has_video: Tensor  # (B,) bool
    keys: tuple[str, ...]
    shards: tuple[str, ...] = ()
    fields: tuple[Mapping[str, Any], ...] = ()  # each sample's json
    skipped: tuple[Skipped, ...] = ()  # samples left out since the previous batch
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

    def rows(self, keep: Sequence[int]) -> Batch:
        """Only these rows (decoded frames only), padding kept: for predicting the rows that can be predicted."""
        index = torch.tensor(list(keep), dtype=torch.int64)
        picked = self._map(lambda t: t[index.to(t.device)], TENSORS)
        return dataclasses.replace(picked, keys=tuple(self.keys[i] for i in keep),
                                   shards=tuple(self.shards[i] for i in keep),
                                   fields=tuple(self.fields[i] for i in keep), skipped=())

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._map(Tensor.pin_memory, TENSORS + ("jpegs",))

    def _map(self, f: Callable[[Tensor], Tensor], names: tuple[str, ...]) -> Batch:
        return dataclasses.replace(self, **{n: None if getattr(self, n) is None else f(getattr(self, n))
                                            for n in names})


TENSORS = ("audio", "frames", "lengths", "emotion", "gender", "has_audio", "has_video")  # what Batch.to moves


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
# one sample -> Example (pure: the reader's Sample in, Example out, ValueError with the reason on bad input)


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


def example_of(key: str, audio: np.ndarray | None, frames: np.ndarray | None, *, jpeg: bytes | None = None,
               n_frames: int = 0, emotion: int = UNLABELLED, gender: int = UNLABELLED, shard: str = "",
               fields: Mapping[str, Any] | None = None) -> Example:
    """Decoded media -> Example, as training sees them: audio cut to 6 s and normalised (int16 scale),
    steps = ceil(samples / 640) (from the frames when there is no audio), frames cut or their last repeated."""
    if audio is not None:
        audio = normalise_audio(audio[:MAX_AUDIO_SAMPLES])
        steps = shardformat.steps_of(len(audio))
    else:
        steps = min(len(frames) if frames is not None else n_frames, MAX_STEPS)
    if frames is not None:
        frames = frames_for_steps(frames, steps)
    return Example(key=key, audio=audio, frames=frames, steps=steps, emotion=emotion, gender=gender,
                   jpeg=jpeg, n_frames=n_frames if jpeg is not None else 0, shard=shard, fields=fields or {})


def decode_sample(raw: RawSample, modality: str, emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS,
                  frames_on: str = "loader", labelled: bool = True) -> Example:
    """A raw sample -> Example of the modality's members, through the format's reader.

    labelled=True (training, scoring): the sample must carry a label and every member the
    modality needs. labelled=False (prediction): labels may be null and the sample gives what it
    has of the modality, at least one of them. frames_on="device" keeps the JPEG (header
    checked) for Batch.to to decode.
    """
    wants_audio, wants_frames = modality != "v", modality != "a"
    sample = read_sample(raw, emotions, audio=wants_audio,
                         frames="skip" if not wants_frames else "check" if frames_on == "device" else "decode")
    meta = sample.meta
    lacking = [name for name, wanted, has in (("audio", wants_audio, meta.has_audio),
                                              ("video", wants_frames, meta.has_frames)) if wanted and not has]
    if labelled and lacking:
        raise ValueError(f"the sample has no {' and no '.join(lacking)} (n_samples {meta.n_samples}, n_frames "
                         f"{meta.n_frames}); modality {modality!r} needs it")
    if not labelled and len(lacking) == (wants_audio + wants_frames):
        raise ValueError(f"the sample has no {' or '.join(lacking)}")
    if labelled and (meta.emotion is None or meta.gender is None):
        raise ValueError("unlabelled sample (emotion or gender is null): it can be predicted, not trained on")
    return example_of(
        sample.key, sample.audio, sample.frames, jpeg=sample.jpeg, n_frames=meta.n_frames,
        emotion=UNLABELLED if meta.emotion is None else emotions.index(meta.emotion),
        gender=UNLABELLED if meta.gender is None else GENDERS.index(meta.gender),
        shard=sample.shard, fields=meta.fields)


def collate(examples: Sequence[Example], skipped: Sequence[Skipped] = ()) -> Batch:
    """Pad audio to the batch's longest (a multiple of SAMPLES_PER_FRAME) and frames to as many steps."""
    steps = max((e.steps for e in examples), default=0)
    audio = frames = None
    if any(e.audio is not None for e in examples):
        audio = np.zeros((len(examples), steps * SAMPLES_PER_FRAME), dtype=np.float32)
        for row, e in enumerate(examples):
            if e.audio is not None:
                audio[row, : len(e.audio)] = e.audio
        audio = torch.from_numpy(audio)
    if any(e.frames is not None for e in examples):
        frames = np.zeros((len(examples), steps, 3, FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)
        for row, e in enumerate(examples):
            if e.frames is not None:
                frames[row, : e.steps] = e.frames
        frames = torch.from_numpy(frames)
    # Device decoding is all or nothing: training asks every sample for its frames.
    pending = bool(examples) and all(e.jpeg is not None for e in examples)
    as_long = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return Batch(
        audio=audio, frames=frames,
        lengths=as_long([e.steps for e in examples]),
        emotion=as_long([e.emotion for e in examples]),
        gender=as_long([e.gender for e in examples]),
        has_audio=torch.tensor([e.audio is not None for e in examples], dtype=torch.bool),
        has_video=torch.tensor([e.has_video for e in examples], dtype=torch.bool),
        keys=tuple(e.key for e in examples),
        shards=tuple(e.shard for e in examples),
        fields=tuple(e.fields for e in examples),
        skipped=tuple(skipped),
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


def tar_samples(url: str, policy: FetchPolicy) -> Iterator[RawSample]:
    """The raw samples of one tar file (local or remote), the stream closed however the reading ends."""
    with contextlib.closing(open_url(url, policy)) as stream:
        yield from iter_tar(stream, url)


def reason_of(exn: BaseException) -> str:
    if isinstance(exn, ShardReadError):
        return exn.cause
    return str(exn) or type(exn).__name__


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
    policy: FetchPolicy = field(default_factory=FetchPolicy)

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
                        last_key, count = sample.key, count + 1
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
    labelled: bool = True  # False: prediction (labels may be null, a sample gives what it has of the modality)

    def __call__(self, samples: Iterable[RawSample | Skipped]) -> Iterator[Example | Skipped]:
        for raw in samples:
            if isinstance(raw, Skipped):
                yield raw
                continue
            try:
                yield decode_sample(raw, self.modality, self.emotions, self.frames_on, self.labelled)
            except Exception as exn:  # noqa: BLE001: the reader raises ValueError; anything else is a bad sample too
                problem = Skipped(raw.shard, raw.key, str(exn), sample_json(raw))
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
    pin_memory: bool = False, frames_on: str = "loader",
) -> wds.WebLoader:
    """One epoch of training batches: exactly batches_per_rank(...) on every rank, order fixed by (seed, epoch).

    Shards are drawn with their source's weight (Part.weights); frames_on="device" leaves the
    JPEG decoding to Batch.to on the training device.
    """
    epoch_seed = wds.utils.make_seed(seed, epoch)
    weights = tuple(part.weights.get(url, 1.0) for url in part.shards)
    pipeline = wds.DataPipeline(
        ResampleShards(part.shards, weights, seed=epoch_seed, rank=rank),
        ReadShards(on_error, part.shard_samples, part.policy),
        ShuffleSamples(shuffle_buffer, seed=epoch_seed, rank=rank),
        Decode(modality, on_error, part.emotions, frames_on),
        Batcher(batch_size),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)
    return loader.with_epoch(batches_per_rank(part, batch_size, world_size))


def eval_loader(
    part: Part, *, modality: str, batch_size: int, rank: int = 0, world_size: int = 1, workers: int = 0,
    on_error: ErrorPolicy = "skip", pin_memory: bool = False, frames_on: str = "loader",
    labelled: bool = True,
) -> wds.WebLoader:
    """Every sample of the part exactly once over all ranks; this rank's share, in shard order per worker.

    labelled=False is prediction's reading: unlabelled samples, and samples with only part of the modality.
    """
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(list(part.shards)),
        wds.split_by_worker,
        ReadShards(on_error, part.shard_samples, part.policy),
        KeepEvery(rank, world_size),
        Decode(modality, on_error, part.emotions, frames_on, labelled),
        Batcher(batch_size),
    )
    return wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory)

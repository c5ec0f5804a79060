"""Predicting with a trained run: emotion and gender probabilities for decoded samples, and for shards.

Two ways in, one forward pass:

- The Python API, for people who embed the model (no emoprep, no ffmpeg, no shards):

      predictor = Predictor.from_run("runs/mm-dynamic")
      result = predictor.predict(audio=[waveform], frames=[faces])
      result.emotion[0]  # probabilities in predictor.emotions order, e.g. ("ang", "hap", "neu", "sad")

  `waveform`: 16 kHz mono, int16 (or float in [-1, 1]); `faces`: (n, 96, 96, 3) uint8 RGB face
  crops at 25 fps, frame i beside samples [640 i, 640 (i + 1)). At most 6 s are used.
  Either may be None (see "missing modalities").
- `predict_shards`: every sample of a shard folder (or one part of a split), as rows for
  `emotrain predict` (emotrain/prediction_table.py writes them).

Missing modalities. A run trained on audio and video still predicts a sample that has only
one of them. The absent branch's per-step features are replaced by their mean: the average,
over every valid step of up to FILL_SAMPLES samples of the run's own training part, of what
that branch gives (`BranchMeans`, computed once per checkpoint and kept beside it as
RUN/branch-means-<checkpoint>.pt). The LSTM then sees the present branch's features next to
the features of a typical step of the other, not the features of silence or of a black frame
(which it never saw in training: `fill="zeros"` feeds those, for comparison).
docs/prediction.md gives what each costs on the synthetic corpus. When the training shards
are not on this machine the means cannot be computed, and a one-modality sample fails with
that reason. An audio-only run cannot predict a sample without audio (nor a video-only run
one without video): such a sample fails, naming why.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shardformat
import torch
import webdataset as wds
from shardformat import FRAME_SIZE, MAX_AUDIO_SAMPLES, MAX_STEPS, SAMPLES_PER_FRAME
from torch import Tensor

from emotrain.atomic import atomic_path
from emotrain.config import TrainConfig
from emotrain.data import (
    ReadShards, ShardsError, Skipped, Sources, as_sources, eval_loader, frames_for_steps, normalise_audio, read_part,
)
from emotrain.evaluate import load_run
from emotrain.model import GENDERS, EmotionGenderNet
from emotrain.objective import resolve_device
from emotrain.sources import FetchPolicy, read_bytes

FILL_SAMPLES = 128  # training samples the branch means average over
FILLS = ("mean", "zeros")
DROPS = ("audio", "video")


# ---------------------------------------------------------------------------------------------
# one sample, ready for the network


@dataclass(frozen=True)
class Prepared:
    """A sample as the network takes it; audio or frames may be absent, not both."""

    audio: np.ndarray | None  # (n,) float32, normalised, n <= steps * SAMPLES_PER_FRAME
    frames: np.ndarray | None  # (steps, 3, 96, 96) uint8
    steps: int

    @property
    def modalities(self) -> str:
        return "+".join(name for name, present in (("audio", self.audio is not None),
                                                  ("video", self.frames is not None)) if present)


def prepare(audio: np.ndarray | None, frames: np.ndarray | None) -> Prepared:
    """A decoded waveform (16 kHz mono) and face crops ((n, 96, 96, 3) uint8 RGB) -> Prepared.

    As training's decoder does: audio cut to 6 s and normalised, steps = ceil(samples / 640)
    (from the frames when there is no audio), frames cut or their last repeated to `steps`.
    Raises ValueError for empty or misshapen input.
    """
    if audio is not None:
        audio = np.asarray(audio)
        if audio.ndim != 1 or len(audio) == 0:
            raise ValueError(f"audio must be a non-empty 1-D waveform, got shape {audio.shape}")
        if audio.dtype.kind == "f":
            audio = audio * 32768.0  # the normalisation's silence floor is one int16 step
        audio = normalise_audio(audio[:MAX_AUDIO_SAMPLES])
    if frames is not None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3) or frames.dtype != np.uint8 \
                or len(frames) == 0:
            raise ValueError(f"frames must be (n >= 1, {FRAME_SIZE}, {FRAME_SIZE}, 3) uint8 RGB, "
                             f"got {frames.shape} {frames.dtype}")
    if audio is None and frames is None:
        raise ValueError("a sample needs audio or frames; it has neither")
    steps = shardformat.steps_of(len(audio)) if audio is not None else min(len(frames), MAX_STEPS)
    if frames is not None:
        frames = frames_for_steps(frames, steps)
    return Prepared(audio=audio, frames=frames, steps=steps)


@dataclass(frozen=True)
class InputBatch:
    audio: Tensor | None  # (B, steps * 640) float32, zero where absent or padded
    frames: Tensor | None  # (B, steps, 3, 96, 96) uint8
    lengths: Tensor  # (B,) int64
    has_audio: Tensor  # (B,) bool
    has_video: Tensor  # (B,) bool


def collate_prepared(samples: Sequence[Prepared], with_audio: bool, with_video: bool) -> InputBatch:
    steps = max(s.steps for s in samples)
    audio = frames = None
    if with_audio:
        audio = np.zeros((len(samples), steps * SAMPLES_PER_FRAME), np.float32)
        for row, s in enumerate(samples):
            if s.audio is not None:
                audio[row, : len(s.audio)] = s.audio
        audio = torch.from_numpy(audio)
    if with_video:
        frames = np.zeros((len(samples), steps, 3, FRAME_SIZE, FRAME_SIZE), np.uint8)
        for row, s in enumerate(samples):
            if s.frames is not None:
                frames[row, : s.steps] = s.frames
        frames = torch.from_numpy(frames)
    return InputBatch(
        audio=audio, frames=frames,
        lengths=torch.tensor([s.steps for s in samples], dtype=torch.int64),
        has_audio=torch.tensor([s.audio is not None for s in samples]),
        has_video=torch.tensor([s.frames is not None for s in samples]),
    )


# ---------------------------------------------------------------------------------------------
# the branch means that stand in for a missing modality


@dataclass(frozen=True)
class BranchMeans:
    audio: Tensor | None  # (audio_features,) float32
    video: Tensor | None  # (visual_features,)
    samples: int  # training samples averaged over


def branch_means_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(f"branch-means-{checkpoint.stem}.pt")


def checkpoint_digest(checkpoint: Path) -> str:
    """Which checkpoint the cached means belong to: its size and modification time, hashed."""
    stat = checkpoint.stat()
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def compute_branch_means(model: EmotionGenderNet, cfg: TrainConfig, shards: str, device: torch.device) -> BranchMeans:
    """Mean per-step features of each branch over the valid steps of up to FILL_SAMPLES training samples."""
    part = read_part(shards, cfg.split, "train")
    sums: dict[str, Tensor] = {}
    steps_seen = samples = 0
    with torch.no_grad():
        for batch in eval_loader(part, modality="av", batch_size=8, on_error="skip"):
            if not batch.size:
                continue
            batch = batch.to(device)
            valid = torch.arange(int(batch.lengths.max()), device=device) < batch.lengths[:, None]
            for name, branch, inputs in (("audio", model.audio, batch.audio), ("video", model.visual, batch.frames)):
                if branch is not None:
                    features = branch(inputs, batch.lengths).float()[valid]
                    sums[name] = sums.get(name, 0) + features.sum(dim=0)
            steps_seen += int(valid.sum())
            samples += batch.size
            if samples >= FILL_SAMPLES:
                break
    if not samples:
        raise ShardsError(f"{shards}: the training part of {cfg.split!r} gave no sample to average")
    means = {name: (total / steps_seen).cpu() for name, total in sums.items()}
    return BranchMeans(audio=means.get("audio"), video=means.get("video"), samples=samples)


def load_or_compute_branch_means(model: EmotionGenderNet, cfg: TrainConfig, checkpoint: Path, shards: str,
                                 device: torch.device) -> BranchMeans:
    """The cached means of this checkpoint, or new ones (cached when the run folder is writable)."""
    cache = branch_means_path(checkpoint)
    digest = checkpoint_digest(checkpoint)
    if cache.is_file():
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            if saved.get("checkpoint") == digest:
                return BranchMeans(audio=saved.get("audio"), video=saved.get("video"), samples=int(saved["samples"]))
        except Exception:  # noqa: BLE001: a damaged cache is recomputed, never trusted
            pass
    means = compute_branch_means(model, cfg, shards, device)
    try:
        with atomic_path(cache) as tmp:
            torch.save({"checkpoint": digest, "audio": means.audio, "video": means.video,
                        "samples": means.samples}, tmp)
    except OSError:
        pass  # a read-only run folder: the means are recomputed next time
    return means


# ---------------------------------------------------------------------------------------------
# the predictor


@dataclass(frozen=True)
class Probabilities:
    emotion: np.ndarray  # (B, len(emotions)) float64, rows sum to 1
    gender: np.ndarray  # (B, 2)
    missing: tuple[str | None, ...]  # per sample: "audio" or "video" when that branch was filled in, else None


class Predictor:
    """A trained run, ready to predict; see the module docstring for inputs and missing modalities."""

    def __init__(self, model: EmotionGenderNet, device: torch.device, *, fill: str = "mean",
                 branch_means: Callable[[], BranchMeans] | None = None) -> None:
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        self.model = model.eval().to(device)
        self.device = device
        self.fill = fill
        self.emotions: tuple[str, ...] = model.config.emotions
        self.genders: tuple[str, ...] = GENDERS
        self._branch_means_source = branch_means
        self._branch_means: BranchMeans | None = None
        self._branch_means_error: str | None = None

    @classmethod
    def from_run(cls, run: str | Path, *, checkpoint: str = "best", device: str = "auto", fill: str = "mean",
                 fill_shards: str | None = None) -> Predictor:
        """Load RUN/config.json and a checkpoint (weights only). ConfigError / CheckpointError on a bad run.

        `fill_shards`: where the training shards are, for the branch means (default: where the run
        was trained from); only read when a sample lacks a modality.
        """
        loaded = load_run(Path(run), checkpoint)
        torch_device = resolve_device(device)
        model = loaded.objective.model
        if model.audio is None or model.visual is None:
            return cls(model, torch_device, fill=fill)
        shards = fill_shards or loaded.cfg.shards
        return cls(model, torch_device, fill=fill, branch_means=lambda: load_or_compute_branch_means(
            model, loaded.cfg, loaded.path, shards, torch_device))

    @property
    def modality(self) -> str:
        return self.model.config.modality

    def cannot_predict(self, sample: Prepared) -> str | None:
        """Why this run cannot predict `sample` (a missing modality it cannot stand in for), or None."""
        needs = {"a": ("audio",), "v": ("video",), "av": ()}[self.modality]
        present = sample.modalities.split("+")
        for name in needs:
            if name not in present:
                return f"no {name}, and this run was trained on {name} alone"
        if self.modality == "av" and len(present) == 1 and self.fill == "mean":
            if self.means() is None:
                return f"no {'video' if present == ['audio'] else 'audio'}: {self._branch_means_error}"
        return None

    def means(self) -> BranchMeans | None:
        """The branch means, computed on first need; None (with the reason kept) when they cannot be."""
        if self._branch_means_source is None:
            self._branch_means_error = "no branch means were given to this Predictor (Predictor.from_run computes them)"
        if self._branch_means is None and self._branch_means_error is None:
            try:
                self._branch_means = self._branch_means_source()
            except (ShardsError, OSError) as exn:
                self._branch_means_error = (f"the branch means that stand in for it need the run's training "
                                            f"shards, which cannot be read ({exn}); pass --fill-shards")
        return self._branch_means

    def predict(self, audio: Sequence[np.ndarray | None], frames: Sequence[np.ndarray | None]) -> Probabilities:
        """Probabilities for a batch of decoded samples (see the module docstring); ValueError on bad input."""
        if len(audio) != len(frames):
            raise ValueError(f"{len(audio)} waveforms but {len(frames)} frame stacks: give one of each per sample")
        samples = [prepare(a, f) for a, f in zip(audio, frames)]
        for index, sample in enumerate(samples):
            reason = self.cannot_predict(sample)
            if reason:
                raise ValueError(f"sample {index}: {reason}")
        return self.predict_prepared(samples)

    def predict_prepared(self, samples: Sequence[Prepared]) -> Probabilities:
        """Probabilities for samples that cannot_predict() accepted."""
        model = self.model
        batch = collate_prepared(samples, model.audio is not None, model.visual is not None)
        if self.fill == "zeros":  # silence and black frames go through the branches like real input
            batch = InputBatch(batch.audio, batch.frames, batch.lengths,
                               torch.ones_like(batch.has_audio), torch.ones_like(batch.has_video))
        device_type = self.device.type
        lengths = batch.lengths.to(self.device)
        with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
            parts = []
            for branch, inputs, present, name in ((model.audio, batch.audio, batch.has_audio, "audio"),
                                                  (model.visual, batch.frames, batch.has_video, "video")):
                if branch is not None:
                    parts.append(self._branch_features(branch, inputs, lengths, present.to(self.device), name))
            # Under autocast the branches may come back in different dtypes (the FFT path is float32).
            emotion_logits, gender_logits = model.heads(torch.cat([p.float() for p in parts], dim=-1), lengths)
        missing = tuple(None if self.fill == "zeros" else self._filled_branch(s) for s in samples)
        return Probabilities(
            emotion=torch.softmax(emotion_logits.double(), dim=-1).cpu().numpy(),
            gender=torch.softmax(gender_logits.double(), dim=-1).cpu().numpy(),
            missing=missing,
        )

    def _filled_branch(self, sample: Prepared) -> str | None:
        """The branch of this network that the sample has no input for."""
        if self.model.audio is not None and sample.audio is None:
            return "audio"
        if self.model.visual is not None and sample.frames is None:
            return "video"
        return None

    def _branch_features(self, branch: torch.nn.Module, inputs: Tensor, lengths: Tensor, present: Tensor,
                         name: str) -> Tensor:
        """(B, steps, features): the branch on the samples that have its input, the branch mean elsewhere."""
        inputs = inputs.to(self.device, non_blocking=True)
        if bool(present.all()):
            return branch(inputs, lengths)
        mean = getattr(self.means(), name)
        steps = lengths.max()
        out = mean.to(self.device).expand(len(lengths), int(steps), -1).clone()
        if bool(present.any()):
            rows = present.nonzero().squeeze(1)
            # Only as many steps as the longest present sample: the branch sees a batch of its own.
            longest = int(lengths[rows].max())
            sliced = inputs[rows][:, : longest * SAMPLES_PER_FRAME] if name == "audio" else inputs[rows][:, :longest]
            out[rows, :longest] = branch(sliced, lengths[rows]).to(out.dtype)
        return out

# ---------------------------------------------------------------------------------------------
# shards in, one row per window out

@dataclass(frozen=True)
class ShardSelection:
    files: tuple[str, ...]
    samples: int  # for the progress bar
    shard_samples: dict[str, int]
    emotions: tuple[str, ...]  # the shard set's emotion classes (its labels' names)


def select_shards(sources: Sources, split: str | None = None, part: str | None = None) -> ShardSelection:
    """Every shard the sets' index.json lists (an unlabelled set has no splits), or one part of a split.

    `sources` are what --shards takes: folders or URL prefixes, one or several.
    """
    if split is not None:
        chosen = read_part(sources, split, part or "test")
        return ShardSelection(files=chosen.shards, samples=chosen.samples, shard_samples=chosen.shard_samples,
                              emotions=chosen.emotions)
    policy = FetchPolicy.from_env()
    counts: dict[str, int] = {}
    missing: list[str] = []
    emotions: tuple[str, ...] | None = None
    for source in as_sources(sources):
        index_url = source.url_of("index.json")
        try:
            index = shardformat.parse_index(read_bytes(index_url, policy).decode("utf-8"))
        except FileNotFoundError:
            raise ShardsError(f"{index_url}: not found; is {source.location} a shard set written by "
                              "`emoprep shard`?") from None
        except (OSError, UnicodeDecodeError, ValueError) as exn:
            raise ShardsError(f"{index_url}: {exn}") from exn
        if emotions is not None and index.emotions != emotions:
            raise ShardsError(f"{source.location}: its classes ({', '.join(index.emotions)}) differ from the "
                              f"other shard sets' ({', '.join(emotions)})")
        emotions = index.emotions
        urls = {source.url_of(name): n for name, n in index.shard_samples.items()}
        if not urls:
            raise ShardsError(f"{index_url}: lists no shard")
        counts.update(urls)
        if not source.remote:  # remote shards are not probed one by one: the first fetch tells
            missing += [url for url in urls if not Path(url).is_file()]
    if missing:
        raise ShardsError(f"{len(missing)} shard file(s) missing, e.g. {missing[0]}; re-run `emoprep shard`")
    return ShardSelection(files=tuple(counts), samples=sum(counts.values()), shard_samples=counts,
                          emotions=emotions or shardformat.SHARED_EMOTIONS)


@dataclass(frozen=True)
class WindowInfo:
    """Where a sample came from, as its json says (v2: source/start/end; v1: the IEMOCAP dialog)."""

    key: str
    shard: str
    source: str
    start: float | None
    end: float | None
    emotion: str | None  # the label, when the set is labelled
    gender: str | None
    face_ratio: float | None = None  # sampled frames where extract found the face (0: the fixed crop was used)


@dataclass(frozen=True)
class DecodedWindow:
    info: WindowInfo
    sample: Prepared | None
    reason: str | None  # why `sample` is None


def window_info(raw: dict, meta: dict | None) -> WindowInfo:
    meta = meta or {}
    number = lambda value: float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None  # noqa: E731
    return WindowInfo(
        key=raw.get("__key__", "?"), shard=raw.get("__url__", "?"),
        source=str(meta.get("source") or meta.get("dialog") or raw.get("__key__", "?")),
        start=number(meta.get("start")), end=number(meta.get("end")),
        emotion=meta.get("emotion") if isinstance(meta.get("emotion"), str) else None,
        gender=meta.get("gender") if isinstance(meta.get("gender"), str) else None,
        face_ratio=number(meta.get("face_ratio")),
    )


def decode_window(raw: dict, emotions: tuple[str, ...], drop: str | None = None) -> DecodedWindow:
    """A raw sample (v1 or v2) -> what the network takes, or the reason it cannot; `drop` hides a modality.

    `emotions`: the shard set's classes, which its labels are checked against.
    """
    member = ".json"
    info = window_info(raw, None)
    try:
        meta = shardformat.decode_meta(raw["json"], emotions)
        info = window_info(raw, dict(meta.fields))
        has_audio = meta.has_audio and drop != "audio"
        has_video = meta.has_frames and drop != "video"
        if not has_audio and not has_video:
            other = "video" if drop == "audio" else "audio"
            return DecodedWindow(info, None, f"no {other}, and --drop {drop} hid its {drop}")
        member = ".flac"
        audio = None
        if has_audio:
            audio = normalise_audio(shardformat.decode_audio(raw["flac"], meta.n_samples)[:MAX_AUDIO_SAMPLES])
        steps = shardformat.steps_of(len(audio)) if audio is not None else min(meta.n_frames, MAX_STEPS)
        member = ".frames.jpg"
        frames = None
        if has_video:
            frames = frames_for_steps(shardformat.decode_frames(raw["frames.jpg"], meta.n_frames), steps)
    except Exception as exn:  # noqa: BLE001: decoders raise many types; all mean "bad sample"
        detail = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exn))
        return DecodedWindow(info, None, f"{member} does not decode ({type(exn).__name__}: {detail})")
    return DecodedWindow(info, Prepared(audio=audio, frames=frames, steps=steps), None)


@dataclass(frozen=True)
class DecodeWindows:
    """Raw samples (and ReadShards' Skipped records) -> DecodedWindow; picklable for loader workers."""

    emotions: tuple[str, ...] = shardformat.SHARED_EMOTIONS
    drop: str | None = None

    def __call__(self, samples: Iterable[dict | Skipped]) -> Iterator[DecodedWindow]:
        for raw in samples:
            if isinstance(raw, Skipped):
                info = WindowInfo(key="", shard=raw.shard, source=raw.shard, start=None, end=None,
                                  emotion=None, gender=None)
                yield DecodedWindow(info, None, raw.reason)
            else:
                yield decode_window(raw, self.emotions, self.drop)


@dataclass(frozen=True)
class WindowPrediction:
    info: WindowInfo
    modalities: str  # what the sample had: "audio+video", "audio", "video" ("" when it failed)
    filled: str | None  # the branch that was filled in ("audio" / "video"), when one was
    emotion: np.ndarray | None  # probabilities in the run's class order; None: failed
    gender: np.ndarray | None
    reason: str | None  # why it failed


def predict_shards(
    predictor: Predictor, selection: ShardSelection, *, batch_size: int = 16, workers: int = 0,
    drop: str | None = None, on_window: Callable[[], None] = lambda: None,
) -> list[WindowPrediction]:
    """Every sample of the selected shards, predicted in batches; failures are rows too, with their reason."""
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(list(selection.files)),
        wds.split_by_worker,
        ReadShards("skip", selection.shard_samples),
        DecodeWindows(selection.emotions, drop),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers)
    results: list[WindowPrediction] = []
    pending: list[DecodedWindow] = []

    def flush() -> None:
        if pending:
            probabilities = predictor.predict_prepared([w.sample for w in pending])
            for row, window in enumerate(pending):
                results.append(WindowPrediction(window.info, window.sample.modalities, probabilities.missing[row],
                                                probabilities.emotion[row], probabilities.gender[row], None))
                on_window()
            pending.clear()

    for window in loader:
        reason = window.reason or predictor.cannot_predict(window.sample)
        if reason:
            modalities = window.sample.modalities if window.sample is not None else ""
            results.append(WindowPrediction(window.info, modalities, None, None, None, reason))
            on_window()
            continue
        pending.append(window)
        if len(pending) == batch_size:
            flush()
    flush()
    return results

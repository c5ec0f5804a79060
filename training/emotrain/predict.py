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
  `emotrain predict` (emotrain/prediction_table.py writes them). The samples come through
  evaluation's loader and collate (emotrain.data), so a shard is read as training reads it.

Missing modalities. A run trained on audio and video still predicts a sample that has only
one of them. The absent branch's per-step features are replaced by their mean: the average,
over every valid step of up to FILL_SAMPLES samples of the run's own training part, of what
that branch gives (`BranchMeans`, computed once per checkpoint and kept beside it as
RUN/branch-means-<checkpoint>.pt). The network fills the absent branch itself
(EmotionGenderNet.branch_fill, set by the Predictor). The LSTM then sees the present branch's features next to
the features of a typical step of the other, not the features of silence or of a black frame
(which it never saw in training: `fill="zeros"` feeds those, for comparison).
docs/prediction.md gives what each costs on the synthetic corpus. When the training shards
are not on this machine the means cannot be computed, and a one-modality sample fails with
that reason. An audio-only run cannot predict a sample without audio (nor a video-only run
one without video): such a sample fails, naming why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shardformat
import torch
from shardformat import FRAME_SIZE, SAMPLES_PER_FRAME
from torch import Tensor

from emotrain.atomic import atomic_path
from emotrain.config import TrainConfig
from emotrain.data import (
    Batch, Example, Part, ShardsError, Sources, as_sources, collate, eval_loader, example_of, fetch_policy, read_index,
    read_part,
)
from emotrain.run_folder import load_run
from emotrain.model import GENDERS, EmotionGenderNet
from emotrain.objective import resolve_device

FILL_SAMPLES = 128  # training samples the branch means average over
FILLS = ("mean", "zeros")
DROPS = ("audio", "video")


# ---------------------------------------------------------------------------------------------
# one sample, ready for the network


def prepare(audio: np.ndarray | None, frames: np.ndarray | None) -> Example:
    """A decoded waveform (16 kHz mono) and face crops ((n, 96, 96, 3) uint8 RGB) -> the Example training's
    decoder would make of them (emotrain.data.example_of). Raises ValueError for empty or misshapen input."""
    if audio is not None:
        audio = np.asarray(audio)
        if audio.ndim != 1 or len(audio) == 0:
            raise ValueError(f"audio must be a non-empty 1-D waveform, got shape {audio.shape}")
        if audio.dtype.kind == "f":
            audio = audio * 32768.0  # the normalisation's silence floor is one int16 step
    if frames is not None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3) or frames.dtype != np.uint8 \
                or len(frames) == 0:
            raise ValueError(f"frames must be (n >= 1, {FRAME_SIZE}, {FRAME_SIZE}, 3) uint8 RGB, "
                             f"got {frames.shape} {frames.dtype}")
    if audio is None and frames is None:
        raise ValueError("a sample needs audio or frames; it has neither")
    return example_of("", audio, frames)


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
        self.model.branch_fill = self._branch_mean if fill == "mean" else None

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

    def cannot_predict(self, has_audio: bool, has_video: bool) -> str | None:
        """Why this run cannot predict a sample with these inputs (a missing one it cannot stand in for), or None."""
        needs = {"a": ("audio",), "v": ("video",), "av": ()}[self.modality]
        present = {"audio": has_audio, "video": has_video}
        for name in needs:
            if not present[name]:
                return f"no {name}, and this run was trained on {name} alone"
        if self.modality == "av" and not (has_audio and has_video) and self.fill == "mean":
            if self.means() is None:
                return f"no {'video' if has_audio else 'audio'}: {self._branch_means_error}"
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
        examples = [prepare(a, f) for a, f in zip(audio, frames)]
        for index, example in enumerate(examples):
            reason = self.cannot_predict(example.audio is not None, example.has_video)
            if reason:
                raise ValueError(f"sample {index}: {reason}")
        return self.predict_batch(collate(examples))

    def predict_batch(self, batch: Batch) -> Probabilities:
        """Probabilities for a batch whose every row cannot_predict() accepted (emotrain.data's Batch)."""
        model = self.model
        batch = batch.to(self.device, non_blocking=True)
        has_audio, has_video = batch.has_audio, batch.has_video
        missing = tuple(self._missing_branch(bool(a), bool(v)) for a, v in zip(has_audio.tolist(), has_video.tolist()))
        audio, frames = batch.audio, batch.frames
        if self.fill == "zeros":  # silence and black frames go through the branches like real input
            steps = int(batch.lengths.max())
            if audio is None and model.audio is not None:
                audio = torch.zeros((batch.size, steps * SAMPLES_PER_FRAME), device=self.device)
            if frames is None and model.visual is not None:
                frames = torch.zeros((batch.size, steps, 3, FRAME_SIZE, FRAME_SIZE), dtype=torch.uint8,
                                     device=self.device)
            has_audio = has_video = None
            missing = (None,) * batch.size
        device_type = self.device.type
        with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
            emotion_logits, gender_logits = model(audio, frames, batch.lengths, has_audio, has_video)
        return Probabilities(
            emotion=torch.softmax(emotion_logits.double(), dim=-1).cpu().numpy(),
            gender=torch.softmax(gender_logits.double(), dim=-1).cpu().numpy(),
            missing=missing,
        )

    def _missing_branch(self, has_audio: bool, has_video: bool) -> str | None:
        """The branch of this network that a sample has no input for."""
        if self.model.audio is not None and not has_audio:
            return "audio"
        if self.model.visual is not None and not has_video:
            return "video"
        return None

    def _branch_mean(self, name: str, lengths: Tensor) -> Tensor:
        """The model's branch_fill: every step of every row gets the branch's mean features."""
        mean = getattr(self.means(), name)
        return mean.to(lengths.device).expand(len(lengths), int(lengths.max()), -1)


# ---------------------------------------------------------------------------------------------
# shards in, one row per window out


def select_shards(sources: Sources, split: str | None = None, part: str | None = None) -> Part:
    """Every shard the sets' index.json lists (an unlabelled set has no splits), or one part of a split.

    `sources` are what --shards takes: folders or URL prefixes, one or several.
    """
    if split is not None:
        return read_part(sources, split, part or "test")
    policy = fetch_policy()
    counts: dict[str, int] = {}
    missing: list[str] = []
    emotions: tuple[str, ...] | None = None
    for source in as_sources(sources):
        index = read_index(source, policy)
        if emotions is not None and index.emotions != emotions:
            raise ShardsError(f"{source.location}: its classes ({', '.join(index.emotions)}) differ from the "
                              f"other shard sets' ({', '.join(emotions)})")
        emotions = index.emotions
        urls = {source.url_of(name): n for name, n in index.shard_samples.items()}
        if not urls:
            raise ShardsError(f"{source.url_of('index.json')}: lists no shard")
        counts.update(urls)
        if not source.remote:  # remote shards are not probed one by one: the first fetch tells
            missing += [url for url in urls if not Path(url).is_file()]
    if missing:
        raise ShardsError(f"{len(missing)} shard file(s) missing, e.g. {missing[0]}; re-run `emoprep shard`")
    return Part(split="", name="all", shards=tuple(counts), samples=sum(counts.values()), shard_samples=counts,
                emotions=emotions or shardformat.SHARED_EMOTIONS, policy=policy)


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


def window_info(key: str, shard: str, fields: Mapping[str, Any]) -> WindowInfo:
    """A sample's place from its json fields (empty when its json did not parse)."""
    number = lambda value: float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None  # noqa: E731
    text = lambda value: value if isinstance(value, str) else None  # noqa: E731
    return WindowInfo(
        key=key, shard=shard, source=str(text(fields.get("source")) or text(fields.get("dialog")) or key or shard),
        start=number(fields.get("start")), end=number(fields.get("end")),
        emotion=text(fields.get("emotion")), gender=text(fields.get("gender")),
        face_ratio=number(fields.get("face_ratio")),
    )


@dataclass(frozen=True)
class WindowPrediction:
    info: WindowInfo
    modalities: str  # what the sample had: "audio+video", "audio", "video" ("" when it failed)
    filled: str | None  # the branch that was filled in ("audio" / "video"), when one was
    emotion: np.ndarray | None  # probabilities in the run's class order; None: failed
    gender: np.ndarray | None
    reason: str | None  # why it failed


def predict_shards(
    predictor: Predictor, part: Part, *, batch_size: int = 16, workers: int = 0,
    drop: str | None = None, on_window: Callable[[], None] = lambda: None,
) -> list[WindowPrediction]:
    """Every sample of the part's shards, predicted in batches; failures are rows too, with their reason.

    The samples come through evaluation's loader (labelled=False: labels may be null, a sample
    gives what it has); `drop` hides one modality from every sample.
    """
    modality = {None: "av", "audio": "v", "video": "a"}[drop]
    results: list[WindowPrediction] = []

    def failed(info: WindowInfo, modalities: str, reason: str) -> None:
        results.append(WindowPrediction(info, modalities, None, None, None, reason))
        on_window()

    for batch in eval_loader(part, modality=modality, batch_size=batch_size, workers=workers, on_error="skip",
                             labelled=False):
        for skipped in batch.skipped:
            hidden = f"; --drop {drop} hid its {drop}" if drop and skipped.reason.startswith("the sample has no") else ""
            failed(window_info(skipped.key or "", skipped.shard, skipped.fields or {}), "", skipped.reason + hidden)
        keep = []
        for row, (has_audio, has_video) in enumerate(zip(batch.has_audio.tolist(), batch.has_video.tolist())):
            reason = predictor.cannot_predict(has_audio, has_video)
            if reason:
                failed(window_info(batch.keys[row], batch.shards[row], batch.fields[row]),
                       modalities_of(has_audio, has_video), reason)
            else:
                keep.append(row)
        if not keep:
            continue
        chosen = batch.rows(keep)
        probabilities = predictor.predict_batch(chosen)
        for row, (has_audio, has_video) in enumerate(zip(chosen.has_audio.tolist(), chosen.has_video.tolist())):
            info = window_info(chosen.keys[row], chosen.shards[row], chosen.fields[row])
            results.append(WindowPrediction(info, modalities_of(has_audio, has_video), probabilities.missing[row],
                                            probabilities.emotion[row], probabilities.gender[row], None))
            on_window()
    return results


def modalities_of(has_audio: bool, has_video: bool) -> str:
    return "+".join(name for name, present in (("audio", has_audio), ("video", has_video)) if present)

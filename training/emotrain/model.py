"""The seed paper's audio-visual network (and a small twin): raw-audio CNN + frame CNN -> 2-layer LSTM -> two heads.

Shapes for one batch of B utterances of `steps` 40 ms steps (S = steps * 640 samples):

  audio (B, S) ----- Conv1d(1 -> 40, k=80, same) -> max-pool 2 (8 kHz)          (B, 40, steps*320)
                     -> zero beyond each sample's valid length (see below)
                     -> LongConv1d(40 -> 40, k=4000, same)                       (B, 40, steps*320)
                     -> max over groups of 10 channels                           (B, 4, steps*320)
                     -> per step: 320 positions x 4 groups = 1280 features       (B, steps, 1280)
  frames (B, steps, 3, 96, 96) uint8 -> float, ImageNet mean/std
                     -> ResNet-50 trunk (valid frames only) -> global avg pool   (B, steps, 2048)
  concat (B, steps, 3328) -> LSTM(256) x 2 (packed by length) -> state at the last valid step
                     -> dropout 0.5 -> Linear(256, 4) emotion, Linear(256, 2) gender

Faithful to the paper's code (MyungsuChae/IROS2018_ws, model.py), with these
documented choices:
- No nonlinearity and no dropout between the two audio convolutions: the paper's
  code has none (its max-pools are the nonlinearities). The Tzirakis et al. code it
  follows uses TF-slim's default ReLU after each conv and dropout on the input
  waveform; `audio_activation="relu"` gives the ReLU variant.
- Feature layout per step, exactly the paper's `permute(0, 2, 1)` + `MaxPool1d(10)` +
  `view(n, -1, 1280)`: feature index = 4 * t + g, with t in 0..319 the position inside
  the 40 ms step at 8 kHz and g in 0..3 the channel group (channels 10g .. 10g + 9).
- 'same' padding is PyTorch's (even k: 39 left / 40 right for k=80, 1999 / 2000 for
  k=4000); the paper's code padded (40, 39) and (2000, 1999), a one-sample shift.
- The waveform beyond each sample's valid steps, and the pooled first-conv output
  beyond them, are zeroed, so a sample's output does not depend on what it is
  batched with (without the second mask conv1's bias leaks into the padded tail
  and, through the 4,000-tap kernel, back into the last 250 ms). The paper trained
  with batch size 1, where this never arises.
- Frames are normalised with ImageNet mean/std (the paper fed raw 0..255 values to
  an ImageNet-trained ResNet); ResNet runs only on valid frames.
- LSTM weights Xavier-normal (as the paper's init_weights), biases PyTorch default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from shardformat import FRAME_SIZE, GENDERS, SAMPLES_PER_FRAME, SHARED_EMOTIONS
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emotrain.fftconv import CONV_MODES, LongConv1d

# One LSTM step per video frame: SAMPLES_PER_FRAME (640, 40 ms) audio samples per step.
POSITIONS_PER_STEP = SAMPLES_PER_FRAME // 2  # after the 2x max-pool (8 kHz)

MODEL_NAMES = ("paper", "small", "speech")
MODALITIES = ("av", "a", "v")
AUDIO_ACTIVATIONS = ("none", "relu")
AUDIO_STEP_POOLS = ("flatten", "max")
AUDIO_COMPRESSIONS = ("none", "log", "log-cmvn")
TEMPORAL_POOLS = ("last", "mean")
HEAD_NORMS = ("none", "batch", "batch-emotion")
# Floor of the log envelope: per-utterance unit-variance speech has peaks ~0.1-3 per 40 ms after the
# convs; 1e-3 sits below RAVDESS's normalised noise floor, so silence is one flat low value.
LOG_FLOOR = 1e-3
VISUAL_BACKBONES = ("resnet50", "small_cnn")
RESNET50_FEATURES = 2048
SMALL_CNN_WIDTHS = (16, 32, 64)

# The paper's ResNet-50 was torchvision's `pretrained=True`, i.e. IMAGENET1K_V1.
IMAGENET_WEIGHTS = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Sizes of each named network; a ModelConfig field left at None takes its preset's value.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "audio_channels": 40,
        "audio_kernel": 80,
        "audio_long_kernel": 4000,
        "audio_channel_pool": 10,
        "audio_activation": "none",
        "audio_step_pool": "flatten",
        "audio_compress": "none",
        "temporal_pool": "last",
        "head_norm": "none",
        "visual_backbone": "resnet50",
        "lstm_hidden": 256,
        "lstm_layers": 2,
    },
    # Same structure, sized to train on 2 CPU cores (README, "The model"),
    # except that each step's audio is summarised as one peak per filter ("max"): with the paper's
    # 320-positions layout a small LSTM sees raw filtered waveform, whose values swing with phase,
    # and on ~100 utterances it learnt nothing from it, while the audio drowned the 64 visual
    # features (val emotion UA and gender stuck at chance, 8 epochs on the synthetic shards).
    "small": {
        "audio_channels": 16,
        "audio_kernel": 40,
        "audio_long_kernel": 400,
        "audio_channel_pool": 1,
        "audio_activation": "none",
        "audio_step_pool": "max",
        "audio_compress": "none",
        "temporal_pool": "last",
        "head_norm": "none",
        "visual_backbone": "small_cnn",
        "lstm_hidden": 64,
        "lstm_layers": 2,
    },
    # small's sizes with what helped on ~1,000 real clips (RAVDESS; docs/real-speech.md, measured on
    # validation actors): each step is the log of each filter's peak magnitude, standardised per
    # utterance (an input on the LSTM's scale, like log filterbank energies with CMVN); the heads read
    # the mean LSTM output over valid steps (the last state after RAVDESS's trailing silence kept 19.5 %
    # UA for a linear probe where the mean kept 34.8 %). Gender learns (95 % on validation actors);
    # emotion only to ~20 % UA: batch-normalising the heads' input fitted the training actors but
    # broke evaluation, so head_norm stays "none".
    "speech": {
        "audio_channels": 16,
        "audio_kernel": 40,
        "audio_long_kernel": 400,
        "audio_channel_pool": 1,
        "audio_activation": "none",
        "audio_step_pool": "max",
        "audio_compress": "log-cmvn",
        "temporal_pool": "mean",
        "head_norm": "none",
        "visual_backbone": "small_cnn",
        "lstm_hidden": 64,
        "lstm_layers": 2,
    },
}
_INT_FIELDS = ("audio_channels", "audio_kernel", "audio_long_kernel", "audio_channel_pool", "lstm_hidden", "lstm_layers")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; saved with every run and checkpoint.

    `name` picks a preset ("paper" or "small"); any size field given explicitly
    overrides the preset, fields left at None are filled from it, so after
    construction every field is concrete.
    """

    name: str = "paper"
    modality: str = "av"  # "av" | "a" | "v"
    audio_conv: str = "auto"  # long convolution: "direct" | "fft" | "auto" (fftconv.choose_conv_mode)
    visual_weights: str | None = None  # None (random) | "imagenet" (local torch hub cache only) | path to a resnet50 state_dict
    dropout: float = 0.5
    audio_channels: int | None = None  # both audio convs' output channels (paper 40)
    audio_kernel: int | None = None  # first conv, at 16 kHz (paper 80 = 5 ms)
    audio_long_kernel: int | None = None  # second conv, at 8 kHz (paper 4000 = 500 ms)
    audio_channel_pool: int | None = None  # max-pool across channels (paper 10: 40 -> 4)
    audio_activation: str | None = None  # between and after the convs: "none" (paper code) | "relu" (Tzirakis code)
    audio_step_pool: str | None = None  # per 40 ms step: "flatten" (paper: 320 positions x groups) | "max" (peak per group)
    # "log": log of each step's peak |response| (a learnt log filterbank envelope); "log-cmvn": that, minus its
    # per-utterance mean and over its std (valid steps); "none": the raw responses (paper). "max" step pool only.
    audio_compress: str | None = None
    temporal_pool: str | None = None  # what the heads see: "last" LSTM state at the last valid step (paper) | "mean" over valid steps
    # "batch": BatchNorm1d on that summary before dropout and heads; "batch-emotion": on the emotion head's input
    # only. Measured on real speech (docs/real-speech.md): the emotion loss falls at once, but evaluation on running
    # statistics broke (gender one class), so every preset has "none".
    head_norm: str | None = None
    visual_backbone: str | None = None  # "resnet50" | "small_cnn"
    lstm_hidden: int | None = None
    lstm_layers: int | None = None
    emotions: tuple[str, ...] = SHARED_EMOTIONS  # the emotion head's classes, in label order (from the shards)

    def __post_init__(self) -> None:
        object.__setattr__(self, "emotions", tuple(self.emotions))  # JSON gives a list
        if self.name not in PRESETS:
            raise ValueError(f"model name must be one of {MODEL_NAMES}, got {self.name!r}")
        for key, value in PRESETS[self.name].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        self._validate()

    def _validate(self) -> None:
        choices = {
            "modality": MODALITIES,
            "audio_conv": CONV_MODES,
            "audio_activation": AUDIO_ACTIVATIONS,
            "audio_step_pool": AUDIO_STEP_POOLS,
            "audio_compress": AUDIO_COMPRESSIONS,
            "temporal_pool": TEMPORAL_POOLS,
            "head_norm": HEAD_NORMS,
            "visual_backbone": VISUAL_BACKBONES,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"model config: {key} must be one of {allowed}, got {getattr(self, key)!r}")
        for key in _INT_FIELDS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model config: {key} must be a positive integer, got {value!r}")
        if len(self.emotions) < 2 or not all(isinstance(e, str) and e for e in self.emotions):
            raise ValueError(f"model config: emotions must be two or more class names, got {self.emotions!r}")
        if self.audio_channels % self.audio_channel_pool:
            raise ValueError(
                f"model config: audio_channel_pool ({self.audio_channel_pool}) must divide audio_channels ({self.audio_channels})"
            )
        if self.audio_compress != "none" and self.audio_step_pool != "max":
            raise ValueError(f"model config: audio_compress {self.audio_compress!r} needs audio_step_pool 'max' (an envelope per step)")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"model config: dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.visual_weights is not None:
            if not isinstance(self.visual_weights, str) or not self.visual_weights:
                raise ValueError(f"model config: visual_weights must be None, 'imagenet' or a file path, got {self.visual_weights!r}")
            if self.visual_backbone != "resnet50":
                raise ValueError(
                    f"model config: visual_weights={self.visual_weights!r} needs visual_backbone 'resnet50', "
                    f"not {self.visual_backbone!r}; leave visual_weights unset for the small network"
                )

    @property
    def audio_features(self) -> int:
        """Audio features per 40 ms step: (320 positions unless pooled) x (channels / channel pool)."""
        positions = POSITIONS_PER_STEP if self.audio_step_pool == "flatten" else 1
        return positions * (self.audio_channels // self.audio_channel_pool)

    @property
    def visual_features(self) -> int:
        return RESNET50_FEATURES if self.visual_backbone == "resnet50" else SMALL_CNN_WIDTHS[-1]

    @property
    def lstm_input(self) -> int:
        return (self.audio_features if "a" in self.modality else 0) + (self.visual_features if "v" in self.modality else 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON's view: lists, not tuples, so a saved config compares equal to a fresh one."""
        return {**dataclasses.asdict(self), "emotions": list(self.emotions)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**known_fields(cls, d, "model config"))


def known_fields(cls: type, d: Any, what: str) -> dict[str, Any]:
    """`d` when it is a JSON object whose keys are all fields of the dataclass `cls`; ValueError naming `what`
    and the unknown keys otherwise (a file written by a newer emotrain, or by someone else)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; known keys are {sorted(known)}")
    return d


def _valid_mask(size: int, valid: Tensor) -> Tensor:
    """(B, size) bool, True at positions below each sample's valid count."""
    return torch.arange(size, device=valid.device) < valid[:, None]


def _masked_standardise(x: Tensor, lengths: Tensor) -> Tensor:
    """(B, steps, F) minus each utterance's per-feature mean over its valid steps, over that std."""
    mask = _valid_mask(x.shape[1], lengths)[:, :, None].to(x.dtype)
    count = mask.sum(dim=1, keepdim=True)
    mean = (x * mask).sum(dim=1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + 1e-5)


class SummaryBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that normalises a one-sample training batch (an epoch's last, partial one) by its running statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class AudioBranch(nn.Module):
    """Raw waveform -> (B, steps, audio_features); the paper's two-conv front end."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.pool = config.audio_channel_pool
        self.relu = config.audio_activation == "relu"
        self.step_pool = config.audio_step_pool
        self.compress = config.audio_compress
        # The 80-tap conv has one input channel: oneDNN/cuDNN direct beats the FFT there
        # (measured 1.0 s vs 2.3 s forward+backward on a batch of 4 x 6 s on 2 cores).
        self.conv1 = nn.Conv1d(1, config.audio_channels, config.audio_kernel, padding="same")
        self.conv2 = LongConv1d(config.audio_channels, config.audio_channels, config.audio_long_kernel, mode=config.audio_conv)

    def forward(self, audio: Tensor, lengths: Tensor) -> Tensor:
        batch, samples = audio.shape
        steps = samples // SAMPLES_PER_FRAME
        lengths = lengths.to(audio.device)
        x = audio * _valid_mask(samples, lengths * SAMPLES_PER_FRAME).to(audio.dtype)
        x = self.conv1(x[:, None, :])
        if self.relu:
            x = F.relu(x)
        x = F.max_pool1d(x, 2)
        x = x * _valid_mask(x.shape[-1], lengths * POSITIONS_PER_STEP)[:, None, :].to(x.dtype)
        x = self.conv2(x)
        if self.relu:
            x = F.relu(x)
        if self.compress != "none":
            x = x.abs()  # the envelope: a filter's peak magnitude, whatever its phase
        channels = x.shape[1]
        x = x.reshape(batch, channels // self.pool, self.pool, -1).amax(dim=2)  # (B, groups, positions)
        if self.step_pool == "flatten":
            return x.transpose(1, 2).reshape(batch, steps, -1)  # feature = groups * t + g
        x = x.reshape(batch, x.shape[1], steps, POSITIONS_PER_STEP).amax(dim=3).transpose(1, 2)  # (B, steps, groups)
        if self.compress == "none":
            return x
        x = torch.log(x + LOG_FLOOR)
        if self.compress == "log-cmvn":
            x = _masked_standardise(x, lengths)
        return x * _valid_mask(steps, lengths)[:, :, None].to(x.dtype)


def resnet50_trunk() -> nn.Module:
    """torchvision's ResNet-50 with its classifier removed: (N, 3, H, W) -> (N, 2048), global-average-pooled.

    Parameter names stay torchvision's, so its state dicts load directly (minus fc.*).
    """
    trunk = torchvision.models.resnet50(weights=None)
    trunk.fc = nn.Identity()
    return trunk


def small_cnn() -> nn.Module:
    """A frame CNN for CPU runs: 8x8 patches (stride 8) and two stride-2 convs, 96x96 -> 64 features.

    About 1.5 MFLOP a frame; patchifying first keeps the activations small, which is
    what costs on CPU (a stride-2 5x5 stem with the same FLOPs was 4x slower).
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for index, width in enumerate(SMALL_CNN_WIDTHS):
        kernel, stride, padding = (8, 8, 0) if index == 0 else (3, 2, 1)
        layers += [
            nn.Conv2d(in_channels, width, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        in_channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class VisualBranch(nn.Module):
    """uint8 face crops (B, steps, 3, 96, 96) -> (B, steps, features); the CNN sees valid frames only."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.features = config.visual_features
        self.trunk = resnet50_trunk() if config.visual_backbone == "resnet50" else small_cnn()
        # Not persistent: constants, not learned state.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, frames: Tensor, lengths: Tensor) -> Tensor:
        batch, steps = frames.shape[:2]
        valid = _valid_mask(steps, lengths.to(frames.device))  # (B, steps)
        x = frames[valid].float()  # (N valid, 3, 96, 96)
        x = x.sub_(self.mean).div_(self.std)
        if x.is_cuda:
            # Tensor cores want NHWC; convolutions follow the input's memory format.
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.trunk(x)
        out = features.new_zeros(batch, steps, features.shape[-1])
        out[valid] = features
        return out


class EmotionGenderNet(nn.Module):
    """The paper's network; `forward` returns (emotion logits (B, 4), gender logits (B, 2))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.audio = AudioBranch(config) if "a" in config.modality else None
        self.visual = VisualBranch(config) if "v" in config.modality else None
        self.lstm = nn.LSTM(config.lstm_input, config.lstm_hidden, config.lstm_layers, batch_first=True)
        self.temporal_pool = config.temporal_pool
        self.head_norm = SummaryBatchNorm(config.lstm_hidden) if config.head_norm != "none" else nn.Identity()
        # "batch-emotion": the gender head reads the summary un-normalised, through a dropout of its own;
        # otherwise both heads read one dropped-out summary, as the paper's code does (one dropout draw).
        self.gender_apart = config.head_norm == "batch-emotion"
        self.dropout = nn.Dropout(config.dropout)
        self.emotion_head = nn.Linear(config.lstm_hidden, len(config.emotions))
        self.gender_head = nn.Linear(config.lstm_hidden, len(GENDERS))
        for name, parameter in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_normal_(parameter)
        # What stands in for a branch a sample has no input for: (branch name, lengths) -> (B, steps, features).
        # None (training): such a batch is an error. emotrain.predict.Predictor sets it to the branch means.
        self.branch_fill: Callable[[str, Tensor], Tensor] | None = None

    def features(self, audio: Tensor | None, frames: Tensor | None, lengths: Tensor,
                 has_audio: Tensor | None = None, has_video: Tensor | None = None) -> Tensor:
        """Per-step features (B, steps, lstm_input): the two branches, concatenated audio first.

        has_audio / has_video ((B,) bool, None: every row has it) mark the rows that have each
        input; a branch's features for the others come from `branch_fill`.
        """
        parts = []
        for branch, inputs, present, name in ((self.audio, audio, has_audio, "audio"),
                                              (self.visual, frames, has_video, "video")):
            if branch is not None:
                parts.append(self._branch_features(branch, inputs, lengths, present, name))
        if len(parts) == 1:
            return parts[0]
        # Under autocast the branches may come back in different dtypes (FFT path is float32).
        return torch.cat([p.to(parts[-1].dtype) for p in parts], dim=-1)

    def _branch_features(self, branch: nn.Module, inputs: Tensor | None, lengths: Tensor, present: Tensor | None,
                         name: str) -> Tensor:
        if present is None or bool(present.all()):
            return branch(inputs, lengths)
        if self.branch_fill is None:
            raise ValueError(f"{int((~present).sum())} sample(s) of the batch have no {name}, and nothing stands in "
                             "for a missing branch (EmotionGenderNet.branch_fill is None)")
        out = self.branch_fill(name, lengths).clone()
        if bool(present.any()):
            rows = present.nonzero().squeeze(1)
            # Only as many steps as the longest present sample: the branch sees a batch of its own.
            longest = int(lengths[rows].max())
            sliced = inputs[rows][:, : longest * SAMPLES_PER_FRAME] if name == "audio" else inputs[rows][:, :longest]
            out[rows, :longest] = branch(sliced, lengths[rows]).to(out.dtype)
        return out

    def heads(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """LSTM over the valid steps, its top layer's state at the last valid step (or mean over them), dropout, two heads."""
        summary = self.summarise(features, lengths)  # (B, hidden), in batch order
        normalised = self.dropout(self.head_norm(summary))
        return self.emotion_head(normalised), self.gender_head(self.dropout(summary) if self.gender_apart else normalised)

    def summarise(self, features: Tensor, lengths: Tensor) -> Tensor:
        """(B, hidden): what the heads read, before dropout (`temporal_pool`)."""
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, (hidden, _) = self.lstm(packed)
        if self.temporal_pool == "last":
            return hidden[-1]
        padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=features.shape[1])  # zeros past each length
        return padded.sum(dim=1) / lengths.to(padded.device, padded.dtype)[:, None]

    def forward(self, audio: Tensor | None, frames: Tensor | None, lengths: Tensor,
                has_audio: Tensor | None = None, has_video: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check_inputs(audio, frames, lengths, has_audio, has_video)
        return self.heads(self.features(audio, frames, lengths, has_audio, has_video), lengths)

    def _check_inputs(self, audio: Tensor | None, frames: Tensor | None, lengths: Tensor,
                      has_audio: Tensor | None, has_video: Tensor | None) -> None:
        modality = self.config.modality
        if lengths.dim() != 1 or lengths.dtype != torch.int64:
            raise ValueError(f"lengths must be a (B,) int64 tensor of valid steps, got shape {tuple(lengths.shape)} {lengths.dtype}")
        batch = lengths.shape[0]
        steps = None
        # A branch no row has input for takes no tensor (its features all come from branch_fill).
        if audio is None and has_audio is not None and not bool(has_audio.any()):
            modality = modality.replace("a", "")
        if frames is None and has_video is not None and not bool(has_video.any()):
            modality = modality.replace("v", "")
        if "a" in modality:
            if audio is None:
                raise ValueError(f"modality {modality!r} needs audio (B, steps*{SAMPLES_PER_FRAME}), got None")
            if audio.dim() != 2 or audio.shape[0] != batch or audio.shape[1] % SAMPLES_PER_FRAME or not audio.is_floating_point():
                raise ValueError(
                    f"audio must be float (B={batch}, S) with S a multiple of {SAMPLES_PER_FRAME}, got {tuple(audio.shape)} {audio.dtype}"
                )
            steps = audio.shape[1] // SAMPLES_PER_FRAME
        if "v" in modality:
            if frames is None:
                raise ValueError(f"modality {modality!r} needs frames (B, steps, 3, {FRAME_SIZE}, {FRAME_SIZE}) uint8, got None")
            expected = (batch, frames.shape[1], 3, FRAME_SIZE, FRAME_SIZE)
            if tuple(frames.shape) != expected or frames.dtype != torch.uint8:
                raise ValueError(f"frames must be uint8 {expected}, got {tuple(frames.shape)} {frames.dtype}")
            if steps is not None and frames.shape[1] != steps:
                raise ValueError(f"audio has {steps} steps of {SAMPLES_PER_FRAME} samples but frames has {frames.shape[1]} steps")
            steps = frames.shape[1]
        lengths_cpu = lengths.cpu()
        steps = int(lengths_cpu.max(initial=0)) if steps is None else steps
        if batch == 0 or int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > steps:
            raise ValueError(f"lengths must lie in 1..{steps} (the padded steps) for a non-empty batch, got {lengths_cpu.tolist()}")


def imagenet_cache_path() -> Path:
    """Where torchvision keeps the ResNet-50 ImageNet file: <torch hub dir>/checkpoints/resnet50-0676ba61.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(IMAGENET_WEIGHTS.url)


def load_visual_weights(trunk: nn.Module, spec: str) -> None:
    """Load a torchvision ResNet-50 state dict into `trunk`: "imagenet" from the local cache, or a file path. Never downloads."""
    if spec == "imagenet":
        path = imagenet_cache_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"ResNet-50 ImageNet weights not found at {path} (emotrain never downloads). "
                f"On a machine with internet run: python -c \"import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V1')\" "
                f"and copy the file it writes ({path.name}, from {IMAGENET_WEIGHTS.url}) to {path} "
                f"(the folder follows $TORCH_HOME), or pass the file's path as the visual weights instead of 'imagenet'."
            )
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"visual weights file {path} does not exist; give a torchvision resnet50 state_dict file or 'imagenet'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad or unsafe file
        raise ValueError(f"cannot read visual weights {path} as a weights-only state dict: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"visual weights {path} hold a {type(state).__name__}, not a state dict")
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = trunk.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or misshapen:
        raise ValueError(
            f"visual weights {path} do not fit torchvision's resnet50: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(misshapen)} of the wrong shape (e.g. {misshapen[:3]})"
        )
    trunk.load_state_dict(state)


def build_model(config: ModelConfig, *, load_weights: bool = True) -> EmotionGenderNet:
    """The network for `config`; loads config.visual_weights unless load_weights is False.

    Pass load_weights=False when a checkpoint's state dict is loaded right after:
    evaluation then needs no ImageNet file.
    """
    model = EmotionGenderNet(config)
    if load_weights and config.visual_weights is not None and model.visual is not None:
        load_visual_weights(model.visual.trunk, config.visual_weights)
    return model

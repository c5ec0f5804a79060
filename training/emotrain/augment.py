"""Waveform augmentation for training batches (never in evaluation): speed, gain, noise, time shift.

Applied in the training loop to a batch's normalised audio (B, S) and its valid step counts,
on the CPU before the batch moves to its device, each sample drawn from a seeded torch.Generator:

  speed  resample by a factor in [1 - speed, 1 + speed] (linear interpolation: tempo and pitch
         move together, as in Kaldi's 0.9/1.0/1.1 speed perturbation); the valid length changes
         with it, cut to the batch's padded length.
  gain   multiply by a gain in +-gain dB. The model sees per-utterance unit-variance audio
         (emotrain.data.normalise_audio), so this perturbs the scale the network was fitted at.
  noise  add white noise at an SNR in [noise_snr, noise_snr + 20] dB of the (unit-variance) speech.
  shift  rotate each valid waveform by up to `shift` seconds (the clip's start moves, its content stays).

An Augment with every amount 0 returns the batch unchanged; `parse_augment` reads the CLI's
"speed=0.1,gain=6,noise=10,shift=0.5" form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from shardformat import SAMPLE_RATE, SAMPLES_PER_FRAME


@dataclass(frozen=True)
class Augment:
    speed: float = 0.0  # relative: 0.1 draws factors in [0.9, 1.1]
    gain: float = 0.0  # dB, both ways
    noise_snr: float = 0.0  # lowest SNR in dB; 0 means no noise
    shift: float = 0.0  # seconds

    def __post_init__(self) -> None:
        if not 0 <= self.speed < 0.5 or self.gain < 0 or self.noise_snr < 0 or self.shift < 0:
            raise ValueError(f"augment amounts must be non-negative (speed below 0.5), got {self}")

    @property
    def active(self) -> bool:
        return any(dataclasses.astuple(self))

    def to_text(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in dataclasses.asdict(self).items() if v) or "none"


def parse_augment(text: str) -> Augment:
    """"speed=0.1,gain=6,noise_snr=10,shift=0.5" (any subset) or "none" -> Augment."""
    if text.strip() in ("", "none"):
        return Augment()
    fields = {f.name for f in dataclasses.fields(Augment)}
    values: dict[str, float] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in fields:
            raise ValueError(f"augment {item!r}: the keys are {', '.join(sorted(fields))}")
        values[key] = float(value)
    return Augment(**values)


def augment_audio(audio: Tensor, lengths: Tensor, spec: Augment, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(audio, lengths) with `spec` applied per sample; padding stays zero, lengths stay in 1..steps."""
    if not spec.active:
        return audio, lengths
    batch, samples = audio.shape
    out = torch.zeros_like(audio)
    new_lengths = lengths.clone()
    draw = lambda: float(torch.rand((), generator=generator))  # noqa: E731
    for row in range(batch):
        x = audio[row, : int(lengths[row]) * SAMPLES_PER_FRAME]
        if spec.speed:
            factor = 1 + spec.speed * (2 * draw() - 1)
            size = min(samples, max(SAMPLES_PER_FRAME, int(len(x) / factor) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME))
            x = F.interpolate(x[None, None], size=size, mode="linear", align_corners=False)[0, 0]
        if spec.shift:
            x = torch.roll(x, int((2 * draw() - 1) * spec.shift * SAMPLE_RATE))
        if spec.gain:
            x = x * 10 ** (spec.gain * (2 * draw() - 1) / 20)
        if spec.noise_snr:
            snr_db = spec.noise_snr + 20 * draw()
            noise = torch.randn(len(x), generator=generator, device=x.device, dtype=x.dtype)
            x = x + noise * x.std() * 10 ** (-snr_db / 20)
        out[row, : len(x)] = x
        new_lengths[row] = len(x) // SAMPLES_PER_FRAME
    return out, new_lengths

"""The learnable signal: how an utterance's emotion and its speaker's gender show in voice and face.

Synthetic on purpose, and documented as such (README, "synthetic corpus"): a
model that learns these cues says nothing about real IEMOCAP accuracy. Every
cue is drawn per utterance from a range, and noise is added on top, so no
single feature value gives the answer away.

Voice: a harmonic tone (pitch by gender, shifted and bent by emotion) under a
syllable-like amplitude envelope whose loudness and rate follow the emotion.
Face: the emotion tints the face and sets how the head moves; gender sets the
face's brightness and whether a dark cap covers the hair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoiceStyle:
    """Per-emotion ranges (low, high) from which each utterance's voice is drawn."""

    pitch_factor: float  # times the speaker's base pitch
    pitch_slope: tuple[float, float]  # relative pitch change from start to end (+ rising, - falling)
    syllable_rate: tuple[float, float]  # syllables per second
    level: tuple[float, float]  # peak amplitude, fraction of full scale
    tilt: tuple[float, float]  # harmonic k has amplitude k**-tilt: lower is brighter


VOICE_STYLES = {
    "ang": VoiceStyle(1.20, (-0.05, 0.05), (6.0, 7.5), (0.50, 0.70), (0.9, 1.2)),
    "hap": VoiceStyle(1.10, (0.15, 0.30), (4.5, 5.5), (0.32, 0.45), (1.2, 1.5)),
    "neu": VoiceStyle(1.00, (-0.03, 0.03), (3.6, 4.4), (0.18, 0.28), (1.5, 1.8)),
    "sad": VoiceStyle(0.92, (-0.25, -0.12), (1.8, 2.6), (0.07, 0.12), (1.9, 2.3)),
    "exc": VoiceStyle(1.20, (0.25, 0.40), (5.5, 6.5), (0.45, 0.60), (1.1, 1.3)),
    "fru": VoiceStyle(1.05, (-0.10, 0.00), (5.0, 6.0), (0.38, 0.52), (1.0, 1.3)),
    "sur": VoiceStyle(1.25, (0.40, 0.60), (3.0, 4.0), (0.30, 0.45), (1.3, 1.6)),
    # CREMA-D's and RAVDESS's other classes.
    "dis": VoiceStyle(0.95, (-0.15, -0.06), (2.8, 3.4), (0.26, 0.36), (1.3, 1.6)),
    "fea": VoiceStyle(1.32, (0.04, 0.14), (5.6, 6.6), (0.14, 0.22), (1.6, 1.9)),
    "cal": VoiceStyle(0.96, (-0.06, 0.00), (2.9, 3.3), (0.12, 0.18), (1.8, 2.1)),
    # EmoDB's boredom (audio only: no face style): low, flat, slow and dark, between calm and sad.
    "bor": VoiceStyle(0.86, (-0.10, -0.04), (3.4, 3.9), (0.09, 0.14), (2.3, 2.6)),
}


@dataclass(frozen=True)
class FaceStyle:
    """Per-emotion tint and head motion."""

    tint: tuple[int, int, int]  # RGB the face is blended toward
    axis: str  # "x" shake or "y" nod
    amplitude: tuple[float, float]  # pixels
    frequency: tuple[float, float]  # Hz
    droop: tuple[int, int]  # extra pixels down (+) or up (-) while speaking


FACE_STYLES = {
    "ang": FaceStyle((255, 40, 40), "x", (5, 8), (2.5, 3.5), (0, 0)),
    "hap": FaceStyle((255, 220, 40), "y", (6, 10), (1.2, 1.8), (-4, 0)),
    "neu": FaceStyle((60, 200, 90), "x", (1, 3), (0.2, 0.5), (0, 0)),
    "sad": FaceStyle((50, 90, 255), "y", (2, 4), (0.3, 0.5), (12, 20)),
    "exc": FaceStyle((255, 150, 30), "y", (8, 12), (2.0, 2.6), (-6, 0)),
    "fru": FaceStyle((170, 60, 200), "x", (3, 5), (1.3, 1.7), (0, 6)),
    "sur": FaceStyle((40, 210, 220), "y", (2, 4), (0.8, 1.2), (-12, -6)),
    "dis": FaceStyle((140, 110, 20), "x", (2, 4), (0.6, 0.9), (4, 8)),
    "fea": FaceStyle((255, 60, 190), "x", (3, 5), (4.0, 5.0), (-8, -2)),
    "cal": FaceStyle((150, 230, 210), "y", (1, 2), (0.15, 0.3), (2, 6)),
}

# Gender: brightness gain of the face (F brighter), and a dark cap over the hair for M.
BRIGHTNESS = {"F": (1.03, 1.13), "M": (0.68, 0.78)}
TINT_STRENGTH = (0.28, 0.48)
# How far each utterance's face may sit from the actor's resting place, pixels (kept even for 4:2:0 chroma).
POSITION_JITTER = 14


@dataclass(frozen=True)
class VoiceParams:
    pitch: float  # Hz at the utterance start
    pitch_slope: float
    syllable_rate: float
    level: float
    tilt: float
    jitter: float  # relative depth of slow random pitch wobble
    snr_db: float  # voice peak to added white noise
    onset: float  # seconds of silence inside the span before the voice starts
    seed: int  # for the syllable timing, pitch wobble and noise drawn while rendering


@dataclass(frozen=True)
class FaceParams:
    tint: tuple[int, int, int]
    tint_strength: float
    brightness: float
    cap: bool
    dx: int  # offset from the resting place, even pixels
    dy: int
    axis: str
    amplitude: float
    frequency: float
    phase: float
    droop: int


def _between(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def draw_voice(rng: np.random.Generator, emotion: str, base_pitch: float) -> VoiceParams:
    """One utterance's voice: the speaker's own pitch (gender lives there), moved by emotion, jittered."""
    style = VOICE_STYLES[emotion]
    return VoiceParams(
        pitch=base_pitch * style.pitch_factor * float(rng.uniform(0.96, 1.04)),
        pitch_slope=_between(rng, style.pitch_slope),
        syllable_rate=_between(rng, style.syllable_rate),
        level=_between(rng, style.level),
        tilt=_between(rng, style.tilt),
        jitter=float(rng.uniform(0.01, 0.03)),
        snr_db=float(rng.uniform(18, 30)),
        onset=float(rng.uniform(0.02, 0.08)),
        seed=int(rng.integers(2**62)),
    )


def draw_face(rng: np.random.Generator, emotion: str, gender: str) -> FaceParams:
    style = FACE_STYLES[emotion]
    return FaceParams(
        tint=style.tint,
        tint_strength=_between(rng, TINT_STRENGTH),
        brightness=_between(rng, BRIGHTNESS[gender]),
        cap=gender == "M",
        dx=2 * int(rng.integers(-POSITION_JITTER // 2, POSITION_JITTER // 2 + 1)),
        dy=2 * int(rng.integers(-POSITION_JITTER // 2, POSITION_JITTER // 2 + 1)),
        axis=style.axis,
        amplitude=_between(rng, style.amplitude),
        frequency=_between(rng, style.frequency),
        phase=float(rng.uniform(0, 2 * np.pi)),
        droop=int(rng.integers(style.droop[0], style.droop[1] + 1)),
    )


def face_offset(face: FaceParams, seconds: float) -> tuple[int, int]:
    """The face's displacement (even pixels) from its resting place, `seconds` into the utterance."""
    swing = face.amplitude * np.sin(2 * np.pi * face.frequency * seconds + face.phase)
    dx = face.dx + (swing if face.axis == "x" else 0.0)
    dy = face.dy + face.droop + (swing if face.axis == "y" else 0.0)
    return 2 * int(round(dx / 2)), 2 * int(round(dy / 2))

"""One acted clip: a single speaker filling the whole frame, and its voice. No file I/O.

CREMA-D and RAVDESS film one actor, frontal and centred, on a plain
background: the face sprite (emoprep.synth.face) is scaled to the frame so the
head is about 58 % of the frame height, as in a medium close-up, and carries
the clip's emotion (tint, motion) for the whole clip. The voice
(emoprep.synth.voice.render_voice) sits between a lead-in and a tail of
microphone hiss, as the corpora's clips start and end with silence.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from emoprep.synth.face import FRAME_RATE, Planes, Sprite, face_rgb, head_mask
from emoprep.synth.plan import SAMPLE_RATE
from emoprep.synth.signal import FaceParams, VoiceParams, face_offset
from emoprep.synth.voice import NOISE_FLOOR, render_voice

HEAD_SHARE = 0.58  # the head sprite's height over the frame's


@dataclass(frozen=True)
class Framing:
    """A corpus's picture: frame size, backdrop colour (RGB)."""

    width: int
    height: int
    background: tuple[int, int, int]

    @property
    def scale(self) -> float:
        """Sprite pixels per photo pixel: the head fills HEAD_SHARE of the frame height."""
        return self.height * HEAD_SHARE / head_mask().shape[0]


@dataclass(frozen=True)
class ActedClip:
    """What one clip shows and says: its timing on the 16 kHz grid, voice and face."""

    gender: str  # "F" / "M"
    lead_samples: int  # silence before the voice
    voice_samples: int
    tail_samples: int  # silence after it
    voice: VoiceParams
    face: FaceParams | None  # None: a corpus without video (EmoDB), whose clips are never framed
    noise_seed: int

    @property
    def n_samples(self) -> int:
        return self.lead_samples + self.voice_samples + self.tail_samples


def clip_audio(clip: ActedClip) -> np.ndarray:
    """The clip's mono 16 kHz audio as int16: hiss throughout, the voice after the lead-in."""
    audio = np.random.default_rng(clip.noise_seed).normal(0.0, NOISE_FLOOR, clip.n_samples)
    audio[clip.lead_samples:clip.lead_samples + clip.voice_samples] += render_voice(clip.voice, clip.voice_samples)
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


@functools.cache
def _scaled_mask(scale: float) -> np.ndarray:
    mask = head_mask()
    size = (2 * round(mask.shape[1] * scale / 2), 2 * round(mask.shape[0] * scale / 2))  # even: 4:2:0 chroma
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


def _sprite(framing: Framing, clip: ActedClip) -> Sprite:
    mask = _scaled_mask(framing.scale)
    rgb = cv2.resize(face_rgb(clip.face, clip.gender), mask.shape[::-1], interpolation=cv2.INTER_AREA)
    return Sprite(rgb, mask)


def clip_frames(framing: Framing, clip: ActedClip, frame_rate: Fraction = FRAME_RATE) -> Iterator[memoryview]:
    """Every frame of the clip (covering its audio), as I420 bytes (a reused buffer: consume before the next)."""
    sprite = _sprite(framing, clip)
    height, width = _scaled_mask(framing.scale).shape
    backdrop = np.empty((framing.height, framing.width, 3), np.uint8)
    backdrop[:] = framing.background
    empty, canvas = Planes(backdrop), Planes(backdrop)
    rest_x, rest_y = (framing.width - width) // 2 & ~1, (framing.height - height) // 3 & ~1
    per_frame = Fraction(SAMPLE_RATE) / frame_rate
    for index in range(-(-clip.n_samples // per_frame)):
        seconds = float(index / frame_rate)
        dx, dy = face_offset(clip.face, seconds)
        x = int(np.clip(rest_x + 2 * round(dx * framing.scale / 2), 0, framing.width - width))
        y = int(np.clip(rest_y + 2 * round(dy * framing.scale / 2), 0, framing.height - height))
        np.copyto(canvas.buffer, empty.buffer)
        sprite.paste(canvas, x & ~1, y & ~1)
        yield memoryview(canvas.buffer)

"""Video of a synthetic dialog as raw I420 frames: two actors side by side. No file I/O.

Each half has its own flat background colour (LEFT_BACKGROUND, RIGHT_BACKGROUND)
so a face crop tells which half it came from. Both actors' faces are the
astronaut photograph that scikit-image ships (the male actor's mirrored and
wearing a cap). The listener rests, untinted and still; the speaker's face
carries the utterance's tint and motion (emoprep.synth.signal).

Frames are built directly in 4:2:0 YUV, the encoder's own format: half the
bytes of RGB through the pipe and no colour conversion in ffmpeg, which was
the largest cost of encoding. Sprites sit at even offsets so chroma lines up.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from emoprep.corpus.iemocap import speaker_side
from emoprep.synth.plan import SAMPLE_RATE, SynthDialog, SynthUtterance
from emoprep.synth.signal import BRIGHTNESS, FaceParams, face_offset

WIDTH, HEIGHT = 720, 480
HALF_WIDTH = WIDTH // 2
FRAME_RATE = Fraction(30000, 1001)
LEFT_BACKGROUND = (200, 210, 225)  # pale blue-grey
RIGHT_BACKGROUND = (60, 50, 45)  # dark brown
BACKGROUNDS = {"left": LEFT_BACKGROUND, "right": RIGHT_BACKGROUND}
# The astronaut's head and shoulders (rows, cols of the 512x512 photo): hair to collar, 208x180.
HEAD_ROWS, HEAD_COLS = slice(8, 216), slice(136, 316)
REST = (90, 136)  # the sprite's top-left corner (x, y) within its half when the head is at rest
CAP_ROWS = 40  # the cap covers the hair only: the Haar detector needs the brows and eyes
CAP_COLOUR = (30, 30, 30)


def frame_count(n_samples: int) -> int:
    """Frames covering `n_samples` of 16 kHz audio at 29.97 fps (the last one partly)."""
    per_frame = Fraction(SAMPLE_RATE) / FRAME_RATE
    return -(-n_samples // per_frame)  # ceil, exact in fractions


def head_mask() -> np.ndarray:
    """Where the face sprite is opaque: the ellipse around the head, shape of face_rgb's output."""
    return _photo()[1]


@functools.cache
def _photo() -> tuple[np.ndarray, np.ndarray]:
    """The head crop as float RGB and its elliptical mask (the face without the photo's backdrop)."""
    from skimage import data

    head = data.astronaut()[HEAD_ROWS, HEAD_COLS].astype(np.float32)
    height, width = head.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    mask = ((yy - height * 0.48) / (height * 0.5)) ** 2 + ((xx - width / 2) / (width * 0.47)) ** 2 <= 1.0
    return head, mask


def face_rgb(face: FaceParams | None, gender: str) -> np.ndarray:
    """The face sprite in RGB uint8: tinted and lit per `face`, or at rest (untinted, mid brightness) when None."""
    head, mask = _photo()
    if gender == "M":
        head = head[:, ::-1]
    if face is None:
        tint_strength, brightness = 0.0, float(np.mean(BRIGHTNESS[gender]))
        tint = np.zeros(3, np.float32)
    else:
        tint_strength, brightness, tint = face.tint_strength, face.brightness, np.array(face.tint, np.float32)
    luminance = head.mean(axis=2, keepdims=True) / 255.0
    # Blend toward the tint scaled by the face's own luminance, so eyes and brows stay dark for the detector.
    sprite = (head * (1.0 - tint_strength) + luminance * tint * tint_strength * 1.25) * brightness
    if gender == "M":
        sprite[:CAP_ROWS] = np.where(mask[:CAP_ROWS, :, None], CAP_COLOUR, sprite[:CAP_ROWS])
    return np.clip(np.rint(sprite), 0, 255).astype(np.uint8)


class Planes:
    """A 4:2:0 picture: Y at full resolution, U and V at half, views into one contiguous buffer."""

    def __init__(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        self.buffer = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).reshape(-1)
        luma = height * width
        self.y = self.buffer[:luma].reshape(height, width)
        self.u = self.buffer[luma:luma + luma // 4].reshape(height // 2, width // 2)
        self.v = self.buffer[luma + luma // 4:].reshape(height // 2, width // 2)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.y, self.u, self.v


class Sprite:
    def __init__(self, rgb: np.ndarray, mask: np.ndarray) -> None:
        self.picture = Planes(rgb)
        self.masks = (mask, mask[::2, ::2], mask[::2, ::2])

    def paste(self, canvas: Planes, x: int, y: int) -> None:
        for plane, sprite, mask, scale in zip(canvas.planes(), self.picture.planes(), self.masks, (1, 2, 2)):
            height, width = sprite.shape
            region = plane[y // scale:y // scale + height, x // scale:x // scale + width]
            np.copyto(region, sprite, where=mask)


def _background() -> np.ndarray:
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[:, :HALF_WIDTH] = LEFT_BACKGROUND
    rgb[:, HALF_WIDTH:] = RIGHT_BACKGROUND
    return rgb


def _half_origin(side: str) -> int:
    return 0 if side == "left" else HALF_WIDTH


def _clamped(side: str, dx: int, dy: int) -> tuple[int, int]:
    """Sprite corner in frame coordinates, kept inside its half."""
    _, mask = _photo()
    height, width = mask.shape
    x = int(np.clip(REST[0] + dx, 0, HALF_WIDTH - width))
    y = int(np.clip(REST[1] + dy, 0, HEIGHT - height))
    return _half_origin(side) + x, y


def dialog_frames(dialog: SynthDialog) -> Iterator[memoryview]:
    """Every frame of the dialog video, in order, as I420 bytes (reused buffer: consume before the next)."""
    _, mask = _photo()
    sides = {gender: speaker_side(f"{dialog.name}_{gender}000") for gender in "FM"}
    resting = Planes(_background())
    for gender, side in sides.items():
        Sprite(face_rgb(None, gender), mask).paste(resting, *_clamped(side, 0, 0))
    empty = Planes(_background())
    canvas = Planes(_background())
    utterances = dialog.utterances
    starts = np.array([u.start_sample for u in utterances])
    sprite: tuple[SynthUtterance, Sprite] | None = None
    for index in range(frame_count(dialog.n_samples)):
        sample = int(index / FRAME_RATE * SAMPLE_RATE)
        np.copyto(canvas.buffer, resting.buffer)
        current = int(np.searchsorted(starts, sample, side="right")) - 1
        if current >= 0 and sample < utterances[current].end_sample:
            utterance = utterances[current]
            if sprite is None or sprite[0] is not utterance:
                sprite = (utterance, Sprite(face_rgb(utterance.face, utterance.gender), mask))
            origin = _half_origin(utterance.side)
            for plane, blank, scale in zip(canvas.planes(), empty.planes(), (1, 2, 2)):
                columns = slice(origin // scale, (origin + HALF_WIDTH) // scale)
                plane[:, columns] = blank[:, columns]
            offset = face_offset(utterance.face, (sample - utterance.start_sample) / SAMPLE_RATE)
            sprite[1].paste(canvas, *_clamped(utterance.side, *offset))
        yield memoryview(canvas.buffer)

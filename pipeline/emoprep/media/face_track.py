"""From sparse face detections to one crop box per frame. Pure: arrays in, arrays out.

Detection runs on every few frames only. The crop's centre is the detected
face centre, with single outliers removed (a running median of three
detections), linearly interpolated between detections, held at the nearest
detection before the first and after the last one, smoothed with a Gaussian
over time, and finally clamped so the square crop stays inside the speaker's
half. Without any detection the seed paper's fixed box is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emoprep.media.faces import Box

# The seed paper's fixed 224-pixel crops in a 720x480 frame: x=87 (left half) and x=438 (right half,
# x=78 within it), y=128. As centres relative to a 360x480 half, so they carry over to any frame size.
_PAPER_HALF = (360, 480)
_PAPER_CENTRES = {"left": (87 + 112, 128 + 112), "right": (438 - 360 + 112, 128 + 112)}


def fixed_centre(side: str, width: int, height: int) -> tuple[float, float]:
    """The centre of the seed paper's fixed crop box in a half of `width` x `height` pixels.

    A full frame (side "full": one speaker facing the camera) falls back to its centre.
    """
    if side == "full":
        return width / 2, height / 2
    x, y = _PAPER_CENTRES[side]
    return x * width / _PAPER_HALF[0], y * height / _PAPER_HALF[1]


def sample_frames(n_frames: int, every: int) -> np.ndarray:
    """The frames a detector looks at: 0, every, 2 every, ..."""
    if every < 1:
        raise ValueError(f"detection interval must be at least 1 frame, not {every}")
    return np.arange(0, n_frames, every)


def running_median3(values: np.ndarray) -> np.ndarray:
    """Median of each value and its two neighbours (the ends keep their own value), per column."""
    if len(values) < 3:
        return values.copy()
    out = values.copy()
    out[1:-1] = np.median(np.stack([values[:-2], values[1:-1], values[2:]]), axis=0)
    return out


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of an (n, k) array along n, the ends extended with their own value (not zeros)."""
    values = np.asarray(values, dtype=np.float64)
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, j], taps, mode="valid") for j in range(values.shape[1])], axis=1)


def track_centres(
    detections: Sequence[Box | None], frames: Sequence[int], n_frames: int, sigma: float
) -> np.ndarray | None:
    """(n_frames, 2) face centres (x, y) from detections made on `frames`; None when nothing was detected."""
    if len(detections) != len(frames):
        raise ValueError(f"{len(detections)} detections for {len(frames)} sampled frames")
    found = [(frame, box.centre) for frame, box in zip(frames, detections) if box is not None]
    if not found:
        return None
    at = np.array([frame for frame, _ in found], dtype=np.float64)
    centres = running_median3(np.array([centre for _, centre in found], dtype=np.float64))
    every = np.arange(n_frames, dtype=np.float64)
    # np.interp holds the first and last values beyond the ends: the nearest detection.
    dense = np.stack([np.interp(every, at, centres[:, axis]) for axis in (0, 1)], axis=1)
    return gaussian_smooth(dense, sigma)


def crop_origins(centres: np.ndarray, crop: int, width: int, height: int) -> np.ndarray:
    """(n, 2) integer top-left corners (x, y) of `crop`-pixel squares centred on `centres`, kept inside the half."""
    if crop > width or crop > height:
        raise ValueError(f"a {crop}-pixel crop does not fit in a {width}x{height} half")
    corners = np.rint(np.asarray(centres, dtype=np.float64) - crop / 2).astype(np.int64)
    corners[:, 0] = np.clip(corners[:, 0], 0, width - crop)
    corners[:, 1] = np.clip(corners[:, 1], 0, height - crop)
    return corners


def cut_crops(frames: np.ndarray, origins: np.ndarray, crop: int) -> np.ndarray:
    """(n, crop, crop, 3): frame i cut at origins[i]."""
    out = np.empty((len(frames), crop, crop, frames.shape[3]), dtype=frames.dtype)
    for i, (x, y) in enumerate(origins):
        out[i] = frames[i, y:y + crop, x:x + crop]
    return out

"""From sparse face detections to one crop box per frame. Pure: arrays in, arrays out.

Detection runs on every few frames only, and a detector reports every face it
sees. `follow_speaker` picks the speaker's face in each sampled frame by
continuity: it starts from the face seen most consistently over the whole
utterance and follows it frame to frame, so another face (a listener leaning
in, a false detection) cannot take the crop over, and a frame where the
speaker's face was missed stays a gap rather than jumping to something else.

The crop's centre is then the followed face's centre, with single outliers
removed (a running median of three detections), linearly interpolated across
gaps, held at the nearest detection before the first and after the last one,
smoothed with a Gaussian over time, and finally clamped so the square crop
stays inside the speaker's region. Without any detection the seed paper's
fixed box is used. The crop's side is the region's fixed one or, by
CropPolicy, a multiple of the followed face's median size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emoprep.media.faces import Box

# A face is the same one a sampled frame later when its centre moved at most this many face sizes,
# plus DRIFT_PER_GAP more per sampled frame it was not seen in (capped at MAX_REACH), and its size changed
# by at most SIZE_RATIO. At 5 samples a second a seated speaker's head moves a fraction of its size;
# a second person is at least a face size away.
REACH = 0.6
DRIFT_PER_GAP = 0.3
MAX_REACH = 1.5
SIZE_RATIO = 1.6


@dataclass(frozen=True)
class CropPolicy:
    """How big the square crop is.

    face_scale None: the region's fixed side (IEMOCAP: the seed paper's 224
    source pixels, which video.half_geometry scales to the output size).
    face_scale k: k times the followed face's median size (Box.size) over the
    utterance, for corpora whose faces are nearer or farther than IEMOCAP's.
    PAPER_FACE_SCALE frames a face the way the seed paper's 224-pixel crop
    frames a face of about 100 source pixels (CenterFace's box side) in its corpus.
    """

    face_scale: float | None = None

    def __post_init__(self) -> None:
        if self.face_scale is not None and not self.face_scale > 0:
            raise ValueError(f"face_scale must be positive, not {self.face_scale}")


PAPER_FACE_SCALE = 2.2  # 224 / ~100: the paper's crop side over the size of a face in its videos


def _same_face(last: Box, box: Box, gap: int) -> float | None:
    """How far `box` is from `last` in face sizes when it can be the same face `gap` samples later, else None."""
    size = max(last.size, 1e-6)
    if not 1 / SIZE_RATIO <= box.size / size <= SIZE_RATIO:
        return None
    (ax, ay), (bx, by) = last.centre, box.centre
    distance = float(np.hypot(bx - ax, by - ay)) / size
    return distance if distance <= min(MAX_REACH, REACH + DRIFT_PER_GAP * (gap - 1)) else None


def _walk(detections: Sequence[Sequence[Box]], start: Box, start_at: int, order: range) -> dict[int, Box]:
    """Follow `start` (seen at `start_at`) through `order`, taking in each frame the nearest compatible box."""
    chosen: dict[int, Box] = {}
    last, last_at = start, start_at
    for index in order:
        scored = [(d, box) for box in detections[index]
                  if (d := _same_face(last, box, abs(index - last_at))) is not None]
        if scored:
            last, last_at = min(scored, key=lambda pair: pair[0])[1], index
            chosen[index] = last
    return chosen


def follow_speaker(detections: Sequence[Sequence[Box]]) -> list[Box | None]:
    """The speaker's face in each sampled frame (None where it was not seen), from every face seen there.

    The seed is the box with the most sampled frames holding a compatible box
    (ties: the larger, then the surer face), so a face that is there all along
    wins over one that passes by, and the track grows from it both ways.
    """
    candidates = [(i, box) for i, boxes in enumerate(detections) for box in boxes]
    if not candidates:
        return [None] * len(detections)

    def support(item: tuple[int, Box]) -> tuple[int, float, float]:
        at, box = item
        seen = sum(any(_same_face(box, other, abs(j - at)) is not None for other in boxes)
                   for j, boxes in enumerate(detections) if j != at)
        return seen, box.area, box.score

    seed_at, seed = max(candidates, key=support)
    chosen = {seed_at: seed}
    chosen.update(_walk(detections, seed, seed_at, range(seed_at + 1, len(detections))))
    chosen.update(_walk(detections, seed, seed_at, range(seed_at - 1, -1, -1)))
    return [chosen.get(i) for i in range(len(detections))]


def track_side(followed: Sequence[Box | None], policy: CropPolicy, fixed_side: int, width: int, height: int) -> int:
    """The crop's side for the utterance: `fixed_side`, or face_scale x the followed face's median size.

    One side per utterance (not per frame): a zoom that breathes with the
    detector's box noise would be worse than a slightly loose crop. Kept
    inside the region.
    """
    sizes = [box.size for box in followed if box is not None]
    if policy.face_scale is None or not sizes:
        side = fixed_side
    else:
        side = round(policy.face_scale * float(np.median(sizes)))
    return int(max(8, min(side, width, height)))


# The seed paper's fixed 224-pixel crops in a 720x480 frame: x=87 (left half) and x=438 (right half,
# x=78 within it), y=128. As centres relative to a 360x480 half, so they carry over to any frame size.
_PAPER_HALF = (360, 480)
_PAPER_CENTRES = {"left": (87 + 112, 128 + 112), "right": (438 - 360 + 112, 128 + 112)}


def fixed_centre(side: str, width: int, height: int) -> tuple[float, float]:
    """The centre of the seed paper's fixed crop box in a half of `width` x `height` pixels.

    side "full" (a region that is the whole frame, one speaker): the frame's centre.
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


def cut_crops(frames: np.ndarray, origins: np.ndarray, crop: int, out_side: int | None = None) -> np.ndarray:
    """(n, out_side, out_side, 3): frame i cut at origins[i], `crop` pixels, resized to out_side (area filter)."""
    import cv2

    out_side = crop if out_side is None else out_side
    out = np.empty((len(frames), out_side, out_side, frames.shape[3]), dtype=frames.dtype)
    for i, (x, y) in enumerate(origins):
        square = frames[i, y:y + crop, x:x + crop]
        if crop == out_side:
            out[i] = square
        else:
            interpolation = cv2.INTER_AREA if crop > out_side else cv2.INTER_LINEAR
            out[i] = cv2.resize(square, (out_side, out_side), interpolation=interpolation)
    return out


PARTIAL_FACE_RATIO = 0.8  # below this share of sampled frames with the speaker's face, the record says so


@dataclass(frozen=True)
class FaceTrack:
    """Where to crop an utterance: one centre per frame and one side, in the scaled region's pixels."""

    centres: np.ndarray  # (n_frames, 2) x, y
    side: int
    face_ratio: float  # sampled frames where the followed face was seen / sampled frames
    most_faces: int  # the most faces seen in one sampled frame

    def warnings(self, detector: str) -> list[str]:
        """What a record should say about the face: none found, found part of the time, several seen."""
        notes = []
        if self.face_ratio == 0:
            notes.append(f"no face found by {detector}: the fixed crop was used")
        elif self.face_ratio < PARTIAL_FACE_RATIO:
            notes.append(f"face found by {detector} on {self.face_ratio:.0%} of sampled frames: "
                         "the crop was interpolated or held across the gaps")
        if self.most_faces > 1:
            notes.append(f"up to {self.most_faces} faces in the speaker's region: "
                         "the crop follows the one seen most consistently")
        return notes

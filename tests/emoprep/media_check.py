"""Independent readers for the synthetic twins' media: ffmpeg's stream header, a decoded frame, Haar faces.

Written here, not taken from emoprep, so the tests check the files against the formats and not
against the code that wrote them.
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import soundfile as sf

_STREAM = re.compile(r"Stream #\d+:\d+\S*: (Video|Audio): (.*)")


def streams(path: Path) -> dict[str, str]:
    """"Video" / "Audio" -> the stream's description line as `ffmpeg -i` prints it (codec, size, rate...)."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True)
    found = {kind: description for kind, description in _STREAM.findall(result.stderr.decode(errors="replace"))}
    assert found, result.stderr.decode(errors="replace")
    return found


def first_stream(path: Path) -> str:
    """The kind of stream 0 ("Video", "Audio", "Data", ...) as `ffmpeg -i` prints it."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True)
    found = re.search(r"Stream #0:0\S*: (\w+):", result.stderr.decode(errors="replace"))
    assert found, result.stderr.decode(errors="replace")
    return found.group(1)


def decoded_audio(path: Path, rate: int) -> np.ndarray:
    """The file's audio stream, decoded and resampled to `rate` mono by the ffmpeg binary, float64."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-vn",
                             "-ac", "1", "-ar", str(rate), "-f", "wav", "pipe:1"], capture_output=True, check=True)
    samples, _ = sf.read(io.BytesIO(result.stdout), dtype="float64")
    return samples


def middle_frame(path: Path) -> np.ndarray:
    """The BGR frame at half the video's length, decoded by OpenCV."""
    capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frames // 2)
    ok, frame = capture.read()
    capture.release()
    assert ok, path
    return frame


def haar_faces(bgr: np.ndarray) -> np.ndarray:
    detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    small = min(bgr.shape[:2]) // 8
    return detector.detectMultiScale(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(small, small))

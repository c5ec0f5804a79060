"""Independent readers for the media: ffmpeg's stream header, a decoded frame, Haar faces, a reference resampling.

Written here, not taken from emoprep, so the tests check the files against the formats and not
against the code that wrote them.
"""

from __future__ import annotations

import io
import math
import re
import subprocess
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Agreement:
    """How an extracted 16 kHz waveform compares with a reference resampling of its source."""

    max_abs: float  # largest sample difference, full scale 1.0 (one int16 step is 3.1e-5)
    rms: float  # root mean square of the difference
    correlation: float  # Pearson, over the common length
    length_difference: int  # extracted minus reference, in samples
    clipped: int  # reference samples beyond 16-bit full scale (a resampled peak of a loud source overshoots)


def resampled_16k(path: Path) -> np.ndarray:
    """The whole file as 16 kHz mono float64: soundfile's samples, channels averaged, scipy's polyphase resampler."""
    from scipy.signal import resample_poly

    data, rate = sf.read(path, dtype="float64", always_2d=True)
    mono = data.mean(axis=1)
    divisor = math.gcd(16_000, rate)
    return resample_poly(mono, 16_000 // divisor, rate // divisor) if rate != 16_000 else mono


def agreement(extracted: np.ndarray, reference: np.ndarray) -> Agreement:
    """Compare a 16-bit waveform read as floats (full scale 1.0) with a reference, over their common length.

    The reference is clipped to what 16 bits hold first: a sample beyond full scale cannot be
    stored by any 16-bit output, so it is counted (`clipped`), not charged as an error.
    """
    length = min(len(extracted), len(reference))
    a, b = extracted[:length], reference[:length]
    difference = a - np.clip(b, -1.0, 32767 / 32768)
    return Agreement(max_abs=float(np.abs(difference).max()), rms=float(np.sqrt(np.mean(difference ** 2))),
                     correlation=float(np.corrcoef(a, b)[0, 1]),
                     length_difference=len(extracted) - len(reference),
                     clipped=int(np.count_nonzero((b < -1.0) | (b > 32767 / 32768))))

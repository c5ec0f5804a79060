"""Small real media files for tests, made with ffmpeg: a talking-head-like video with a known soundtrack.

The picture is ffmpeg's `testsrc` pattern (no face in it); the soundtrack is whatever
float signal the test gives, stored losslessly (FLAC in Matroska) so that a test can
compare what comes out against its own reference resampling of the same numbers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from emoprep.media.ffmpeg_bin import ffmpeg_exe


def tones(seconds: float, rate: int, frequencies: tuple[float, ...], amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return sum(amplitude * np.sin(2 * np.pi * f * t) for f in frequencies)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, seconds: float, *, audio: np.ndarray | None = None, rate: int = 48_000,
               channels: int = 1, size: str = "128x96", fps: int = 25, faststart: bool = False) -> Path:
    """A video of `seconds` (testsrc pattern) with `audio` (float, mono) as its soundtrack, or no audio stream.

    The container follows the suffix (.mkv, .mp4, .mov, ...); audio is FLAC in Matroska, AAC elsewhere.
    `faststart`: an mp4's index (moov) before its data, so that a copy cut short still opens
    and says the full duration (see `truncated_copy`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}"]
    if audio is None:
        _ffmpeg(*picture, "-c:v", "mpeg4", "-an", str(path))
        return path
    wav = path.with_suffix(".source.wav")
    sf.write(wav, np.repeat(audio[:, None], channels, axis=1), rate, subtype="FLOAT")
    codec = ["-c:a", "flac"] if path.suffix == ".mkv" else ["-c:a", "aac", "-b:a", "192k"]
    flags = ["-movflags", "+faststart"] if faststart else []
    _ffmpeg(*picture, "-i", str(wav), "-c:v", "mpeg4", *codec, *flags, "-shortest", str(path))
    wav.unlink()
    return path


def truncated_copy(source: Path, path: Path, keep: float) -> Path:
    """The first `keep` (a fraction) of the source's bytes: a download cut short, as
    ../shared/real-media/eamm_video_sad.mp4 is; its header still gives the full duration."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path

"""Which ffmpeg binary to run: the one decision, used everywhere.

The system's ffmpeg when one is on PATH (or named by EMOAV_FFMPEG), else the
static binary that the imageio-ffmpeg wheel ships, so `pip install` alone gives
a working pipeline on a machine without system packages.
"""

from __future__ import annotations

import functools
import os
import shutil


class FfmpegNotFound(RuntimeError):
    pass


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use."""
    explicit = os.environ.get("EMOAV_FFMPEG")
    if explicit:
        if not shutil.which(explicit):
            raise FfmpegNotFound(f"EMOAV_FFMPEG={explicit!r} is not an executable")
        return explicit
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise FfmpegNotFound(
            "no ffmpeg on PATH and imageio-ffmpeg is not installed: "
            "install the system ffmpeg or `pip install imageio-ffmpeg`"
        ) from err
    return imageio_ffmpeg.get_ffmpeg_exe()

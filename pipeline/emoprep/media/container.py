"""What `ffmpeg -i` says about a media file, and whether ffmpeg may seek in its container.

There is no ffprobe: `header` is the text that `ffmpeg -i` prints (the container's
format names, duration, one line per stream), read once per file and process.

Seeking (`-ss` before `-i`) jumps to a packet near the time asked for and decodes from
there: frame exact and far cheaper than decoding from 0 for the AVIs and MP4s here. Flash
video is the exception. In CREMA-D's real VP6 files (stream 0 is a data stream) even
`-ss 0` lands nowhere: ffmpeg prints "could not seek to position 0.000" and decodes no
frame; in other FLV files a seek can land between keyframes and give frames decoded
without their reference, nearly black, with no error at all. So a file in such a
container is decoded from its start and the frames or samples before the window are
dropped on the output side.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from emoprep.media.ffmpeg_bin import ffmpeg_exe

# ffmpeg's demuxer names (as `ffmpeg -i` prints them) of the containers that seek badly.
SEEKS_BADLY = frozenset({"flv"})
_FORMATS = re.compile(r"^Input #0, (.+?), from '", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


@functools.lru_cache(maxsize=64)
def header(path: str) -> str:
    """What `ffmpeg -i path` prints about the file. Cached: every window of a video asks about the same file.

    The caller has checked that the file exists.
    """
    # Without an output ffmpeg exits 1 after printing the header: that is the expected outcome here.
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return result.stderr.decode("utf-8", "replace")


def formats(text: str) -> tuple[str, ...]:
    """The demuxer names a header gives ("mov", "mp4", ... for an MP4; "flv"); () when it names none."""
    found = _FORMATS.search(text)
    return () if found is None else tuple(name.strip() for name in found.group(1).split(","))


def duration(text: str) -> float | None:
    """The container's duration in seconds from a header (an estimate for a damaged file); None when it gives none."""
    found = _DURATION.search(text)
    if found is None:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def last_line(text: str) -> str:
    """ffmpeg's last word on a file: the line a message about it quotes."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def seeks_well(path: str | Path) -> bool:
    """Whether `-ss` before `-i` may be used on this file (see the module docstring)."""
    return not SEEKS_BADLY.intersection(formats(header(str(path))))


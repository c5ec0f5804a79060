"""A video in, the speaker's region (a half of a split-screen dialog, or the whole frame) at 25 fps out,
decoded by ffmpeg and streamed frame by frame.

One ffmpeg process per utterance does the seeking (`-ss` before `-i`, frame
exact for IEMOCAP's AVIs; never for a window that starts at 0, and never in a container
that seeks badly, Flash video: see emoprep.media.container), the cut to the speaker's
region, the resampling to 25 fps and an area downscale, so Python only ever sees small frames. They come as
4:2:0 YUV and OpenCV turns them into RGB: converting inside ffmpeg's scaler
cost about twice as much as the scaling alone (measured on the synthetic
corpus; benchmarks/extract.py). The downscale is chosen so that a CROP_SIDE (224) pixel square of the source
becomes exactly FACE_SIZE (96) pixels: cutting a 96-pixel square out of the
scaled half is then a 224-pixel crop downsampled with the area filter, and
the same frames serve the face detector (faces of about 100 source pixels
are about 43 pixels there, comfortably above the detectors' minimum).

There is no ffprobe: `probe` parses the stream header that `ffmpeg -i` prints
(emoprep.media.container.header).
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
from shardformat import FPS, FRAME_SIZE  # the format's frame rate and crop size, defined once

from emoprep.media.bad_input import BadInput
from emoprep.media.container import duration, header, last_line, seeks_well
from emoprep.media.ffmpeg_bin import ffmpeg_exe

CROP_SIDE = 224  # the face crop in source pixels (the seed paper's)
FACE_SIZE = FRAME_SIZE  # ... and in the output (the shard format's frame size)
# Decode this much past the window so the fps filter has the source frame it needs for the last output frame.
_TAIL_SECONDS = 0.1


class VideoError(BadInput):
    """A video that cannot give the frames asked for."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration: float | None  # seconds, from the container header (an estimate for a damaged file)


@dataclass(frozen=True)
class HalfGeometry:
    """Where the speaker's half lies in the source frame and how it is scaled for cropping."""

    x: int  # left edge of the half in the source frame
    width: int  # of the half, source pixels
    height: int
    scaled_width: int  # of the half after the downscale
    scaled_height: int

    @property
    def scale(self) -> float:
        """Scaled pixels per source pixel (horizontally)."""
        return self.scaled_width / self.width


REGIONS = ("left", "right", "full")


def half_geometry(info: VideoInfo, side: str) -> HalfGeometry:
    """The left or right half of the frame, or the whole of it ("full"), on even columns.

    An odd width loses its last column. The scale is the same for every
    region: a CROP_SIDE square of the source becomes FACE_SIZE pixels.
    """
    if side not in REGIONS:
        raise ValueError(f"speaker side must be one of {', '.join(REGIONS)}, not {side!r}")
    width = (info.width if side == "full" else info.width // 2) & ~1  # even: 4:2:0 chroma cannot be cut at an odd column
    # A half smaller than 224 pixels gets the largest square that fits, still shown at 96 pixels.
    side_px = min(CROP_SIDE, width, info.height)
    scale = FACE_SIZE / side_px
    return HalfGeometry(
        x=0 if side != "right" else (info.width - width) & ~1,
        width=width,
        height=info.height,
        scaled_width=_even(max(FACE_SIZE, width * scale)),
        scaled_height=_even(max(FACE_SIZE, info.height * scale)),
    )


def _even(pixels: float) -> int:
    """The nearest even size: 4:2:0 frames (what ffmpeg hands over) need even sides."""
    return 2 * round(pixels / 2)


def frames_in_window(seconds: float) -> int:
    """25 fps frames that overlap a window of `seconds`: frame i covers [i/25, (i+1)/25)."""
    return max(0, math.ceil(round(seconds * FPS, 6)))


_DIMENSIONS = re.compile(r"Stream #\S+.*?: Video: .*?\b(\d{2,5})x(\d{2,5})\b")


def parse_header(text: str) -> VideoInfo | None:
    """Width, height and duration from what `ffmpeg -i` prints; None when it shows no video stream."""
    dimensions = _DIMENSIONS.search(text)
    if dimensions is None:
        return None
    return VideoInfo(width=int(dimensions.group(1)), height=int(dimensions.group(2)), duration=duration(text))


def probe(path: str) -> VideoInfo:
    """The video's size and duration (the header is read once per file: every utterance of a dialog asks)."""
    if not Path(path).is_file():
        raise VideoError("missing video", f"{path} does not exist")
    text = header(path)
    info = parse_header(text)
    if info is None or info.width < 2 or info.height < 1:
        raise VideoError("unreadable video", f"{path}: {last_line(text) or 'ffmpeg found no video stream'}")
    return info


def read_window(path: str, start: float, seconds: float, half: HalfGeometry) -> np.ndarray:
    """Frames (T, scaled_height, scaled_width, 3) uint8 of [start, start + seconds] at 25 fps.

    T is frames_in_window(seconds), or fewer when the video ends first (the
    frames that exist are returned; zero of them is not an error here).
    The window is cut by seeking, or (from 0, or in a container that seeks badly) by
    decoding from the file's start and trimming what comes before `start`; either
    way the frames start with the first source frame at or after `start`.
    Raises VideoError when ffmpeg fails.
    """
    wanted = frames_in_window(seconds)
    seek = start > 0 and seeks_well(path)
    decoded = (ffmpeg.input(path, ss=f"{start:.6f}", t=f"{seconds + _TAIL_SECONDS:.6f}", threads=1) if seek
               else ffmpeg.input(path, t=f"{max(start, 0.0) + seconds + _TAIL_SECONDS:.6f}", threads=1))
    cropped = decoded.video.filter("crop", half.width, half.height, half.x, 0)
    if start > 0 and not seek:
        # Decoded from 0: drop the frames before the window and start its clock there, as a seek does.
        cropped = cropped.filter("trim", start=f"{start:.6f}").filter("setpts", "PTS-STARTPTS")
    stream = (
        cropped.filter("fps", FPS)
        .filter("scale", half.scaled_width, half.scaled_height, flags="area")
        .output("pipe:", format="rawvideo", pix_fmt="yuv420p", vframes=wanted, threads=1)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    frames = np.empty((wanted, half.scaled_height, half.scaled_width, 3), np.uint8)
    # One 4:2:0 frame: the Y plane, then U and V at half size, as OpenCV's I420 layout wants it.
    yuv = np.empty((half.scaled_height * 3 // 2, half.scaled_width), np.uint8)
    # stderr goes to a file: a pipe nobody reads could fill up and stall ffmpeg on a damaged input.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            ffmpeg.compile(stream, cmd=ffmpeg_exe()),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
        )
        count = 0
        with process.stdout:
            while count < wanted and _read_exactly(process.stdout, memoryview(yuv).cast("B")):
                cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420, dst=frames[count])
                count += 1
            process.stdout.read()  # anything beyond the frames asked for: let ffmpeg finish
        returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            message = last_line(errors.read().decode("utf-8", "replace"))
            raise VideoError("unreadable video", f"{path} at {start:.3f} s: ffmpeg exited {returncode}: {message}")
    return frames[:count]


def _read_exactly(stream, buffer: memoryview) -> bool:
    """Fill `buffer` from `stream`; False when the stream ends first (a partial frame is dropped)."""
    filled = 0
    while filled < len(buffer):
        got = stream.readinto(buffer[filled:])
        if not got:
            return False
        filled += got
    return True


"""What a media file's header says, read without decoding it: for recipes, which read metadata only.

A recipe must tell a usable sound file from a bad one (zero bytes, not audio, cut short
by a broken download) and say how long it is, in a fraction of a millisecond per file,
so it reads headers: soundfile's for any sound file, the RIFF chunk sizes of a WAV (the
only way to see a truncated one: libsndfile quietly reports the samples that are there),
and an mp4's `mvhd` box for the length of a video.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from emoprep.media.audio import AudioError

_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what streaming writers put in a WAV header they never went back to


@dataclass(frozen=True)
class AudioInfo:
    rate: int  # Hz
    channels: int
    seconds: float


def probe_audio(path: str | Path) -> AudioInfo:
    """A sound file's rate, channels and length; AudioError naming the file and what is wrong otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise AudioError("missing audio", f"{path}: {error.strerror or error}") from None
    if size == 0:
        raise AudioError("empty audio", f"{path} is a zero-length file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError("not audio", f"{path} is not a sound file that can be read ({error})") from None
    if info.format == "WAV":
        promised = _wav_data_end(path)
        if promised is not None and promised > size:
            raise AudioError("truncated audio", f"{path} is cut short: its header promises {promised:,} bytes, "
                                                f"the file holds {size:,}")
    if info.frames == 0:
        raise AudioError("empty audio", f"{path} holds no samples")
    return AudioInfo(rate=info.samplerate, channels=info.channels, seconds=info.frames / info.samplerate)


def _wav_data_end(path: Path) -> int | None:
    """Where the `data` chunk ends by the header (bytes from the start); None when the header does not say."""
    with path.open("rb") as file:
        if file.read(12)[8:12] != b"WAVE":
            return None
        while len(header := file.read(8)) == 8:
            kind, length = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"data":
                return None if length in _UNKNOWN_SIZES else file.tell() + length
            file.seek(length + (length & 1), 1)  # chunks are padded to an even length
    return None


def mp4_seconds(path: str | Path) -> float | None:
    """An mp4's (or mov's) length by its `moov/mvhd` box; None when the box is not found or unreadable."""
    try:
        with Path(path).open("rb") as file:
            moov = _find_box(file, b"moov", Path(path).stat().st_size)
            if moov is None:
                return None
            mvhd = _find_box(file, b"mvhd", moov)
            if mvhd is None:
                return None
            version = file.read(4)[0]
            file.read(16 if version == 1 else 8)  # creation and modification times
            if version == 1:
                scale, duration = struct.unpack(">IQ", file.read(12))
            else:
                scale, duration = struct.unpack(">II", file.read(8))
    except (OSError, struct.error, IndexError):
        return None
    return duration / scale if scale else None


def _find_box(file, kind: bytes, end: int) -> int | None:
    """Seek past the header of the first box `kind` before `end`; the box's end, or None."""
    while file.tell() + 8 <= end:
        start = file.tell()
        size, found = struct.unpack(">I4s", file.read(8))
        if size == 1:
            size = struct.unpack(">Q", file.read(8))[0]
        elif size == 0:
            size = end - start
        if size < 8:
            return None
        if found == kind:
            return start + size
        file.seek(start + size)
    return None

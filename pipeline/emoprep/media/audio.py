"""Sentence wavs in, 16 kHz mono 16-bit out: reading, resampling, downmixing, FLAC writing.

IEMOCAP's sentence wavs are already 16 kHz mono 16-bit, and then the samples
pass through untouched (the first 96,000 of them). Anything else is downmixed
by averaging the channels and resampled with a polyphase filter
(scipy.signal.resample_poly: Kaiser-windowed FIR, exact rational ratio).
A video's own soundtrack (read_audio_stream) is decoded by ffmpeg and then
converted the same way.
"""

from __future__ import annotations

import io
import math
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from shardformat import MAX_AUDIO_SAMPLES as MAX_SAMPLES  # 96,000: 6 s, the format's cap
from shardformat import SAMPLE_RATE

from emoprep.atomic import write_bytes
from emoprep.media.bad_input import BadInput
from emoprep.media.container import duration, header, last_line, seeks_well
from emoprep.media.ffmpeg_bin import ffmpeg_exe

_TAIL_SECONDS = 0.1  # decoded past a window's end, then cut off (read_audio_stream)
_AUDIO_STREAM = re.compile(r"^\s*Stream #\S+.*?: Audio: ", re.MULTILINE)  # not the file name, which may say anything
SOUND_FILES = (".wav", ".flac", ".ogg")  # read by soundfile directly; any other audio source goes through ffmpeg


class AudioError(BadInput):
    """A sentence wav that cannot give a waveform: missing, unreadable or empty."""


@dataclass(frozen=True)
class Waveform:
    samples: np.ndarray  # int16, mono, SAMPLE_RATE, at most MAX_SAMPLES
    source_rate: int
    source_channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def conversion_note(self) -> str | None:
        """What was done to the source, for the manifest's warning column; None when nothing."""
        notes = []
        if self.source_channels != 1:
            notes.append(f"downmixed {self.source_channels} channels")
        if self.source_rate != SAMPLE_RATE:
            notes.append(f"resampled from {self.source_rate} Hz")
        return ", ".join(notes) or None


def read_waveform(path: str | Path, start: float = 0.0, seconds: float | None = None,
                  max_samples: int = MAX_SAMPLES) -> Waveform:
    """[start, start + seconds) of a sound file (None: to its end), at most `max_samples`, as 16 kHz mono int16.

    Never padded. A window is read by seeking in the file (sound files seek sample-exactly).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("missing audio", f"{path} does not exist")
    try:
        with sf.SoundFile(path) as file:
            rate, channels = file.samplerate, file.channels
            first = round(start * rate)
            if first:
                file.seek(min(first, file.frames))
            frames = -1 if seconds is None else round(seconds * rate)
            if rate == SAMPLE_RATE and channels == 1:
                samples = file.read(max_samples if frames < 0 else min(frames, max_samples), dtype="int16")
            else:
                samples = _to_16k_mono(file.read(frames, dtype="float64", always_2d=True), rate)[:max_samples]
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise AudioError("unreadable audio", f"{path}: {error}") from error
    if len(samples) == 0:
        where = f" from {start:.3f} s" if start else ""
        raise AudioError("empty audio", f"{path} holds no samples{where}")
    return Waveform(samples=samples, source_rate=rate, source_channels=channels)


def audio_duration(path: str | Path) -> float:
    """Seconds of audio in a file, from its header, checked as far as the header allows.

    Sound files are asked through soundfile, which also finds a wav cut short (its header
    promises more data than the file holds); any other file (mp3, a video) through
    ffmpeg's header. Raises AudioError naming the file: "missing audio", "unreadable
    audio", "no audio stream", "empty audio", "truncated audio".
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("missing audio", f"{path} does not exist")
    if path.suffix.lower() in SOUND_FILES:
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError, ValueError) as error:
            raise AudioError("unreadable audio", f"{path}: {error}") from error
        if info.frames == 0:
            raise AudioError("empty audio", f"{path} holds no samples")
        promised = _wav_promised_frames(path) if info.format == "WAV" else None
        if promised is not None and promised > info.frames:
            raise AudioError("truncated audio", f"{path}: its header promises {promised / info.samplerate:.3f} s, "
                                                f"the file holds {info.frames / info.samplerate:.3f} s (cut short?)")
        return info.frames / info.samplerate
    text = header(str(path))
    seconds = duration(text)
    if _AUDIO_STREAM.search(text) is None:
        kind = "no audio stream" if seconds is not None else "unreadable audio"
        raise AudioError(kind, f"{path}: {last_line(text) if seconds is None else 'it has no audio stream'}")
    if not seconds:
        raise AudioError("empty audio", f"{path}: its header gives no duration")
    return seconds


def _wav_promised_frames(path: Path) -> int | None:
    """Frames a RIFF wav's `data` chunk says it holds (None where the header cannot say: streamed, odd)."""
    with path.open("rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        while chunk := file.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = file.read(size + size % 2)
                block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif name == b"data":
                # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot go back to fill it in.
                return size // block if block and size not in (0, 0xFFFFFFFF) else None
            else:
                file.seek(size + size % 2, 1)
    return None


def read_audio_stream(
    path: str | Path, start: float = 0.0, duration: float | None = None, max_samples: int | None = MAX_SAMPLES
) -> Waveform:
    """A media file's first audio stream, [start, start + duration) seconds (None: to the end), as 16 kHz mono int16.

    ffmpeg only decodes: it writes the stream at its own rate and channel count as
    32-bit float WAV (a temporary file, so the header tells rate and channels), and the
    downmix and resampling are read_waveform's (resample_poly's anti-aliasing FIR), so a
    video's soundtrack and a sentence wav are converted alike. Seeking is ffmpeg's input
    seek, which decodes from the previous packet and drops samples up to `start`; in a
    container that seeks badly (Flash video, emoprep.media.container) the stream is
    decoded from its start instead and the samples before `start` dropped on output.
    Raises AudioError naming the file: "no audio stream", "unreadable audio", "empty audio".
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("missing audio", f"{path} does not exist")
    if duration is None and max_samples is not None:
        duration = max_samples / SAMPLE_RATE  # what would be cut anyway is not decoded
    # ffmpeg's -t ends a little early or late (packet boundaries, AAC priming): decode a margin, cut below.
    # No seek at 0: `-ss 0` makes ffmpeg drop an AAC stream's first frame (1,024 samples) with its priming.
    window = (["-ss", f"{start:.6f}"] if start > 0 else []) + (
        [] if duration is None else ["-t", f"{duration + _TAIL_SECONDS:.6f}"])
    # Before `-i` the window is a seek; after it (an output option) ffmpeg decodes from 0 and drops up to start.
    seek, cut = (window, []) if start <= 0 or seeks_well(path) else ([], window)
    with tempfile.TemporaryDirectory(prefix="emoprep-audio-") as folder:
        wav = Path(folder) / "stream.wav"
        result = subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *seek, "-i", str(path),
             "-map", "0:a:0", "-vn", *cut, "-c:a", "pcm_f32le", "-f", "wav", str(wav)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        message = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not wav.is_file():
            if "matches no streams" in message:
                raise AudioError("no audio stream", f"{path} has no audio stream")
            last = message.splitlines()[-1] if message else f"ffmpeg exited {result.returncode}"
            raise AudioError("unreadable audio", f"{path}: {last}")
        try:
            data, rate = sf.read(wav, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as error:
            raise AudioError("unreadable audio", f"{path}: {error}") from error
    if len(data) == 0:
        where = f" from {start:.3f} s" if start else ""
        raise AudioError("empty audio", f"{path}: its audio stream holds no samples{where}")
    wanted = [limit for limit in (max_samples, None if duration is None else round(duration * SAMPLE_RATE))
              if limit is not None]
    samples = _to_16k_mono(data, rate)[: min(wanted, default=None)]
    return Waveform(samples=samples, source_rate=rate, source_channels=data.shape[1])


def _to_16k_mono(data: np.ndarray, rate: int) -> np.ndarray:
    """(frames, channels) floats in [-1, 1) -> int16 mono at SAMPLE_RATE."""
    from scipy.signal import resample_poly

    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE and len(mono):
        divisor = math.gcd(SAMPLE_RATE, rate)
        mono = resample_poly(mono, SAMPLE_RATE // divisor, rate // divisor)
    return np.clip(np.rint(mono * 32768), -32768, 32767).astype(np.int16)


def flac_bytes(samples: np.ndarray) -> bytes:
    """16-bit mono FLAC at SAMPLE_RATE: the bytes the shard writer copies as they are."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def write_flac(path: str | Path, samples: np.ndarray) -> None:
    write_bytes(path, flac_bytes(samples))

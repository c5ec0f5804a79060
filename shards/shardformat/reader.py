"""The one reader of shard samples: a tar stream -> raw samples -> checked `Sample`s.

Every reader of the format (`emoprep verify` and `inspect`, emotrain's loaders, `predict`) reads
through these two steps, so the checks live once:

    iter_tar(stream, shard)        tar members -> RawSample (key, member bytes), grouped by key;
                                   a member larger than the format allows is never read into
                                   memory; a damaged tar or ungrouped members raise ShardReadError
    read_sample(raw, emotions)     RawSample -> Sample: the json against the format (its version's
                                   keys, id = key, counts in range), the members the json implies
                                   in the format's order, the FLAC's header (FLAC/PCM_16, mono,
                                   16 kHz, n_samples) before a sample is decoded, the JPEG's
                                   header (RGB, 96 x 96 n_frames) before a pixel is decoded

A shard may come from anyone, so a member's size is checked against the format's limits before
its bytes are read, and a header before the pixels or samples it announces: peak memory stays
bounded whatever a tar claims. A sample's failures are ValueError with the reason, and the caller
adds the shard and key; a tar's own faults are ShardReadError, which carries both.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
from PIL import Image

from shardformat import (
    FRAME_SIZE, MAX_AUDIO_SAMPLES, MAX_FRAMES, MEMBERS, SAMPLE_KEYS, SAMPLE_RATE, SHARED_EMOTIONS, SampleMeta,
    check_stack, decode_meta, sample_members,
)

# Bytes a member may take. json: a sample's metadata is under 2 kB (extra included). flac: 6 s of
# 16-bit mono is 192,000 bytes raw, and FLAC's verbatim frames and metadata add little. frames.jpg:
# a quality-95 JPEG of noise stays under twice the raw pixels of the most frames a stack may hold.
MEMBER_LIMITS = {"json": 64 << 10, "flac": 1 << 20, "frames.jpg": 2 * MAX_FRAMES * FRAME_SIZE * FRAME_SIZE * 3}
# ("decode": pixels; "check": header only, the JPEG kept for decoding on the training device; "skip")
FrameReading = Literal["decode", "check", "skip"]


class ShardReadError(Exception):
    """The tar itself cannot be read on: damaged, cut, or its members not grouped by sample."""

    def __init__(self, shard: str, key: str | None, reason: str, cause: str | None = None) -> None:
        super().__init__(f"{shard}: {key or '-'}: {reason}")
        self.shard, self.key, self.reason = shard, key, reason
        self.cause = cause or reason  # the tar library's own words, without ours around them


@dataclass(frozen=True)
class RawSample:
    """One sample's members as read from its tar, undecoded; `refused` says which were left unread, and why."""

    key: str
    shard: str  # the path or URL it was read from
    members: Mapping[str, bytes]  # extension -> bytes, in tar order
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """One checked sample: its metadata and whichever of its audio and frames were asked for."""

    key: str  # the sample's id: the tar key, and the json's utterance_id
    shard: str
    meta: SampleMeta
    audio: np.ndarray | None = None  # (n_samples,) int16, when it has audio and it was read
    frames: np.ndarray | None = None  # (n_frames, 96, 96, 3) uint8 RGB, when decoded
    jpeg: bytes | None = None  # the stacked JPEG, header checked, when frame decoding was left to the caller

    @property
    def has_audio(self) -> bool:
        return self.meta.has_audio

    @property
    def has_frames(self) -> bool:
        return self.meta.has_frames


def iter_tar(stream: BinaryIO, shard: str) -> Iterator[RawSample]:
    """The samples of one tar stream (a file, an HTTP body, a command's output), in tar order.

    Read in tarfile's stream mode: members are never seeked to, and a member that is too large
    or not a `<key>.<extension>` of the format is skipped unread and named in `refused`.
    """
    key: str | None = None
    members: dict[str, bytes] = {}
    refused: list[str] = []
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                name_key, dot, extension = info.name.partition(".")
                if not info.isreg() or not dot or "/" in info.name or not name_key:
                    raise ShardReadError(shard, key, f"member {info.name!r} is not a <key>.<extension> file")
                if name_key != key:
                    if key is not None:
                        yield RawSample(key, shard, members, tuple(refused))
                    if name_key in seen:
                        raise ShardReadError(shard, name_key, "its members are not grouped together")
                    key, members, refused = name_key, {}, []
                    seen.add(key)
                if extension in members or any(r.startswith(f"{extension} ") for r in refused):
                    raise ShardReadError(shard, key, f"member {info.name} appears twice")
                limit = MEMBER_LIMITS.get(extension)
                if limit is None:
                    refused.append(f"{extension} is not a member of the format ({', '.join(MEMBERS)})")
                elif info.size > limit:
                    refused.append(f"{extension} is {info.size} bytes, more than the {limit} the format allows")
                else:
                    members[extension] = tar.extractfile(info).read()
    except ShardReadError:
        raise
    # The stream's own OSError (a lost connection, a failed command) passes through: a retry may cure it.
    except (tarfile.TarError, EOFError, ValueError) as exn:
        raise ShardReadError(shard, key, f"unreadable tar ({_reason(exn)}); truncated or damaged", _reason(exn)) from exn
    if key is not None:
        yield RawSample(key, shard, members, tuple(refused))


def read_sample(raw: RawSample, emotions: tuple[str, ...] = SHARED_EMOTIONS, *, audio: bool = True,
                frames: FrameReading = "decode") -> Sample:
    """RawSample -> Sample, every check of the format made; ValueError with the reason otherwise.

    `audio=False` leaves the FLAC unread and `frames` says how far the JPEG is read; the
    members' presence and order are checked either way.
    """
    if raw.refused:
        raise ValueError("; ".join(raw.refused))
    meta = read_meta(raw, emotions)
    expected = sample_members(meta)
    if tuple(raw.members) != expected:
        raise ValueError(f"members {', '.join(raw.members) or 'none'}; with n_samples {meta.n_samples} and "
                         f"n_frames {meta.n_frames} the format has {', '.join(expected)} in that order")
    waveform = decode_audio(raw.members["flac"], meta.n_samples) if audio and meta.has_audio else None
    pixels = jpeg = None
    if meta.has_frames and frames != "skip":
        jpeg = raw.members["frames.jpg"]
        if frames == "decode":
            pixels, jpeg = decode_frames(jpeg, meta.n_frames), None
        else:
            check_frames_jpeg(jpeg, meta.n_frames)
    return Sample(raw.key, raw.shard, meta, waveform, pixels, jpeg)


def read_meta(raw: RawSample, emotions: tuple[str, ...] = SHARED_EMOTIONS) -> SampleMeta:
    """The json member, checked: decodes, its version's keys all there, its utterance_id the tar key."""
    if "json" not in raw.members:
        raise ValueError("no json member")
    try:
        meta = decode_meta(raw.members["json"], emotions)
    except (ValueError, UnicodeDecodeError) as exn:
        raise ValueError(f"json member: {exn}") from exn
    missing = [k for k in SAMPLE_KEYS[meta.version] if k not in meta.fields]
    if missing:
        raise ValueError(f"json lacks {', '.join(missing)}")
    if meta.fields["utterance_id"] != raw.key:
        raise ValueError(f"json utterance_id {meta.fields['utterance_id']!r} differs from the key")
    return meta


def decode_audio(flac: bytes, n_samples: int) -> np.ndarray:
    """16-bit mono 16 kHz FLAC -> (n_samples,) int16; the header is checked before a sample is decoded."""
    try:
        with sf.SoundFile(io.BytesIO(flac)) as file:
            layout = (file.format, file.subtype, file.channels, file.samplerate)
            if layout != ("FLAC", "PCM_16", 1, SAMPLE_RATE):
                raise ValueError(f"flac is {'/'.join(map(str, layout))}; the format is FLAC/PCM_16, mono, "
                                 f"{SAMPLE_RATE} Hz")
            if file.frames != n_samples or file.frames > MAX_AUDIO_SAMPLES:
                raise ValueError(f"flac header says {file.frames} samples, json says n_samples={n_samples}")
            audio = file.read(dtype="int16")
    except (sf.LibsndfileError, RuntimeError, TypeError) as exn:
        raise ValueError(f"flac does not decode ({exn})") from exn
    if audio.shape != (n_samples,):
        raise ValueError(f"flac decodes to {audio.shape[0]} samples, json says n_samples={n_samples}")
    return audio


def decode_frames(jpeg: bytes, n_frames: int) -> np.ndarray:
    """Stacked RGB JPEG -> (n_frames, 96, 96, 3) uint8; its header is checked before a pixel is decoded."""
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            _check_image(image, n_frames)
            pixels = np.asarray(image)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exn:
        raise ValueError(f"frames.jpg does not decode ({_reason(exn)})") from exn
    if pixels.shape != (FRAME_SIZE * n_frames, FRAME_SIZE, 3):
        raise ValueError(f"frames.jpg decodes to {pixels.shape}, expected ({FRAME_SIZE * n_frames}, {FRAME_SIZE}, 3)")
    return pixels.reshape(n_frames, FRAME_SIZE, FRAME_SIZE, 3)


def check_frames_jpeg(jpeg: bytes, n_frames: int) -> None:
    """The JPEG header says an RGB stack of n_frames (no pixel is decoded: for decoding on the device)."""
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            _check_image(image, n_frames)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exn:
        raise ValueError(f"frames.jpg does not decode ({_reason(exn)})") from exn


def _check_image(image: Image.Image, n_frames: int) -> None:
    check_stack(image, n_frames)
    if image.mode != "RGB":
        raise ValueError(f"frames.jpg is a {image.mode} JPEG; the format is an RGB JPEG")


def _reason(exn: BaseException) -> str:
    # Libraries append the stream object (" <_io.BytesIO object at 0x...>"): keep the reason.
    return str(exn).split(" <_io.")[0] or type(exn).__name__


def sample_json(raw: RawSample) -> dict | None:
    """The json member as an object, unchecked, when it parses (for naming a bad sample's source); else None."""
    try:
        fields = json.loads(raw.members.get("json", b""))
    except (ValueError, UnicodeDecodeError):
        return None
    return fields if isinstance(fields, dict) else None

"""The emoav shard format (shards/README.md) as code: its constants, the writer's codec and a sample's json.

The only package that both `emoprep` (the writer) and `emotrain` (the reader) import, so the
format is defined once. It needs numpy, Pillow and soundfile only: no torch, OpenCV or ffmpeg.

    shardformat           constants, names, encode_frames (the writer's), decode_meta (a sample's json)
    shardformat.sets      splits.json and index.json, parsed and checked (every shard name included)
    shardformat.reader    the one reader of samples: tar stream -> RawSample -> checked Sample

Decoders are pure (bytes in, arrays or records out) and raise ValueError with the reason; the
caller adds where the bytes came from.

Version 2 (written now) generalises version 1 (IEMOCAP only) to any corpus recipe: the class
list travels in splits.json and index.json, a sample names its corpus, speaker and source,
emotion and gender may be null (an unlabelled set), and a sample may lack its audio or its
frames. Version 1 shards still read: their classes are the shared four.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

SAMPLE_RATE = 16_000  # Hz, mono
FPS = 25  # face crops per second
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640: frame i covers audio samples [640 i, 640 (i + 1))
MAX_SECONDS = 6
MAX_AUDIO_SAMPLES = MAX_SECONDS * SAMPLE_RATE  # 96,000
MAX_STEPS = MAX_SECONDS * FPS  # 150 frames of 40 ms
FRAME_SIZE = 96  # face crops are FRAME_SIZE x FRAME_SIZE RGB
# A JPEG side is at most 65,535 pixels: 682 stacked frames (27 s), far above 6 s of video.
MAX_FRAMES = 65_535 // FRAME_SIZE
# Quality 95 without chroma subsampling: above 38 dB PSNR on extract's crops (shards/README.md).
JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 0  # 4:4:4

SHARED_EMOTIONS = ("ang", "hap", "neu", "sad")  # the default class set, shared by every corpus
GENDERS = ("F", "M")
PARTS = ("train", "val", "test")
MEMBERS = ("json", "flac", "frames.jpg")  # tar member order within a sample; flac and jpg may be absent (v2)
# The keys of `<key>.json`, by format version (shards/README.md explains each).
SAMPLE_KEYS = {
    1: ("format_version", "utterance_id", "session", "dialog", "improvised", "gender", "emotion",
        "released_label", "votes", "tie_broken", "label_policy", "speaker_side", "start", "end",
        "n_samples", "n_frames", "face_ratio", "detector"),
    2: ("format_version", "utterance_id", "corpus", "speaker", "gender", "emotion", "corpus_label", "group",
        "label_policy", "source", "start", "end", "region", "n_samples", "n_frames", "face_ratio", "detector",
        "extra"),
}

# <speaker>-<group>[-<part>]-<NNNN>.tar: speaker [A-Za-z0-9]+, group [a-z0-9]+ (shards/README.md)
SHARD_NAME = re.compile(r"^[A-Za-z0-9]+-[a-z0-9]+(-(train|val|test))?-\d{4}\.tar$")
TOKEN = re.compile(r"^[A-Za-z0-9]+$")
GROUP_TOKEN = re.compile(r"^[a-z0-9]+$")


def shard_name(speaker: str, group: str, part: str | None, number: int) -> str:
    """The file name of a shard; speaker and group must be plain tokens so names parse back."""
    if not TOKEN.fullmatch(speaker) or not GROUP_TOKEN.fullmatch(group):
        raise ValueError(f"speaker {speaker!r} / group {group!r}: use letters and digits only")
    return f"{speaker}-{group}{'' if part is None else '-' + part}-{number:04d}.tar"


# ---------------------------------------------------------------- a sample's members


def encode_frames(frames: np.ndarray) -> bytes:
    """(T, 96, 96, 3) uint8 -> one JPEG of width 96 and height 96 T (frame i = rows 96 i .. 96 i + 95)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3):
        raise ValueError(f"frames are {frames.dtype} {frames.shape}, expected uint8 (T, 96, 96, 3)")
    if not 1 <= frames.shape[0] <= MAX_FRAMES:
        raise ValueError(f"{frames.shape[0]} frames; a stacked JPEG holds 1..{MAX_FRAMES}")
    buffer = io.BytesIO()
    Image.fromarray(frames.reshape(-1, FRAME_SIZE, 3)).save(
        buffer, "JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    return buffer.getvalue()


def check_stack(image: Image.Image, n_frames: int) -> None:
    """A stacked JPEG's header says 96 x 96 n_frames (the writer's check; the reader adds RGB)."""
    if image.format != "JPEG" or image.size != (FRAME_SIZE, FRAME_SIZE * n_frames):
        raise ValueError(f"frames.jpg is a {image.format} of {image.size[0]}x{image.size[1]}, expected a JPEG "
                         f"of {FRAME_SIZE}x{FRAME_SIZE * n_frames} for n_frames={n_frames}")


def steps_of(n_samples: int) -> int:
    """40 ms steps an utterance of n_samples spans, at most 6 s' worth."""
    return min(math.ceil(n_samples / SAMPLES_PER_FRAME), MAX_STEPS)


@dataclass(frozen=True)
class SampleMeta:
    """The fields of `<key>.json` that a reader relies on, checked; `fields` holds them all."""

    version: int
    emotion: str | None
    gender: str | None
    n_samples: int  # 0: no audio member (v2 only)
    n_frames: int  # 0: no frames member (v2 only)
    fields: Mapping[str, Any]

    @property
    def has_audio(self) -> bool:
        return self.n_samples > 0

    @property
    def has_frames(self) -> bool:
        return self.n_frames > 0


def decode_meta(raw_json: bytes, emotions: Sequence[str] = SHARED_EMOTIONS) -> SampleMeta:
    """`<key>.json` -> SampleMeta; ValueError when a field a reader needs is missing or wrong."""
    meta = json.loads(raw_json)
    if not isinstance(meta, dict):
        raise ValueError("json is not an object")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(f"format_version {version!r} is not supported (this reader reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}); use an emoav matching the one that wrote it")
    nullable = version >= 2  # v1 samples are always labelled and always have both members
    emotion, gender = meta.get("emotion"), meta.get("gender")
    if not (emotion in emotions or (nullable and emotion is None)):
        raise ValueError(f"emotion {emotion!r} is not one of {', '.join(emotions)}")
    if not (gender in GENDERS or (nullable and gender is None)):
        raise ValueError(f"gender {gender!r} is not one of {', '.join(GENDERS)}")
    least = 0 if nullable else 1
    counts = {}
    for name, most in (("n_samples", MAX_AUDIO_SAMPLES), ("n_frames", MAX_FRAMES)):
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
            raise ValueError(f"{name} {value!r} is not an integer in {least}..{most}")
        counts[name] = value
    if counts["n_samples"] == counts["n_frames"] == 0:
        raise ValueError("the sample has neither audio nor frames")
    return SampleMeta(version, emotion, gender, counts["n_samples"], counts["n_frames"], meta)


def sample_members(meta: SampleMeta) -> tuple[str, ...]:
    """The members a sample must have, in tar order: json, then flac and frames.jpg when it has them."""
    return ("json",) + (("flac",) if meta.has_audio else ()) + (("frames.jpg",) if meta.has_frames else ())

"""The emoav shard format (shards/README.md) as code: its constants, codecs and split files.

The only module that both `emoprep` (the writer) and `emotrain` (the reader) import, so the
format is defined once. It needs numpy, Pillow and soundfile only: no torch, OpenCV or ffmpeg.
Decoders are pure (bytes in, arrays or dicts out) and raise ValueError with the reason; the
caller adds where the bytes came from. WebDataset's `autodecode.py` is the model: one table
of what each member is and how it decodes.

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
import soundfile as sf
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
    if not TOKEN.match(speaker) or not GROUP_TOKEN.match(group):
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


def decode_frames(jpeg: bytes, n_frames: int) -> np.ndarray:
    """Stacked JPEG -> (n_frames, 96, 96, 3) uint8, checked against the size n_frames implies."""
    with Image.open(io.BytesIO(jpeg)) as image:
        _check_stack(image, n_frames)
        pixels = np.asarray(image.convert("RGB"))
    return pixels.reshape(n_frames, FRAME_SIZE, FRAME_SIZE, 3)


def check_frames_jpeg(jpeg: bytes, n_frames: int) -> None:
    """The JPEG header says the size n_frames implies (no pixel is decoded: for GPU-side decoding)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        _check_stack(image, n_frames)


def _check_stack(image: Image.Image, n_frames: int) -> None:
    if image.format != "JPEG" or image.size != (FRAME_SIZE, FRAME_SIZE * n_frames):
        raise ValueError(f"frames.jpg is a {image.format} of {image.size[0]}x{image.size[1]}, expected a JPEG "
                         f"of {FRAME_SIZE}x{FRAME_SIZE * n_frames} for n_frames={n_frames}")


def decode_audio(flac: bytes, n_samples: int) -> np.ndarray:
    """16-bit mono 16 kHz FLAC -> (n_samples,) int16, checked against the json's count."""
    audio, rate = sf.read(io.BytesIO(flac), dtype="int16")
    if rate != SAMPLE_RATE or audio.ndim != 1:
        raise ValueError(f"flac is {rate} Hz with shape {audio.shape}, expected mono {SAMPLE_RATE} Hz")
    if len(audio) != n_samples:
        raise ValueError(f"flac has {len(audio)} samples, json says n_samples={n_samples}")
    return audio


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
    if version not in READABLE_VERSIONS:
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


# ---------------------------------------------------------------- splits.json and index.json


@dataclass(frozen=True)
class PartEntry:
    shards: tuple[str, ...]  # file names relative to the shard set
    samples: int


@dataclass(frozen=True)
class SplitsDoc:
    """A parsed splits.json: the classes and, per split, its parts."""

    version: int
    emotions: tuple[str, ...]
    splits: Mapping[str, Mapping[str, PartEntry]]  # split -> part -> entry (parts that are present)
    omitted: Mapping[str, str]

    def part(self, split: str, part: str) -> PartEntry:
        """One non-empty part; ValueError naming what there is instead."""
        if split not in self.splits:
            raise ValueError(f"no split {split!r}; available: {', '.join(sorted(self.splits)) or 'none'}")
        entry = self.splits[split].get(part)
        if entry is None or not entry.shards or not entry.samples:
            state = "missing" if entry is None else "empty"
            non_empty = sorted(name for name, p in self.splits[split].items() if p.shards and p.samples)
            raise ValueError(f"split {split!r} part {part!r} is {state}; parts with samples: "
                             f"{', '.join(non_empty) or 'none'}")
        return entry

    def family(self, name: str) -> list[str]:
        """The splits named `<name>-<k>` (k = 1, 2, ...), in k order: a family of folds."""
        folds = [s for s in self.splits if s.rpartition("-")[0] == name and s.rpartition("-")[2].isdigit()]
        return sorted(folds, key=lambda s: int(s.rpartition("-")[2]))


def _version_of(doc: Any) -> int:
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if version not in READABLE_VERSIONS:
        raise ValueError(f"format_version {version!r} is not supported (this reader reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}); use an emoav matching the one that wrote it")
    return version


def _emotions_of(doc: dict, version: int) -> tuple[str, ...]:
    if version == 1:
        return SHARED_EMOTIONS
    emotions = (doc.get("classes") or {}).get("emotion")
    if not isinstance(emotions, list) or not emotions or not all(isinstance(e, str) for e in emotions):
        raise ValueError("classes.emotion is not a non-empty list of class names")
    return tuple(emotions)


def sample_members(meta: SampleMeta) -> tuple[str, ...]:
    """The members a sample must have, in tar order: json, then flac and frames.jpg when it has them."""
    return ("json",) + (("flac",) if meta.has_audio else ()) + (("frames.jpg",) if meta.has_frames else ())


def parse_splits(text: str) -> SplitsDoc:
    """The text of splits.json -> SplitsDoc; ValueError with the reason when it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exn:
        raise ValueError(f"not valid JSON ({exn})") from exn
    version = _version_of(doc)
    splits = {}
    for name, entry in (doc.get("splits") or {}).items():
        parts = {}
        for part in PARTS:
            if isinstance(entry, dict) and isinstance(entry.get(part), dict):
                raw = entry[part]
                parts[part] = PartEntry(tuple(raw.get("shards") or ()), int(raw.get("samples") or 0))
        splits[name] = parts
    return SplitsDoc(version, _emotions_of(doc, version), splits, dict(doc.get("omitted") or {}))


@dataclass(frozen=True)
class IndexDoc:
    """A parsed index.json: every shard of the set with its sample count (and the classes, v2)."""

    version: int
    emotions: tuple[str, ...]
    shard_samples: Mapping[str, int]  # file name -> samples, in the set's order


def parse_index(text: str) -> IndexDoc:
    """The text of index.json -> IndexDoc; ValueError with the reason when it is not one."""
    try:
        doc = json.loads(text)
        version = _version_of(doc)
        shards = {str(e["file"]): int(e["samples"]) for e in doc["shards"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exn:
        raise ValueError(f"not an index of shards ({type(exn).__name__}: {exn})") from exn
    return IndexDoc(version, _emotions_of(doc, version), shards)

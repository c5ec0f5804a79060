"""Read shards back and check them: hashes, every member of every sample, split counts.

The reading functions here (`load_index`, `load_splits`, `iter_samples`, `decode_sample`) are the
format's strict read side, on top of the codecs in `shardformat`; `emoprep inspect` and the tests
use them too.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shardformat
import soundfile as sf
from PIL import Image
from shardformat import GENDERS, PARTS, READABLE_VERSIONS, SAMPLE_KEYS, SAMPLE_RATE, SHARD_NAME


class FormatError(Exception):
    """A shard set, shard or sample does not follow the format."""


class SampleError(FormatError):
    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class Sample:
    key: str
    meta: dict
    audio: np.ndarray | None  # (n_samples,) int16; None when the sample has no audio
    frames: np.ndarray | None  # (n_frames, 96, 96, 3) uint8; None when it has no frames


@dataclass(frozen=True)
class Problem:
    shard: str  # file name relative to SHARDS, or "index.json" / "splits.json"
    sample: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.shard}: {self.sample}" if self.sample else self.shard
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Report:
    shards: int
    samples: int
    bytes: int
    seconds: float  # audio, summed over samples
    problems: tuple[Problem, ...]


def _load_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FormatError(f"{path}: missing; is this a folder written by emoprep shard?") from err
    except (OSError, ValueError) as err:
        raise FormatError(f"{path}: not readable JSON ({err}); re-run emoprep shard") from err
    if not isinstance(content, dict) or content.get("format_version") not in READABLE_VERSIONS:
        found = content.get("format_version") if isinstance(content, dict) else None
        raise FormatError(f"{path}: format_version {found!r}; this emoprep reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    return content


def load_index(root: Path) -> list[dict]:
    """index.json's shard entries, each checked to have file, samples, bytes, sha256."""
    entries = _load_json(root / "index.json").get("shards")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and {"file", "samples", "bytes", "sha256"} <= e.keys() for e in entries
    ):
        raise FormatError(f"{root / 'index.json'}: 'shards' must be a list of {{file, samples, bytes, sha256}}")
    return entries


def load_splits(root: Path) -> tuple[dict[str, dict], tuple[str, ...]]:
    """splits.json's splits (name -> {description, train, val, test}) and the set's emotion classes."""
    content = _load_json(root / "splits.json")
    splits = content.get("splits")
    if not isinstance(splits, dict) or not all(
        isinstance(s, dict) and all(isinstance(s.get(p), dict) and isinstance(s[p].get("shards"), list) for p in PARTS)
        for s in splits.values()
    ):
        raise FormatError(f"{root / 'splits.json'}: every split needs train, val and test parts with a shard list")
    try:
        emotions = shardformat.parse_splits(json.dumps(content)).emotions
    except ValueError as err:
        raise FormatError(f"{root / 'splits.json'}: {err}") from err
    return splits, emotions


def iter_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample, in tar order; raises SampleError naming the sample being read."""
    key: str | None = None
    members: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                name_key, dot, extension = info.name.partition(".")
                if not info.isreg() or not dot or "/" in info.name:
                    raise SampleError(name_key or key, f"member {info.name!r} is not a <key>.<extension> file")
                if name_key != key:
                    if key is not None:
                        yield key, members
                    if name_key in seen:
                        raise SampleError(name_key, "its members are not grouped together")
                    key, members = name_key, {}
                    seen.add(key)
                if extension in members:
                    raise SampleError(key, f"member {info.name} appears twice")
                members[extension] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SampleError(key, f"unreadable tar ({err}); truncated or damaged") from err
    if key is not None:
        yield key, members


def decode_sample(key: str, members: dict[str, bytes], emotions: tuple[str, ...]) -> Sample:
    """Decode and check every member of one sample against the format (its own version's keys)."""
    try:
        meta = shardformat.decode_meta(members.get("json", b"null"), emotions)
    except (ValueError, UnicodeDecodeError) as err:
        raise SampleError(key, f"json member: {err}") from err
    missing = [k for k in SAMPLE_KEYS[meta.version] if k not in meta.fields]
    if missing:
        raise SampleError(key, f"json lacks {', '.join(missing)}")
    if meta.fields["utterance_id"] != key:
        raise SampleError(key, f"json utterance_id {meta.fields['utterance_id']!r} differs from the key")
    expected = shardformat.sample_members(meta)
    if tuple(members) != expected:
        raise SampleError(key, f"members {', '.join(members)}; with n_samples {meta.n_samples} and n_frames "
                               f"{meta.n_frames} the format has {', '.join(expected)} in that order")
    return Sample(key, dict(meta.fields),
                  decode_audio(key, members["flac"], meta.n_samples) if meta.has_audio else None,
                  decode_frames(key, members["frames.jpg"], meta.n_frames) if meta.has_frames else None)


def decode_audio(key: str, data: bytes, n_samples: int) -> np.ndarray:
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            layout = (f.format, f.subtype, f.channels, f.samplerate)
            audio = f.read(dtype="int16")
    except (sf.LibsndfileError, RuntimeError) as err:
        raise SampleError(key, f"flac does not decode ({err})") from err
    if layout != ("FLAC", "PCM_16", 1, SAMPLE_RATE):
        raise SampleError(key, f"flac is {'/'.join(map(str, layout))}; the format is FLAC/PCM_16, mono, 16000 Hz")
    if audio.shape != (n_samples,):
        raise SampleError(key, f"flac decodes to {audio.shape[0]} samples, json says {n_samples}")
    return audio


def decode_frames(key: str, data: bytes, n_frames: int) -> np.ndarray:
    """The stacked JPEG, which must also be RGB (the readers' codec converts; the writer never needs to)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or image.mode != "RGB":
                raise SampleError(key, f"frames.jpg is {image.format} {image.mode}; the format is an RGB JPEG")
        return shardformat.decode_frames(data, n_frames)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise SampleError(key, f"frames.jpg does not decode ({err})") from err


def verify_shards(root: Path, progress: Callable[[int], None] | None = None) -> Report:
    """Check every shard against index.json, decode every sample, check splits.json against what was decoded.

    `progress` is called with the number of shards just checked. Problems are collected, not raised,
    so one run names all of them.
    """
    problems: list[Problem] = []
    try:
        index = load_index(root)
        splits, emotions = load_splits(root)
    except FormatError as err:
        return Report(0, 0, 0, 0.0, (Problem("index.json/splits.json", None, str(err)),))

    tallies: dict[str, Counter] = {}  # shard -> (emotion, gender) counts of its good samples
    owner: dict[str, str] = {}  # sample key -> first shard holding it
    samples = total_bytes = 0
    seconds = 0.0
    for entry in index:
        name = entry["file"]
        tallies[name] = Counter()
        for problem in _check_file(root, entry):
            problems.append(problem)
        if (root / name).is_file():
            count = 0
            try:
                for key, members in iter_samples(root / name):
                    count += 1
                    try:
                        sample = decode_sample(key, members, emotions)
                    except SampleError as err:
                        problems.append(Problem(name, key, err.reason))
                        continue
                    if key in owner:
                        problems.append(Problem(name, key, f"also in {owner[key]}"))
                    owner.setdefault(key, name)
                    tallies[name][sample.meta["emotion"], sample.meta["gender"]] += 1
                    seconds += sample.meta["n_samples"] / SAMPLE_RATE
            except SampleError as err:
                problems.append(Problem(name, err.key, err.reason))
            if count != entry["samples"]:
                problems.append(Problem(name, None, f"{count} samples read, index.json says {entry['samples']}"))
            samples += count
            total_bytes += (root / name).stat().st_size
        if progress is not None:
            progress(1)

    damaged = {problem.shard for problem in problems}
    listed = {entry["file"] for entry in index}
    for path in sorted(root.iterdir()):
        if SHARD_NAME.match(path.name) and path.name not in listed:
            problems.append(Problem(path.name, None, "a shard file that index.json does not list"))
    problems.extend(_check_splits(splits, emotions, tallies, damaged))
    return Report(len(index), samples, total_bytes, seconds, tuple(problems))


def _check_file(root: Path, entry: dict) -> list[Problem]:
    path = root / entry["file"]
    if not SHARD_NAME.match(entry["file"]):
        return [Problem(entry["file"], None, "index.json lists a name outside the shard naming scheme")]
    if not path.is_file():
        return [Problem(entry["file"], None, "missing")]
    problems = []
    size = path.stat().st_size
    if size != entry["bytes"]:
        problems.append(Problem(entry["file"], None, f"{size} bytes, index.json says {entry['bytes']} (truncated?)"))
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != entry["sha256"]:
        problems.append(Problem(entry["file"], None, "sha256 differs from index.json: the file changed after writing"))
    return problems


def _check_splits(splits: dict[str, dict], emotions: tuple[str, ...], tallies: dict[str, Counter],
                  damaged: set[str]) -> list[Problem]:
    """Every part names indexed shards, no shard in two parts of one split, and its counts match the
    samples (checked only where all the part's shards read cleanly: a damaged shard is already named)."""
    problems = []
    for split, content in splits.items():
        used: dict[str, str] = {}
        for part in PARTS:
            where = f"split {split}, part {part}"
            shards = content[part]["shards"]
            for name in shards:
                if name not in tallies:
                    problems.append(Problem("splits.json", None, f"{where}: shard {name} is not in index.json"))
                elif name in used:
                    problems.append(Problem("splits.json", None, f"{where}: shard {name} is also in part {used[name]}"))
                used.setdefault(name, part)
            if damaged.intersection(shards):
                continue
            counted = sum((tallies.get(name, Counter()) for name in shards), Counter())
            declared = content[part].get("counts", {})
            found = {e: {g: counted[e, g] for g in GENDERS} for e in emotions}
            if declared != found or content[part].get("samples") != sum(counted.values()):
                problems.append(Problem("splits.json", None,
                                        f"{where}: declares {content[part].get('samples')} samples {declared}, "
                                        f"its shards hold {sum(counted.values())} {found}"))
    return problems

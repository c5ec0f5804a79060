"""A shard set's two JSON files, `splits.json` and `index.json`, parsed and checked once for every reader.

A shard set may come from anyone (a colleague's folder, an HTTP server, a bucket), so every
shard name it lists is checked against the format's naming scheme (`SHARD_NAME`) here, before
any reader joins it to a folder or appends it to a URL or a command: a name such as
`../x.tar`, `/etc/passwd` or `x.tar; touch /tmp/m` never reaches `open` or a shell. The
refusal names the file and the entry. Counts must be non-negative integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shardformat import GENDERS, PARTS, READABLE_VERSIONS, SHARD_NAME, SHARED_EMOTIONS

# splits.json and index.json of a real set are a few hundred kB; a far larger one is not a shard set.
MAX_JSON_BYTES = 64 << 20


@dataclass(frozen=True)
class PartEntry:
    shards: tuple[str, ...]  # shard file names relative to the shard set, each matching SHARD_NAME
    samples: int
    counts: Mapping[str, Mapping[str, int]]  # emotion -> gender -> samples (as splits.json declares them)


@dataclass(frozen=True)
class SplitsDoc:
    """A parsed splits.json: the classes and, per split, its parts (only those the file has)."""

    version: int
    emotions: tuple[str, ...]
    splits: Mapping[str, Mapping[str, PartEntry]]  # split -> part -> entry
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


@dataclass(frozen=True)
class IndexEntry:
    file: str  # matches SHARD_NAME
    samples: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class IndexDoc:
    """A parsed index.json: every shard of the set with its sample count, size and hash (and the classes, v2)."""

    version: int
    emotions: tuple[str, ...]
    entries: tuple[IndexEntry, ...]  # in the set's order

    @property
    def shard_samples(self) -> dict[str, int]:
        return {entry.file: entry.samples for entry in self.entries}


def check_shard_name(name: Any, where: str) -> str:
    """`name` when it is a shard file name of the format; ValueError naming `where` it was listed otherwise."""
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise ValueError(f"{where}: {name!r} is not a shard file name of the format "
                         "(<speaker>-<group>[-<part>]-<NNNN>.tar); refusing to open it")
    return name


def parse_splits(text: str | bytes) -> SplitsDoc:
    """The text of splits.json -> SplitsDoc; ValueError with the reason (and the entry) when it is not one."""
    doc = _load(text)
    version = _version_of(doc)
    emotions = _emotions_of(doc, version)
    raw_splits = doc.get("splits")
    if not isinstance(raw_splits, dict):
        raise ValueError("'splits' is not an object of split name -> parts")
    splits = {}
    for name, entry in raw_splits.items():
        if not isinstance(entry, dict):
            raise ValueError(f"split {name!r} is not an object of parts")
        splits[name] = {part: _part_entry(entry[part], f"split {name!r} part {part!r}", emotions)
                        for part in PARTS if part in entry}
    omitted = doc.get("omitted") or {}
    if not isinstance(omitted, dict):
        raise ValueError("'omitted' is not an object of split name -> reason")
    return SplitsDoc(version, emotions, splits, {str(k): str(v) for k, v in omitted.items()})


def parse_index(text: str | bytes) -> IndexDoc:
    """The text of index.json -> IndexDoc; ValueError with the reason (and the entry) when it is not one."""
    doc = _load(text)
    version = _version_of(doc)
    raw = doc.get("shards")
    if not isinstance(raw, list):
        raise ValueError("'shards' is not a list of {file, samples, bytes, sha256}")
    entries = []
    for number, entry in enumerate(raw):
        where = f"shards[{number}]"
        if not isinstance(entry, dict) or not {"file", "samples", "bytes", "sha256"} <= entry.keys():
            raise ValueError(f"{where} is not an object with file, samples, bytes and sha256")
        if not isinstance(entry["sha256"], str):
            raise ValueError(f"{where}: sha256 {entry['sha256']!r} is not a string")
        entries.append(IndexEntry(check_shard_name(entry["file"], where), _count(entry["samples"], f"{where}.samples"),
                                  _count(entry["bytes"], f"{where}.bytes"), entry["sha256"]))
    names = [entry.file for entry in entries]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"shard {twice} is listed twice")
    return IndexDoc(version, _emotions_of(doc, version), tuple(entries))


def _load(text: str | bytes) -> dict:
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{len(text)} bytes, more than the {MAX_JSON_BYTES >> 20} MiB a shard set's JSON may take")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exn:
        raise ValueError(f"not valid JSON ({exn})") from exn
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def _version_of(doc: dict) -> int:
    version = doc.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(f"format_version {version!r} is not supported (this reader reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}); use an emoav matching the one that wrote it")
    return version


def _emotions_of(doc: dict, version: int) -> tuple[str, ...]:
    if version == 1:
        return SHARED_EMOTIONS
    classes = doc.get("classes")
    emotions = classes.get("emotion") if isinstance(classes, dict) else None
    if not isinstance(emotions, list) or not emotions or not all(isinstance(e, str) for e in emotions):
        raise ValueError("classes.emotion is not a non-empty list of class names")
    if len(set(emotions)) < len(emotions):
        raise ValueError(f"classes.emotion lists a class twice: {emotions}")
    return tuple(emotions)


def _part_entry(raw: Any, where: str, emotions: tuple[str, ...]) -> PartEntry:
    if not isinstance(raw, dict) or not isinstance(raw.get("shards"), list):
        raise ValueError(f"{where} is not an object with a list of shards")
    shards = tuple(check_shard_name(name, f"{where} shards[{n}]") for n, name in enumerate(raw["shards"]))
    counts = raw.get("counts") or {}
    if not isinstance(counts, dict) or not all(
            isinstance(by_gender, dict) and all(g in GENDERS and _is_count(n) for g, n in by_gender.items())
            for by_gender in counts.values()):
        raise ValueError(f"{where}: counts is not an object of class -> {{F: n, M: n}}")
    return PartEntry(shards, _count(raw.get("samples", 0), f"{where} samples"), counts)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any, where: str) -> int:
    if not _is_count(value):
        raise ValueError(f"{where}: {value!r} is not a non-negative integer")
    return value

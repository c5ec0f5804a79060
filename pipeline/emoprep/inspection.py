"""Look at a shard set: counts per split, part, class and gender, and a contact sheet of faces and waveforms.

The sheet is for a person's eye: one row per emotion, the middle frame of several samples spread over
the speakers, each over its waveform strip, with a faint cross at the crop centre so an off-centre
face stands out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from shardformat import FRAME_SIZE, GENDERS, PARTS, SAMPLE_RATE
from shardformat.reader import RawSample, Sample, ShardReadError, iter_tar, read_meta, read_sample
from shardformat.sets import SplitsDoc

from emoprep.atomic import atomic_path
from emoprep.verify import FormatError, load_index, load_splits

T = TypeVar("T")


class UnknownSplit(ValueError):
    pass


@dataclass(frozen=True)
class Candidate:
    key: str
    shard: str
    emotion: str | None
    gender: str | None


def select_shards(root: Path, split: str | None) -> list[str]:
    """The shards of one split (all its parts), or every indexed shard."""
    if split is None:
        return [entry.file for entry in load_index(root).entries]
    splits = _load_splits(root, split)
    return [name for part in PARTS for name in splits.splits[split][part].shards]


def _load_splits(root: Path, split: str | None) -> SplitsDoc:
    """splits.json, after checking that `split` (when given) is one of its splits."""
    splits = load_splits(root)
    if split is not None and split not in splits.splits:
        raise UnknownSplit(f"{root / 'splits.json'} has no split {split!r}; "
                           f"it has {', '.join(splits.splits) or 'none'}")
    return splits


def counts_table(root: Path, split: str | None = None) -> str:
    """A text table from splits.json: per split and part, shards, samples, and F/M counts per class."""
    splits = _load_splits(root, split)
    emotions = splits.emotions
    header = ["split", "part", "shards", "samples", *(f"{e} F/M" for e in emotions), "F", "M"]
    rows = [header]
    for name, parts in splits.splits.items():
        if split not in (None, name):
            continue
        for part in PARTS:
            counts = parts[part].counts
            count = lambda e, g: counts.get(e, {}).get(g, 0)  # noqa: E731
            by_gender = [sum(count(e, g) for e in emotions) for g in GENDERS]
            rows.append([name, part, str(len(parts[part].shards)), str(parts[part].samples),
                         *(f"{count(e, 'F')}/{count(e, 'M')}" for e in emotions), *map(str, by_gender)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    )


def candidates(root: Path, shards: list[str], emotions: tuple[str, ...]) -> list[Candidate]:
    """Every sample's key, class and gender, from its checked json (the media are decoded only for those shown)."""
    found = []
    for name in shards:
        for raw in _raw_samples(root, name):
            meta = _checked(raw, lambda: read_meta(raw, emotions))
            found.append(Candidate(raw.key, name, meta.emotion, meta.gender))
    return found


def pick(found: list[Candidate], per_class: int, emotions: tuple[str, ...]) -> dict[str, list[Candidate]]:
    """Per class, `per_class` samples spread evenly over the class's id-sorted list, and so over speakers."""
    picked = {}
    for emotion in emotions:
        pool = sorted((c for c in found if c.emotion == emotion), key=lambda c: c.key)
        if len(pool) <= per_class:
            picked[emotion] = pool
        else:
            picked[emotion] = [pool[i] for i in np.linspace(0, len(pool) - 1, per_class).round().astype(int)]
    return picked


def decoded(root: Path, chosen: Iterable[Candidate], emotions: tuple[str, ...]) -> dict[str, Sample]:
    """The chosen samples by key, every member decoded and checked; each shard is read once."""
    wanted: dict[str, set[str]] = {}
    for candidate in chosen:
        wanted.setdefault(candidate.shard, set()).add(candidate.key)
    samples = {}
    for shard, keys in wanted.items():
        for raw in _raw_samples(root, shard):
            if raw.key in keys:
                samples[raw.key] = _checked(raw, lambda: read_sample(raw, emotions))
        if missing := keys - samples.keys():
            raise FormatError(f"{root / shard}: sample {sorted(missing)[0]} is no longer there")
    return samples


def _raw_samples(root: Path, shard: str) -> Iterator[RawSample]:
    """The shard's samples through the format's reader; a damaged tar becomes a FormatError naming it."""
    try:
        with (root / shard).open("rb") as stream:
            yield from iter_tar(stream, str(root / shard))
    except (ShardReadError, OSError) as err:
        raise FormatError(f"{root / shard}: unreadable or incomplete ({err})") from err


def _checked(raw: RawSample, read: Callable[[], T]) -> T:
    """read(), a bad sample becoming a FormatError that names its shard and key."""
    try:
        return read()
    except ValueError as err:
        raise FormatError(f"{raw.shard}: sample {raw.key}: {err}") from err


def contact_sheet(root: Path, out: Path, split: str | None = None, per_class: int = 6) -> dict[str, int]:
    """Write the contact sheet PNG to `out` (atomically); returns samples shown per class."""
    emotions = load_splits(root).emotions
    picked = pick(candidates(root, select_shards(root, split), emotions), per_class, emotions)
    shown = decoded(root, (c for chosen in picked.values() for c in chosen), emotions)
    # Imported here: every extract worker imports the CLI, and matplotlib costs it ~1.6 s.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.6 * per_class + 0.6, 2.3 * len(emotions) + 0.5), dpi=110)
    grid = figure.add_gridspec(2 * len(emotions), per_class, height_ratios=[3, 1] * len(emotions),
                               left=0.06, right=0.99, top=0.93, bottom=0.01, hspace=0.45, wspace=0.08)
    for row, emotion in enumerate(emotions):
        figure.text(0.01, 1 - (row + 0.45) / len(emotions) * 0.92 - 0.07, emotion, fontsize=13,
                    fontweight="bold", rotation=90, va="center")
        if not picked[emotion]:
            axis = figure.add_subplot(grid[2 * row, :])
            axis.axis("off")
            axis.text(0.5, 0.5, f"no {emotion} samples", ha="center", va="center", color="gray")
        for column, candidate in enumerate(picked[emotion]):
            _draw_sample(figure.add_subplot(grid[2 * row, column]), figure.add_subplot(grid[2 * row + 1, column]),
                         shown[candidate.key])
    scope = f"split {split} (all parts)" if split else "all shards"
    figure.suptitle(f"{root.resolve().name}: {scope}: middle frame and waveform, {per_class} samples per class",
                    fontsize=10)
    with atomic_path(out) as temporary:
        figure.savefig(temporary, format="png")
    return {emotion: len(chosen) for emotion, chosen in picked.items()}


def _draw_sample(face_axis, wave_axis, sample: Sample) -> None:
    meta = sample.meta.fields
    if sample.frames is None:  # an audio-only sample
        face_axis.imshow(np.full((FRAME_SIZE, FRAME_SIZE, 3), 235, np.uint8))
        face_axis.text(FRAME_SIZE / 2, FRAME_SIZE / 2, "no video", ha="center", va="center", fontsize=7, color="gray")
    else:
        face_axis.imshow(sample.frames[len(sample.frames) // 2])
        centre = FRAME_SIZE / 2 - 0.5
        face_axis.axhline(centre, color="white", lw=0.5, alpha=0.5)
        face_axis.axvline(centre, color="white", lw=0.5, alpha=0.5)
    face_axis.set_title(f"{sample.key}\n{meta['gender']}  {meta['n_samples'] / SAMPLE_RATE:.1f} s  "
                        f"{meta['n_frames']} fr  {meta['detector']}", fontsize=6)
    face_axis.axis("off")
    if sample.audio is None:  # a video-only sample
        wave_axis.text(0.5, 0, "no audio", ha="center", va="center", fontsize=6, color="gray")
    else:
        envelope = _envelope(sample.audio)
        x = np.linspace(0, 1, len(envelope))
        wave_axis.fill_between(x, envelope[:, 0], envelope[:, 1], color="tab:blue", lw=0)
    wave_axis.set_ylim(-1, 1)  # full scale: quiet and clipped utterances look it
    wave_axis.set_xlim(0, 1)  # the whole utterance, whatever its length (the title gives it)
    wave_axis.axis("off")


def _envelope(audio: np.ndarray, bins: int = 300) -> np.ndarray:
    """(bins, 2) min/max of int16 audio scaled to [-1, 1]: a waveform strip without plotting every sample."""
    chunks = np.array_split(audio.astype(np.float32) / 32768, min(bins, len(audio)))
    return np.array([(chunk.min(), chunk.max()) for chunk in chunks])

"""WORK folder (from `emoprep extract`) -> WebDataset shards in format v2 (shards/README.md).

Three steps, each testable alone: read the manifest into `WorkItem`s; plan the shards and splits
(pure: `plan_shards`, `build_splits`, from the split specs the corpus recipe put in the manifest's
metadata); write every tar under a temporary name (emoprep.atomic's naming) and move the whole
set into place only when all of it was written. Nothing here knows which corpus it shards.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from shardformat import (
    FORMAT_VERSION,
    FPS,
    GENDERS,
    MAX_AUDIO_SAMPLES,
    MAX_FRAMES,
    PARTS,
    SAMPLE_RATE,
    SHARD_NAME,
    encode_frames,
    shard_name,
)

from emoprep.atomic import TEMP_SUFFIX, is_temporary
from emoprep.corpus.base import RandomSplit, SpeakerSplit, SplitSpec
from emoprep.labels import corpus_metadata
from emoprep.work import MANIFEST, MANIFEST_SCHEMA

DEFAULT_MAX_SAMPLES_PER_SHARD = 64



class ShardError(Exception):
    """The WORK folder's content cannot be sharded, or the output cannot be written."""


class NotAWorkFolder(ShardError):
    """--work does not point at the output of `emoprep extract`."""


@dataclass(frozen=True)
class WorkItem:
    """One ok utterance of the WORK manifest: the sample's metadata and where its media lie."""

    utterance_id: str
    corpus: str
    speaker: str
    gender: str | None
    emotion: str | None  # None: an unlabelled clip (to predict, not to train on)
    corpus_label: str | None
    group: str
    label_policy: str
    source: str | None  # the media file the clip came from (its video, else its audio), relative to the corpus root
    start: float
    end: float  # of the extracted window
    region: str
    extra: dict[str, Any]
    n_samples: int
    n_frames: int
    face_ratio: float  # 0 for an audio-only sample (no frame was looked at)
    detector: str
    audio_path: str | None  # relative to WORK; None: a video-only sample (its video had no audio stream)
    frames_path: str | None  # None: an audio-only sample (a clip without video)

    def metadata(self) -> dict:
        """The sample's `<key>.json` object."""
        return {
            "format_version": FORMAT_VERSION, "utterance_id": self.utterance_id, "corpus": self.corpus,
            "speaker": self.speaker, "gender": self.gender, "emotion": self.emotion,
            "corpus_label": self.corpus_label, "group": self.group, "label_policy": self.label_policy,
            "source": self.source, "start": self.start, "end": self.end, "region": self.region,
            "n_samples": self.n_samples, "n_frames": self.n_frames, "face_ratio": self.face_ratio,
            "detector": self.detector, "extra": self.extra,
        }


@dataclass(frozen=True)
class ShardPlan:
    file: str  # "ses1F-impro-train-0000.tar", "1001-all-0000.tar"
    speaker: str
    group: str
    part: str | None  # the random split's part its samples were drawn into; None outside that split
    items: tuple[WorkItem, ...]  # in the order written


@dataclass(frozen=True)
class ShardSetPlan:
    """Everything `write_shards` will write, decided before a byte is written."""

    work: Path
    shards: tuple[ShardPlan, ...]
    splits: dict  # the splits.json object
    samples: int
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ShardSet:
    """What `write_shards` wrote."""

    shards: int
    samples: int
    bytes: int
    splits: tuple[str, ...]
    omitted: dict[str, str]  # split name -> why it could not be formed
    removed: tuple[str, ...]  # stale shard files of an earlier run


# ---------------------------------------------------------------- reading WORK

def read_manifest(work: Path) -> tuple[list[WorkItem], dict[str, Any]]:
    """The ok rows of WORK/manifest.parquet, sorted by utterance id and checked field by field,
    and the corpus's decisions from its metadata (classes, label policy, splits)."""
    path = work / MANIFEST
    if not path.is_file():
        raise NotAWorkFolder(f"{work}: no manifest.parquet here; point --work at the folder `emoprep extract --out` wrote")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise ShardError(f"{path}: not a readable Parquet file ({err}); re-run emoprep extract") from err
    missing = [c for c in MANIFEST_SCHEMA.names if c not in table.column_names]
    try:
        if missing:
            raise ValueError(f"missing columns {', '.join(missing)}")
        corpus = corpus_metadata(table)
    except ValueError as err:
        raise ShardError(f"{path}: {err}; was it written by this emoprep's extract? Running extract again on "
                         "the same WORK rebuilds it (finished utterances are kept)") from err
    root = Path(corpus["root"])
    rows = table.select(MANIFEST_SCHEMA.names).to_pylist()
    items = [_work_item(row, path, corpus["classes"], root) for row in rows if row["status"] == "ok"]
    items.sort(key=lambda item: item.utterance_id)
    for before, after in zip(items, items[1:]):
        if before.utterance_id == after.utterance_id:
            raise ShardError(f"{path}: utterance {after.utterance_id} appears twice")
    return items, corpus


def relative_source(path: str | None, root: Path) -> str | None:
    """A media path as the samples' `source` gives it: relative to the corpus root where it lies under it."""
    if path is None:
        return None
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _work_item(row: dict, manifest: Path, classes: Sequence[str], root: Path) -> WorkItem:
    uid = row["utterance_id"]

    def bad(what: str) -> ShardError:
        return ShardError(f"{manifest}: utterance {uid}: {what}; fix or re-run emoprep extract")

    if not isinstance(uid, str) or not uid or "." in uid or "/" in uid:
        raise ShardError(f"{manifest}: bad utterance id {uid!r} (an id must be non-empty, without '.' or '/')")
    if row["emotion"] not in (*classes, None):
        raise bad(f"emotion {row['emotion']!r} is not one of {', '.join(classes)} or null")
    if row["gender"] not in (*GENDERS, None):
        raise bad(f"gender {row['gender']!r} is not F, M or null")
    video_only = row["audio_path"] is None and not row["n_samples"]
    audio_only = row["frames_path"] is None and not row["n_frames"]
    if video_only and audio_only:
        raise bad("status is ok but it has neither audio nor frames")
    if not video_only and (not row["audio_path"] or not 1 <= (row["n_samples"] or 0) <= MAX_AUDIO_SAMPLES):
        raise bad(f"audio_path {row['audio_path']!r} with n_samples {row['n_samples']}: a sample has both, "
                  f"with 1..{MAX_AUDIO_SAMPLES} samples, or neither (video only)")
    if not audio_only and (not row["frames_path"] or not 1 <= (row["n_frames"] or 0) <= MAX_FRAMES):
        raise bad(f"frames_path {row['frames_path']!r} with n_frames {row['n_frames']}: a sample has both, "
                  f"with 1..{MAX_FRAMES} frames, or neither (audio only)")
    for column in ("start", "face_ratio"):
        if audio_only and column == "face_ratio" and row[column] is None:
            continue
        if not isinstance(row[column], (int, float)) or not math.isfinite(row[column]):
            raise bad(f"{column} {row[column]!r} is not a finite number")
    try:
        extra = json.loads(row["extra"])
    except (TypeError, ValueError) as err:
        raise bad(f"extra is not JSON text ({err})") from err
    start = float(row["start"])
    return WorkItem(
        utterance_id=uid, corpus=row["corpus"], speaker=row["speaker"], gender=row["gender"],
        emotion=row["emotion"], corpus_label=row["corpus_label"], group=row["group"],
        label_policy=row["label_policy"], source=relative_source(row["video_file"] or row["audio_file"], root), start=start,
        end=round(start + (int(row["n_frames"]) / FPS if video_only else int(row["n_samples"]) / SAMPLE_RATE), 6),
        region=row["region"], extra=extra, n_samples=int(row["n_samples"] or 0), n_frames=int(row["n_frames"] or 0),
        face_ratio=float(row["face_ratio"] or 0.0),
        detector=row["detector"], audio_path=row["audio_path"], frames_path=row["frames_path"],
    )


def check_media_present(items: Iterable[WorkItem], work: Path) -> None:
    """Fail before anything is written when the manifest names media that are not there."""
    missing = [
        f"{item.utterance_id}: {path}"
        for item in items
        for path in (item.audio_path, item.frames_path)
        if path is not None and not (work / path).is_file()
    ]
    if missing:
        shown = "; ".join(missing[:5]) + (f"; and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ShardError(f"{work}/manifest.parquet names {len(missing)} missing file(s): {shown}; "
                         "re-run emoprep extract on this WORK folder")


def sample_members(item: WorkItem, work: Path) -> list[tuple[str, bytes]]:
    """The sample's tar members, in format order; the FLAC is copied byte for byte after its header is checked.

    A video-only sample (no audio_path) has no FLAC member, an audio-only one (no frames_path) no
    frames member: the format allows either, with n_samples or n_frames 0.
    """
    members = [(f"{item.utterance_id}.json", json.dumps(item.metadata(), sort_keys=True).encode("utf-8"))]
    if item.audio_path is not None:
        members.append((f"{item.utterance_id}.flac", checked_flac(item, work / item.audio_path)))
    if item.frames_path is None:
        return members
    frames_path = work / item.frames_path
    try:
        frames = np.load(frames_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ShardError(f"{frames_path}: utterance {item.utterance_id}: unreadable frames ({err})") from err
    try:
        jpeg = encode_frames(frames)  # checks the array's type and shape first
    except ValueError as err:
        raise ShardError(f"{frames_path}: utterance {item.utterance_id}: {err}") from err
    if frames.shape[0] != item.n_frames:
        raise ShardError(f"{frames_path}: utterance {item.utterance_id}: {frames.shape[0]} frames, "
                         f"the manifest says {item.n_frames}")
    return members + [(f"{item.utterance_id}.frames.jpg", jpeg)]


def checked_flac(item: WorkItem, audio: Path) -> bytes:
    """WORK's FLAC bytes, once its header says 16-bit mono 16 kHz and the manifest's sample count."""
    try:
        info = sf.info(audio)
    except sf.LibsndfileError as err:
        raise ShardError(f"{audio}: utterance {item.utterance_id}: unreadable audio ({err})") from err
    if (info.format, info.subtype, info.channels, info.samplerate) != ("FLAC", "PCM_16", 1, SAMPLE_RATE):
        raise ShardError(f"{audio}: utterance {item.utterance_id}: audio is {info.format}/{info.subtype}, "
                         f"{info.channels} channel(s), {info.samplerate} Hz; the format needs 16-bit mono 16 kHz FLAC")
    if info.frames != item.n_samples:
        raise ShardError(f"{audio}: utterance {item.utterance_id}: {info.frames} samples, the manifest says {item.n_samples}")
    return audio.read_bytes()


# ---------------------------------------------------------------- planning (pure)

def seeded_order(ids: Iterable[str], seed: int, purpose: str) -> list[str]:
    """A seeded permutation that depends on each id alone, not on which other ids exist.

    Sorting by a hash of (seed, purpose, id) keeps every utterance's place stable when the
    manifest gains or loses others, and is the same on every platform and library version.
    """
    return sorted(ids, key=lambda uid: hashlib.sha256(f"{seed}/{purpose}/{uid}".encode()).digest())


def random_parts(ids: Sequence[str], split: RandomSplit, seed: int) -> dict[str, str]:
    """Utterance id -> "train" | "val" | "test" for a random split (the seed paper's 60/20/20).

    val and test each get round(share x n) (halves rounded up), train the rest, in the seeded order.
    """
    order = seeded_order(ids, seed, split.name)
    n_val = math.floor(split.val_share * len(order) + 0.5)
    n_test = math.floor(split.test_share * len(order) + 0.5)
    n_train = len(order) - n_val - n_test
    return {uid: "train" if i < n_train else "val" if i < n_train + n_val else "test" for i, uid in enumerate(order)}


def plan_shards(items: Sequence[WorkItem], splits: Sequence[SplitSpec], seed: int,
                max_samples_per_shard: int) -> list[ShardPlan]:
    """Group by speaker, group and random part; shuffle within (seeded); cut into near-equal shards.

    A shard holds one speaker and one group (and, for the groups a random split draws from,
    one of its parts), so that every split is a plain list of shards. Shuffling before cutting
    mixes recordings, and so classes, within every shard (where a recording has a dominant
    emotion, an id-sorted shard would be nearly one class). Near-equal cuts (sizes differ by at most one) keep shard lengths even.
    """
    if max_samples_per_shard < 1:
        raise ValueError("max_samples_per_shard must be at least 1")
    randoms = [s for s in splits if isinstance(s, RandomSplit)]
    if len(randoms) > 1:
        raise ShardError(f"a shard set holds at most one random split; the recipe gave {len(randoms)}")
    parts: dict[str, str] = {}
    if randoms:
        drawn = [item.utterance_id for item in items if item.group in randoms[0].groups]
        parts = random_parts(drawn, randoms[0], seed)
    groups: dict[tuple[str, str, str | None], list[WorkItem]] = {}
    for item in items:
        groups.setdefault((item.speaker, item.group, parts.get(item.utterance_id)), []).append(item)
    plans = []
    for speaker, group, part in sorted(groups, key=lambda k: (k[0], k[1], PARTS.index(k[2]) if k[2] else -1)):
        members = {item.utterance_id: item for item in groups[speaker, group, part]}
        order = [members[uid] for uid in seeded_order(members, seed, "shard-order")]
        count = math.ceil(len(order) / max_samples_per_shard)
        bounds = [round(i * len(order) / count) for i in range(count + 1)]
        for n in range(count):
            plans.append(ShardPlan(file=shard_name(speaker, group, part, n), speaker=speaker, group=group,
                                   part=part, items=tuple(order[bounds[n]:bounds[n + 1]])))
    return plans


def build_splits(plans: Sequence[ShardPlan], splits: Sequence[SplitSpec], classes: Sequence[str],
                 seed: int) -> dict:
    """The splits.json object. A split with an empty part is left out and named in "omitted"."""
    formed, omitted = {}, {}
    for split in splits:
        if isinstance(split, RandomSplit):
            chosen = {part: [p for p in plans if p.part == part] for part in PARTS}
        else:
            chosen = {part: [p for p in plans if p.speaker in getattr(split, part)
                             and (split.groups is None or p.group in split.groups)] for part in PARTS}
        empty = [part for part in PARTS if not chosen[part]]
        if empty:
            reason = f"its {' and '.join(empty)} part(s) would be empty"
            if isinstance(split, SpeakerSplit):
                absent = sorted(set().union(*(getattr(split, part) for part in empty)))
                reason += f": no ok utterance of {', '.join(absent)} in WORK"
            else:
                drawn = sum(len(p.items) for p in plans if p.part is not None)
                reason += f": WORK has {drawn} ok utterance(s) of group(s) {', '.join(sorted(split.groups))}"
            omitted[split.name] = reason
            continue
        formed[split.name] = {"description": split.description,
                              **{part: _part(chosen[part], classes) for part in PARTS}}
    return {"format_version": FORMAT_VERSION, "seed": seed,
            "classes": {"emotion": list(classes), "gender": list(GENDERS)},
            "splits": formed, "omitted": omitted}


def _part(plans: Sequence[ShardPlan], classes: Sequence[str]) -> dict:
    counts = {emotion: {gender: 0 for gender in GENDERS} for emotion in classes}
    for plan in plans:
        for item in plan.items:
            if item.emotion is not None and item.gender is not None:
                counts[item.emotion][item.gender] += 1
    return {"shards": [p.file for p in plans], "samples": sum(len(p.items) for p in plans), "counts": counts}


# ---------------------------------------------------------------- writing

def write_tar(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """A deterministic tar: given order, mtime 0, root-less owner, mode 0644, ustar headers; synced to disk."""
    with path.open("wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        f.flush()
        os.fsync(f.fileno())


def plan_shard_set(work: Path, seed: int = 0,
                   max_samples_per_shard: int = DEFAULT_MAX_SAMPLES_PER_SHARD) -> ShardSetPlan:
    """Read and check WORK's manifest and plan every shard and split; nothing is written."""
    items, corpus = read_manifest(work)
    if not items:
        raise ShardError(f"{work}/manifest.parquet has no utterance with status ok: nothing to shard")
    check_media_present(items, work)
    plans = plan_shards(items, corpus["splits"], seed, max_samples_per_shard)
    return ShardSetPlan(work=work, shards=tuple(plans), splits=build_splits(plans, corpus["splits"],
                                                                            corpus["classes"], seed),
                        samples=len(items), classes=corpus["classes"])


def write_shards(plan: ShardSetPlan, out: Path, progress: Callable[[int], None] | None = None) -> ShardSet:
    """Write a planned shard set into OUT. All-or-nothing: on any error OUT is left as it was.

    `progress` is called with the number of samples just written.
    """
    out.mkdir(parents=True, exist_ok=True)
    for leftover in [p for p in out.iterdir() if is_temporary(p)]:
        leftover.unlink()  # from a run that was killed
    written: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        index = []
        for shard in plan.shards:
            temporary = _temporary(out / shard.file)
            written.append((temporary, out / shard.file))
            write_tar(temporary, _shard_members(shard, plan.work, progress))
            with temporary.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            index.append({"file": shard.file, "samples": len(shard.items), "bytes": temporary.stat().st_size,
                          "sha256": digest})
        for name, content in (("index.json", {"format_version": FORMAT_VERSION, "shards": index,
                                              "classes": plan.splits["classes"]}),
                              ("splits.json", plan.splits)):
            temporary = _temporary(out / name)
            written.append((temporary, out / name))
            with temporary.open("w", encoding="utf-8") as f:
                f.write(json.dumps(content, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise
    # Shards first, the two JSON files last: a reader that finds the new index finds its shards.
    for temporary, final in written:
        os.replace(temporary, final)
    keep = {shard.file for shard in plan.shards}
    removed = sorted(p.name for p in out.iterdir() if SHARD_NAME.fullmatch(p.name) and p.name not in keep)
    for name in removed:
        (out / name).unlink()
    return ShardSet(
        shards=len(plan.shards), samples=plan.samples, bytes=sum(entry["bytes"] for entry in index),
        splits=tuple(plan.splits["splits"]), omitted=plan.splits["omitted"], removed=tuple(removed),
    )


def _temporary(path: Path) -> Path:
    """emoprep.atomic's temporary name; the renames wait until the whole set is written."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def _shard_members(shard: ShardPlan, work: Path, progress: Callable[[int], None] | None) -> Iterator[tuple[str, bytes]]:
    for item in shard.items:
        yield from sample_members(item, work)
        if progress is not None:
            progress(1)

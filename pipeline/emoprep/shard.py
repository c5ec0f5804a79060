"""WORK folder (from `emoprep extract`) -> WebDataset shards in format v1 (shards/README.md).

Three steps, each testable alone: read the manifest into `WorkItem`s; plan the shards and splits
(pure: `plan_shards`, `build_splits`); write every tar under a temporary name (emoprep.atomic's
naming) and move the whole set into place only when all of it was written.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

from emoprep.atomic import TEMP_SUFFIX, is_temporary
from emoprep.corpus.iemocap import KEPT_EMOTIONS

FORMAT_VERSION = 1
EMOTIONS = KEPT_EMOTIONS  # the format's classes, in its integer label order
GENDERS = ("F", "M")
SAMPLE_RATE = 16_000
MAX_AUDIO_SAMPLES = 96_000  # 6 s
FRAME_SIZE = 96
# JPEG caps an image side at 65,535 pixels: 682 frames (27 s at 25 fps), far above 6 s of video.
MAX_FRAMES = 65_535 // FRAME_SIZE
MEMBERS = ("json", "flac", "frames.jpg")  # tar member order within a sample
GROUPS = ("impro-train", "impro-val", "impro-test", "script")
PARTS = ("train", "val", "test")
# Quality 95 without chroma subsampling: a round trip above 38 dB PSNR on extract's crops of the
# synthetic corpus (40.9 dB) and on noisier, camera-like crops (38.6 dB); 4:2:0 stays under 38 dB
# even at quality 97 (benchmarks/shard_read.py, shards/README.md).
JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 0  # 4:4:4
DEFAULT_MAX_SAMPLES_PER_SHARD = 64

SHARD_NAME = re.compile(rf"^ses\d[FM]-({'|'.join(GROUPS)})-\d{{4}}\.tar$")

SAMPLE_KEYS = (
    "format_version", "utterance_id", "session", "dialog", "improvised", "gender", "emotion",
    "released_label", "votes", "tie_broken", "label_policy", "speaker_side", "start", "end",
    "n_samples", "n_frames", "face_ratio", "detector",
)
_MANIFEST_COLUMNS = (
    "utterance_id", "session", "dialog", "improvised", "gender", "start", "end", "released_label",
    "emotion", "votes", "tie_broken", "speaker_side", "label_policy", "status", "audio_path",
    "frames_path", "n_samples", "n_frames", "face_ratio", "detector",
)


class ShardError(Exception):
    """The WORK folder's content cannot be sharded, or the output cannot be written."""


class NotAWorkFolder(ShardError):
    """--work does not point at the output of `emoprep extract`."""


@dataclass(frozen=True)
class WorkItem:
    """One ok utterance of the WORK manifest: the sample's metadata and where its media lie."""

    utterance_id: str
    session: int
    dialog: str
    improvised: bool
    gender: str
    emotion: str
    released_label: str
    votes_json: str  # the manifest's JSON text, category -> count
    tie_broken: bool
    label_policy: str
    speaker_side: str
    start: float
    end: float
    n_samples: int
    n_frames: int
    face_ratio: float
    detector: str
    audio_path: str  # relative to WORK
    frames_path: str

    @property
    def speaker(self) -> str:
        return f"ses{self.session}{self.gender}"

    def metadata(self) -> dict:
        """The sample's `<key>.json` object."""
        return {
            "format_version": FORMAT_VERSION,
            "utterance_id": self.utterance_id,
            "session": self.session,
            "dialog": self.dialog,
            "improvised": self.improvised,
            "gender": self.gender,
            "emotion": self.emotion,
            "released_label": self.released_label,
            "votes": json.loads(self.votes_json),
            "tie_broken": self.tie_broken,
            "label_policy": self.label_policy,
            "speaker_side": self.speaker_side,
            "start": self.start,
            "end": self.end,
            "n_samples": self.n_samples,
            "n_frames": self.n_frames,
            "face_ratio": self.face_ratio,
            "detector": self.detector,
        }


@dataclass(frozen=True)
class ShardPlan:
    file: str  # "ses1F-impro-train-0000.tar"
    session: int
    gender: str
    group: str
    items: tuple[WorkItem, ...]  # in the order written


@dataclass(frozen=True)
class ShardSetPlan:
    """Everything `write_shards` will write, decided before a byte is written."""

    work: Path
    shards: tuple[ShardPlan, ...]
    splits: dict  # the splits.json object
    samples: int


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

def read_manifest(work: Path) -> list[WorkItem]:
    """The ok rows of WORK/manifest.parquet, sorted by utterance id, checked field by field."""
    path = work / "manifest.parquet"
    if not path.is_file():
        raise NotAWorkFolder(f"{work}: no manifest.parquet here; point --work at the folder `emoprep extract --out` wrote")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise ShardError(f"{path}: not a readable Parquet file ({err}); re-run emoprep extract") from err
    missing = [c for c in _MANIFEST_COLUMNS if c not in table.column_names]
    if missing:
        raise ShardError(f"{path}: missing columns {', '.join(missing)}; was it written by emoprep extract?")
    rows = table.select(list(_MANIFEST_COLUMNS)).to_pylist()
    items = [_work_item(row, path) for row in rows if row["status"] == "ok"]
    items.sort(key=lambda item: item.utterance_id)
    for before, after in zip(items, items[1:]):
        if before.utterance_id == after.utterance_id:
            raise ShardError(f"{path}: utterance {after.utterance_id} appears twice")
    return items


def _work_item(row: dict, manifest: Path) -> WorkItem:
    uid = row["utterance_id"]

    def bad(what: str) -> ShardError:
        return ShardError(f"{manifest}: utterance {uid}: {what}; fix or re-run emoprep extract")

    if not isinstance(uid, str) or not uid or "." in uid or "/" in uid:
        raise ShardError(f"{manifest}: bad utterance id {uid!r} (an id must be non-empty, without '.' or '/')")
    if row["emotion"] not in EMOTIONS:
        raise bad(f"emotion {row['emotion']!r} is not one of {', '.join(EMOTIONS)}")
    if row["gender"] not in GENDERS:
        raise bad(f"gender {row['gender']!r} is not F or M")
    if not isinstance(row["session"], int) or not 1 <= row["session"] <= 9:
        raise bad(f"session {row['session']!r} is not a number 1..9")
    if not row["audio_path"] or not row["frames_path"]:
        raise bad("status is ok but audio_path or frames_path is empty")
    if not 1 <= (row["n_samples"] or 0) <= MAX_AUDIO_SAMPLES:
        raise bad(f"n_samples {row['n_samples']} is outside 1..{MAX_AUDIO_SAMPLES}")
    if not 1 <= (row["n_frames"] or 0) <= MAX_FRAMES:
        raise bad(f"n_frames {row['n_frames']} is outside 1..{MAX_FRAMES}")
    for column in ("start", "end", "face_ratio"):
        if not isinstance(row[column], (int, float)) or not math.isfinite(row[column]):
            raise bad(f"{column} {row[column]!r} is not a finite number")
    try:
        votes = json.loads(row["votes"])
    except (TypeError, ValueError) as err:
        raise bad(f"votes is not JSON text ({err})") from err
    if not isinstance(votes, dict):
        raise bad("votes is not a JSON object")
    return WorkItem(
        utterance_id=uid, session=row["session"], dialog=row["dialog"], improvised=bool(row["improvised"]),
        gender=row["gender"], emotion=row["emotion"], released_label=row["released_label"],
        votes_json=row["votes"], tie_broken=bool(row["tie_broken"]), label_policy=row["label_policy"],
        speaker_side=row["speaker_side"], start=float(row["start"]), end=float(row["end"]),
        n_samples=int(row["n_samples"]), n_frames=int(row["n_frames"]), face_ratio=float(row["face_ratio"]),
        detector=row["detector"], audio_path=row["audio_path"], frames_path=row["frames_path"],
    )


def check_media_present(items: Iterable[WorkItem], work: Path) -> None:
    """Fail before anything is written when the manifest names media that are not there."""
    missing = [
        f"{item.utterance_id}: {path}"
        for item in items
        for path in (item.audio_path, item.frames_path)
        if not (work / path).is_file()
    ]
    if missing:
        shown = "; ".join(missing[:5]) + (f"; and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ShardError(f"{work}/manifest.parquet names {len(missing)} missing file(s): {shown}; "
                         "re-run emoprep extract on this WORK folder")


def sample_members(item: WorkItem, work: Path) -> list[tuple[str, bytes]]:
    """The sample's tar members, in format order; the FLAC is copied byte for byte after its header is checked."""
    audio = work / item.audio_path
    try:
        info = sf.info(audio)
    except sf.LibsndfileError as err:
        raise ShardError(f"{audio}: utterance {item.utterance_id}: unreadable audio ({err})") from err
    if (info.format, info.subtype, info.channels, info.samplerate) != ("FLAC", "PCM_16", 1, SAMPLE_RATE):
        raise ShardError(f"{audio}: utterance {item.utterance_id}: audio is {info.format}/{info.subtype}, "
                         f"{info.channels} channel(s), {info.samplerate} Hz; the format needs 16-bit mono 16 kHz FLAC")
    if info.frames != item.n_samples:
        raise ShardError(f"{audio}: utterance {item.utterance_id}: {info.frames} samples, the manifest says {item.n_samples}")
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
    meta = json.dumps(item.metadata(), sort_keys=True).encode("utf-8")
    return [
        (f"{item.utterance_id}.json", meta),
        (f"{item.utterance_id}.flac", audio.read_bytes()),
        (f"{item.utterance_id}.frames.jpg", jpeg),
    ]


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


# ---------------------------------------------------------------- planning (pure)

def seeded_order(ids: Iterable[str], seed: int, purpose: str) -> list[str]:
    """A seeded permutation that depends on each id alone, not on which other ids exist.

    Sorting by a hash of (seed, purpose, id) keeps every utterance's place stable when the
    manifest gains or loses others, and is the same on every platform and library version.
    """
    return sorted(ids, key=lambda uid: hashlib.sha256(f"{seed}/{purpose}/{uid}".encode()).digest())


def paper_parts(improvised_ids: Sequence[str], seed: int) -> dict[str, str]:
    """Improvised utterance id -> "train" | "val" | "test": the seed paper's random 60/20/20.

    val and test each get round(20 %) (halves rounded up), train the rest.
    """
    order = seeded_order(improvised_ids, seed, "paper")
    fifth = math.floor(0.2 * len(order) + 0.5)
    n_train = len(order) - 2 * fifth
    return {uid: "train" if i < n_train else "val" if i < n_train + fifth else "test" for i, uid in enumerate(order)}


def plan_shards(items: Sequence[WorkItem], seed: int, max_samples_per_shard: int) -> list[ShardPlan]:
    """Group by speaker and group, shuffle within a group (seeded), cut into near-equal shards.

    Shuffling before cutting mixes dialogs, and so classes, within every shard: IEMOCAP's
    improvised dialogs each have a dominant emotion, and an id-sorted shard would be nearly
    one class. Near-equal cuts (sizes differ by at most one) keep shard lengths even.
    """
    if max_samples_per_shard < 1:
        raise ValueError("max_samples_per_shard must be at least 1")
    parts = paper_parts([item.utterance_id for item in items if item.improvised], seed)
    groups: dict[tuple[int, str, str], list[WorkItem]] = {}
    for item in items:
        group = f"impro-{parts[item.utterance_id]}" if item.improvised else "script"
        groups.setdefault((item.session, item.gender, group), []).append(item)
    plans = []
    for session, gender, group in sorted(groups, key=lambda k: (k[0], k[1], GROUPS.index(k[2]))):
        members = {item.utterance_id: item for item in groups[session, gender, group]}
        order = [members[uid] for uid in seeded_order(members, seed, "shard-order")]
        count = math.ceil(len(order) / max_samples_per_shard)
        bounds = [round(i * len(order) / count) for i in range(count + 1)]
        for n in range(count):
            plans.append(ShardPlan(
                file=f"ses{session}{gender}-{group}-{n:04d}.tar", session=session, gender=gender, group=group,
                items=tuple(order[bounds[n]:bounds[n + 1]]),
            ))
    return plans


def build_splits(plans: Sequence[ShardPlan], seed: int) -> dict:
    """The splits.json object. The paper split must have three non-empty parts; a loso-k fold
    that cannot be formed (session absent, or a part empty) is left out and named in "omitted"."""
    paper = {part: [p for p in plans if p.group == f"impro-{part}"] for part in PARTS}
    empty = [part for part in PARTS if not paper[part]]
    if empty:
        improvised = sum(len(p.items) for p in plans if p.group != "script")
        raise ShardError(f"the paper split's {' and '.join(empty)} part(s) would be empty: WORK has "
                         f"{improvised} ok improvised utterance(s), at least 3 are needed")
    splits = {"paper": {
        "description": (f"The seed paper's protocol: improvised dialogs only, a random 60/20/20 split of "
                        f"utterances (seed {seed}). Speakers appear in every part: not speaker independent."),
        **{part: _part(paper[part]) for part in PARTS},
    }}
    omitted = {}
    sessions = sorted({p.session for p in plans})
    for k in range(1, 6):
        fold = {
            "train": [p for p in plans if p.session != k],
            "val": [p for p in plans if p.session == k and p.gender == "F"],
            "test": [p for p in plans if p.session == k and p.gender == "M"],
        }
        if k not in sessions:
            omitted[f"loso-{k}"] = f"session {k} has no ok utterance in WORK"
        elif not all(fold.values()):
            empty = [part for part in PARTS if not fold[part]]
            omitted[f"loso-{k}"] = f"its {' and '.join(empty)} part(s) would be empty"
        else:
            others = ", ".join(str(s) for s in sessions if s != k)
            splits[f"loso-{k}"] = {
                "description": (f"Session {k} held out: validate on ses{k}F, test on ses{k}M (all their dialogs); "
                                f"train on sessions {others} (improvised and scripted). Speaker independent."),
                **{part: _part(fold[part]) for part in PARTS},
            }
    return {"format_version": FORMAT_VERSION, "seed": seed, "splits": splits, "omitted": omitted}


def _part(plans: Sequence[ShardPlan]) -> dict:
    counts = {emotion: {gender: 0 for gender in GENDERS} for emotion in EMOTIONS}
    for plan in plans:
        for item in plan.items:
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
    items = read_manifest(work)
    if not items:
        raise ShardError(f"{work}/manifest.parquet has no utterance with status ok: nothing to shard")
    check_media_present(items, work)
    plans = plan_shards(items, seed, max_samples_per_shard)
    return ShardSetPlan(work=work, shards=tuple(plans), splits=build_splits(plans, seed), samples=len(items))


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
        for name, content in (("index.json", {"format_version": FORMAT_VERSION, "shards": index}),
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
    removed = sorted(p.name for p in out.iterdir() if SHARD_NAME.match(p.name) and p.name not in keep)
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

"""Small shard folders in the current format, v2 (shards/README.md; v1 on request), written with tarfile,
soundfile and PIL only.

Written independently of emoprep, from the contract alone, so emotrain's tests also check that
the contract is enough to feed emotrain. The samples carry a learnable signal:

- audio: a tone whose pitch says the emotion plus a tone whose pitch says the gender, in noise;
- frames: the top half's colour says the emotion, the bottom half's brightness the gender.

Every shard holds one speaker (`ses<S><G>`) as the contract requires, so gender is constant
within a shard.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

EMOTIONS = ("ang", "hap", "neu", "sad")
GENDERS = ("F", "M")
RATE = 16_000
FPS = 25
SAMPLES_PER_FRAME = RATE // FPS
EMOTION_HZ = (300.0, 600.0, 1200.0, 2400.0)
GENDER_HZ = (3500.0, 900.0)
EMOTION_RGB = ((220, 40, 40), (240, 200, 40), (128, 128, 128), (40, 60, 220))
GENDER_GREY = (60, 200)


@dataclass(frozen=True)
class FakeUtterance:
    key: str
    emotion: str
    gender: str
    n_samples: int
    n_frames: int


def utterance_json(utt: FakeUtterance, *, format_version: int = 2) -> dict:
    """The `<key>.json` object of the contract, with plausible values for the fields emotrain ignores."""
    session = int(utt.key[3:5])
    dialog = utt.key.rsplit("_", 1)[0]
    common = {"format_version": format_version, "utterance_id": utt.key, "gender": utt.gender, "emotion": utt.emotion,
              "label_policy": "paper", "start": 0.0, "end": utt.n_samples / RATE, "n_samples": utt.n_samples,
              "n_frames": utt.n_frames, "face_ratio": 1.0, "detector": "fixed"}
    if format_version == 1:
        return common | {"session": session, "dialog": dialog, "improvised": True, "released_label": utt.emotion,
                         "votes": {utt.emotion: 3}, "tie_broken": False, "speaker_side": "left"}
    return common | {"corpus": "iemocap", "speaker": f"ses{session}{utt.gender}", "corpus_label": utt.emotion,
                     "group": "impro", "source": f"Session{session}/{dialog}.avi", "region": "left",
                     "extra": {"dialog": dialog}}


def audio_for(utt: FakeUtterance, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(utt.n_samples) / RATE
    e_hz = EMOTION_HZ[EMOTIONS.index(utt.emotion)]
    g_hz = GENDER_HZ[GENDERS.index(utt.gender)]
    wave = 0.4 * np.sin(2 * np.pi * e_hz * t) + 0.4 * np.sin(2 * np.pi * g_hz * t)
    wave += 0.05 * rng.standard_normal(utt.n_samples)
    return np.clip(wave * 20_000, -32768, 32767).astype(np.int16)


def frames_for(utt: FakeUtterance, rng: np.random.Generator) -> np.ndarray:
    """(n_frames, 96, 96, 3) uint8."""
    frames = np.empty((utt.n_frames, 96, 96, 3), dtype=np.float32)
    frames[:, :48] = EMOTION_RGB[EMOTIONS.index(utt.emotion)]
    frames[:, 48:] = GENDER_GREY[GENDERS.index(utt.gender)]
    frames += rng.normal(0, 8, frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def encode_flac(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def encode_frames(frames: np.ndarray) -> bytes:
    """Frames stacked vertically into one JPEG of width 96, as the contract says."""
    buf = io.BytesIO()
    Image.fromarray(frames.reshape(-1, 96, 3)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def sample_members(utt: FakeUtterance, rng: np.random.Generator, format_version: int = 2) -> dict[str, bytes]:
    """Member suffix -> bytes, in the contract's order."""
    return {
        "json": json.dumps(utterance_json(utt, format_version=format_version)).encode(),
        "flac": encode_flac(audio_for(utt, rng)),
        "frames.jpg": encode_frames(frames_for(utt, rng)),
    }


def write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    """Members grouped by key, mtime 0, uid/gid 0, empty owner names, mode 0644 (the contract)."""
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class FakeShards:
    root: Path
    keys: dict[str, list[str]]  # part -> keys, in shard order
    shards: dict[str, list[str]]  # part -> shard file names


def make_shards(
    root: Path,
    parts: dict[str, list[int]],
    *,
    split: str = "paper",
    seconds: tuple[float, float] = (0.4, 0.8),
    seed: int = 0,
    format_version: int = 2,
) -> FakeShards:
    """Write one split whose part P has len(parts[P]) shards holding parts[P][i] samples each.

    Consecutive shards alternate speakers F, M across sessions; emotions cycle through the
    classes so every shard of two or more samples has two classes at least.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keys: dict[str, list[str]] = {}
    shard_names: dict[str, list[str]] = {}
    split_parts = {}
    index = []
    speaker = 0
    for part, sizes in parts.items():
        keys[part], shard_names[part] = [], []
        counts = {e: {g: 0 for g in GENDERS} for e in EMOTIONS}
        for shard_no, size in enumerate(sizes):
            session, gender = speaker // 2 % 5 + 1, GENDERS[speaker % 2]
            speaker += 1
            # A part outside train/val/test (a test's own grouping) goes into the group: names stay the format's.
            middle = f"impro-{part}" if part in ("train", "val", "test") else f"impro{part.lower()}"
            name = f"ses{session}{gender}-{middle}-{shard_no:04d}.tar"
            samples = []
            for i in range(size):
                n_samples = int(rng.uniform(*seconds) * RATE)
                # The video may be a frame longer or shorter than the audio (the alignment rule).
                n_frames = max(1, math.ceil(n_samples / SAMPLES_PER_FRAME) + int(rng.integers(-1, 2)))
                utt = FakeUtterance(
                    key=f"Ses{session:02d}{gender}_impro{shard_no + 1:02d}{part[:2]}_{gender}{i:03d}",
                    emotion=EMOTIONS[(i + shard_no) % 4], gender=gender,
                    n_samples=n_samples, n_frames=n_frames,
                )
                counts[utt.emotion][gender] += 1
                samples.append((utt.key, sample_members(utt, rng, format_version)))
                keys[part].append(utt.key)
            write_tar(root / name, samples)
            shard_names[part].append(name)
            index.append({"file": name, "samples": size, "bytes": (root / name).stat().st_size,
                          "sha256": ""})
        split_parts[part] = {"shards": shard_names[part], "samples": sum(sizes), "counts": counts}
    classes = {} if format_version == 1 else {"classes": {"emotion": list(EMOTIONS), "gender": list(GENDERS)}}
    splits = {"format_version": format_version, "seed": seed, **classes,
              "splits": {split: {"description": "fake shards for tests", **split_parts}}}
    (root / "splits.json").write_text(json.dumps(splits, indent=1))
    (root / "index.json").write_text(json.dumps({"format_version": format_version, "shards": index, **classes},
                                                indent=1))
    return FakeShards(root=root, keys=keys, shards=shard_names)


def rewrite_member(shard: Path, key: str, suffix: str, data: bytes) -> None:
    """Replace one member's bytes in a shard (to make a corrupt sample)."""
    with tarfile.open(shard) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    samples: dict[str, dict[str, bytes]] = {}
    for name, blob in members:
        k, s = name.split(".", 1)
        samples.setdefault(k, {})[s] = data if (k, s) == (key, suffix) else blob
    write_tar(shard, list(samples.items()))

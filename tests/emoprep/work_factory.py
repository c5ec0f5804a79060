"""Hand-made WORK folders in the layout `emoprep extract` writes, for shard/verify/inspect tests.

Faces are crops of scikit-image's astronaut photograph (shipped in its wheel) that drift a few
pixels from frame to frame, with sensor-like noise: close enough to real face crops for JPEG
quality measurements, and centred so a contact sheet looks like what extract produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

EMOTIONS = ("ang", "hap", "neu", "sad")
_FACE_BOX = (150, 35, 300, 185)  # left, top, right, bottom of the astronaut's face


@dataclass(frozen=True)
class FakeUtterance:
    utterance_id: str
    emotion: str
    n_frames: int
    n_samples: int
    status: str = "ok"
    audio: bool = True  # False: a video-only utterance (its video had no audio stream)


def face_frames(n_frames: int, seed: int, mirror: bool = False) -> np.ndarray:
    """(n_frames, 96, 96, 3) uint8 face crops drifting a few pixels, with Gaussian noise (sigma 2)."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    frames = np.empty((n_frames, 96, 96, 3), np.uint8)
    for i in range(n_frames):
        dx = int(round(4 * np.sin(phase + i / 6)))
        dy = int(round(3 * np.cos(phase + i / 9)))
        left, top, right, bottom = _FACE_BOX
        crop = photo.crop((left + dx, top + dy, right + dx, bottom + dy)).resize((96, 96), Image.BOX)
        noisy = np.asarray(crop, np.float32) + rng.normal(0, 2, (96, 96, 3))
        frames[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if mirror:
        frames = frames[:, :, ::-1].copy()
    return frames


def waveform(n_samples: int, seed: int) -> np.ndarray:
    """int16 mono: a gliding tone under noise, amplitude-modulated like syllables."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16_000
    pitch = rng.uniform(110, 240)
    tone = np.sin(2 * np.pi * pitch * t * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t)))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    signal = 0.3 * tone * envelope + 0.02 * rng.standard_normal(n_samples)
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)


def default_utterances(sessions: tuple[int, ...] = (1, 2, 3), per_dialog: int = 6,
                       n_frames: int = 4) -> list[FakeUtterance]:
    """Per session one improvised and one scripted dialog with `per_dialog` utterances each,
    speakers alternating F/M, emotions cycling; audio length matches n_frames at 25 fps."""
    utterances = []
    count = 0
    for session in sessions:
        for dialog_name in (f"Ses{session:02d}F_impro01", f"Ses{session:02d}M_script01_1"):
            for j in range(per_dialog):
                speaker = "FM"[j % 2]
                frames = n_frames + count % 3
                utterances.append(FakeUtterance(
                    utterance_id=f"{dialog_name}_{speaker}{j:03d}",
                    emotion=EMOTIONS[(count // 2) % 4],
                    n_frames=frames,
                    n_samples=frames * 640 - (count * 37) % 600,
                ))
                count += 1
    return utterances


def make_work(root: Path, utterances: list[FakeUtterance] | None = None) -> Path:
    """Write WORK/manifest.parquet (with extract's own writer), WORK/audio/<speaker>/<utt>.flac and
    WORK/frames/<speaker>/<utt>.npy, for IEMOCAP-style ids."""
    from emoprep.corpus import iemocap
    from emoprep.corpus.base import ClipRecord, CorpusClips
    from emoprep.labels import labels_table
    from emoprep.work import Record, work_paths, write_manifest

    utterances = default_utterances() if utterances is None else utterances
    root.mkdir(parents=True, exist_ok=True)
    clips, records = [], {}
    for seed, utt in enumerate(sorted(utterances, key=lambda u: u.utterance_id)):
        dialog, _, speaker_code = utt.utterance_id.rpartition("_")
        session, gender = int(dialog[3:5]), speaker_code[0]
        speaker = iemocap.speaker_of(session, gender)
        side = "left" if gender == dialog[5] else "right"
        ok = utt.status == "ok"
        paths = work_paths(utt.utterance_id, speaker)
        if ok:
            (root / paths["audio"]).parent.mkdir(parents=True, exist_ok=True)
            (root / paths["frames"]).parent.mkdir(parents=True, exist_ok=True)
            if utt.audio:
                sf.write(root / paths["audio"], waveform(utt.n_samples, seed), 16_000, subtype="PCM_16",
                         format="FLAC")
            np.save(root / paths["frames"], face_frames(utt.n_frames, seed, mirror=gender == "M"))
        start = round(1.5 * seed, 4)
        clips.append(ClipRecord(
            clip_id=utt.utterance_id, corpus="iemocap", speaker=speaker, gender=gender, emotion=utt.emotion,
            corpus_label=utt.emotion, group="impro" if "_impro" in dialog else "script",
            audio_path=f"/corpus/{utt.utterance_id}.wav", audio_window=None,
            video_path=f"/corpus/{dialog}.avi", start=start, end=round(start + utt.n_samples / 16_000, 4),
            region=side, crop="paper",
            extra={"session": session, "dialog": dialog, "improvised": "_impro" in dialog,
                   "released_label": utt.emotion, "votes": {utt.emotion: 2, "fru": 1}, "tie_broken": False,
                   "speaker_side": side},
        ))
        records[utt.utterance_id] = Record(
            utt.utterance_id, utt.status, None if ok else "video ended: before the utterance", None,
            paths["audio"] if ok and utt.audio else None, paths["frames"] if ok else None,
            (utt.n_samples if utt.audio else 0) if ok else None, utt.n_frames if ok else None, 0.9 if ok else None, "haar", 0.25,
        )
    sessions = sorted({int(u.utterance_id[3:5]) for u in utterances})
    corpus = CorpusClips(corpus="iemocap", root="/corpus", clips=tuple(clips), problems=(),
                         classes=EMOTIONS, label_policy={"name": "paper", "seed": 0},
                         splits=iemocap.splits(sessions))
    write_manifest(root, labels_table(corpus, clips), records)
    return root


def make_shards(work: Path, out: Path, seed: int = 0, max_samples_per_shard: int = 4) -> Path:
    """Shard a WORK folder with the library (small shards so every group has several)."""
    from emoprep.shard import plan_shard_set, write_shards

    write_shards(plan_shard_set(work, seed=seed, max_samples_per_shard=max_samples_per_shard), out)
    return out

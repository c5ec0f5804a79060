"""RAVDESS speech (audio-only release) for the real-speech benchmarks: labels, EmoBox's folds, decoded audio.

Read straight from the corpus's wavs (`Actor_NN/03-01-EE-II-SS-RR-AA.wav`), not from shards:
these benchmarks measure the model and the baseline, not the preprocessing. Nothing here is
a copy of the corpus; the 16 kHz decode is cached outside the repository (a .npz in /tmp).

- Emotion EE: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
  08 surprised (EMOTIONS, in that order); the shared four are ang, hap, neu, sad.
- Gender: odd actors are male, even actors female (the corpus's convention).
- Folds: EmoBox's six speaker-independent folds, by test actors (docs/corpora/.. and
  /work/shared/corpora-format.md); every other actor trains. Settings are chosen on
  VALIDATION actors taken from a fold's training actors (validation_actors), never on its test actors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
EMOTIONS = ("neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur")
SHARED_FOUR = ("ang", "hap", "neu", "sad")
GENDERS = ("F", "M")  # shardformat's order: label 0 female, 1 male
FOLD_TEST_ACTORS = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "ravdess16k.npz"


@dataclass(frozen=True)
class Corpus:
    """Every clip's name, actor, labels and 16 kHz float32 audio (in [-1, 1], as decoded)."""

    names: tuple[str, ...]
    actor: np.ndarray  # (N,) int
    emotion: np.ndarray  # (N,) index into EMOTIONS
    gender: np.ndarray  # (N,) index into GENDERS
    audio: tuple[np.ndarray, ...]


def parse_name(name: str) -> tuple[int, int, int]:
    """(actor, emotion index, gender index) of `03-01-EE-II-SS-RR-AA.wav`."""
    fields = Path(name).stem.split("-")
    if len(fields) != 7 or fields[:2] != ["03", "01"]:
        raise ValueError(f"{name}: not a RAVDESS audio-only speech file (03-01-EE-II-SS-RR-AA.wav)")
    actor = int(fields[6])
    return actor, int(fields[2]) - 1, GENDERS.index("M" if actor % 2 else "F")


def decode(path: Path) -> np.ndarray:
    """Mono mixdown (5 files are stereo) and a polyphase 48 -> 16 kHz resample."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != 48000:
        raise ValueError(f"{path}: {rate} Hz, expected 48000 (use the audio_speech_actors_01-24 copy only)")
    return resample_poly(audio.mean(axis=1), 1, 3).astype(np.float32)


def load_corpus(wavs: Path, cache: Path = DEFAULT_CACHE) -> Corpus:
    """All clips under `wavs` (Actor_NN folders), decoded once and cached in `cache`."""
    if not cache.is_file():
        paths = sorted(Path(wavs).glob("Actor_*/*.wav"))
        if not paths:
            raise FileNotFoundError(f"no Actor_*/*.wav under {wavs}")
        decoded = [decode(p) for p in paths]
        np.savez(cache, names=np.array([p.name for p in paths]), lengths=np.array([len(a) for a in decoded]),
                 audio=np.concatenate(decoded))
    stored = np.load(cache)
    names = tuple(str(n) for n in stored["names"])
    audio = tuple(np.split(stored["audio"], np.cumsum(stored["lengths"])[:-1]))
    actor, emotion, gender = (np.array(column) for column in zip(*(parse_name(n) for n in names)))
    return Corpus(names, actor, emotion, gender, audio)


def validation_actors(fold: int) -> tuple[int, ...]:
    """Four of the fold's training actors, two male and two female, drawn with seed = fold: where settings are chosen."""
    train = [a for a in range(1, 25) if a not in FOLD_TEST_ACTORS[fold]]
    rng = np.random.default_rng(fold)
    male = rng.choice([a for a in train if a % 2], 2, replace=False)
    female = rng.choice([a for a in train if a % 2 == 0], 2, replace=False)
    return tuple(sorted(int(a) for a in (*male, *female)))


def fold_parts(corpus: Corpus, fold: int, validate: bool) -> dict[str, np.ndarray]:
    """Clip indices of "train" and "test" (the fold's test actors), or, with validate, of "train" and "val"
    (validation actors held out of the training actors; the test actors are not used at all)."""
    test = np.isin(corpus.actor, FOLD_TEST_ACTORS[fold])
    if not validate:
        return {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}
    val = np.isin(corpus.actor, validation_actors(fold))
    return {"train": np.flatnonzero(~test & ~val), "val": np.flatnonzero(val)}

"""Whole sound files as audio-only clips: what the recipes of speech corpora share.

EmoDB and a labelled audio folder (and any later speech corpus) read each file's header
once (emoprep.media.headers.probe_audio), never its samples. A file that cannot be a
clip (missing, zero bytes, not audio, cut short) becomes a Problem and is left out. One
longer than a sample may be (MAX_SECONDS, the shard format's cap) is kept with its
first MAX_SECONDS, and a Problem line says so: a sample holds no more, and a label given
to a whole long file is no more true of one later window than of the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shardformat import MAX_AUDIO_SAMPLES, SAMPLE_RATE

from emoprep.corpus.base import ClipRecord, Problem
from emoprep.media.audio import AudioError
from emoprep.media.headers import probe_audio

MAX_SECONDS = MAX_AUDIO_SAMPLES / SAMPLE_RATE  # 6 s


def clip_end(path: Path, clip_id: str, problems: list[Problem]) -> float | None:
    """How much of `path` the clip holds (its length, at most MAX_SECONDS); None, with a Problem, for no clip."""
    try:
        seconds = probe_audio(path).seconds
    except AudioError as error:
        problems.append(Problem(str(path), None, clip_id, f"{error}: left out"))
        return None
    if seconds > MAX_SECONDS:
        problems.append(Problem(str(path), None, clip_id,
                                f"{seconds:.1f} s long, more than the {MAX_SECONDS:g} s a sample holds: "
                                f"kept, cut to its first {MAX_SECONDS:g} s"))
        return MAX_SECONDS
    return round(seconds, 6)


def audio_clip(clip_id: str, corpus: str, speaker: str, gender: str | None, emotion: str | None,
               corpus_label: str | None, path: Path, end: float, extra: Mapping[str, Any]) -> ClipRecord:
    """The record of [0, end) s of a sound file: no video (region and crop are unused)."""
    return ClipRecord(
        clip_id=clip_id,
        corpus=corpus,
        speaker=speaker,
        gender=gender,
        emotion=emotion,
        corpus_label=corpus_label,
        group="all",
        audio_path=str(path),
        audio_window=None,
        video_path=None,
        start=0.0,
        end=end,
        region="full",
        crop="face",
        extra=extra,
    )

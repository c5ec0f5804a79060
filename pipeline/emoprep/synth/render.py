"""Writing a synthetic IEMOCAP corpus to disk, resumably (emoprep.synth.output has the file writers).

A dialog's AVI is written last, so an existing AVI means the whole dialog is
complete: an interrupted run, started again with the same parameters, skips
finished dialogs and redoes the rest.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emoprep.corpus.iemocap import KEPT_EMOTIONS
from emoprep.synth.annotations import CORPUS_README, evaluation_text, transcription_text
from emoprep.synth.face import FRAME_RATE, HEIGHT, WIDTH, dialog_frames
from emoprep.synth.output import (
    BITEXACT,
    claim,
    encode_video,
    remove_leftovers,
    write_pending,
    write_text,
    write_wav,
)
from emoprep.synth.plan import SAMPLE_RATE, SynthDialog, SynthParams, plan_corpus
from emoprep.synth.voice import render_dialog_audio

CORPUS_FOLDER = "IEMOCAP_full_release"
# Bump when the same parameters would give different files, so old output is not resumed into new.
GENERATOR_VERSION = 1
VIDEO_QUALITY = 3  # mpeg4 -q:v: 1 best .. 31 worst; 3 keeps faces sharp for the detectors


@dataclass(frozen=True)
class SynthSummary:
    out: Path  # the folder holding CORPUS_FOLDER (what --iemocap takes)
    params: SynthParams
    dialogs: int
    written: int  # dialogs written by this run; the others were complete already
    utterances: int
    kept_majority: int  # utterances whose external majority is ang, hap, neu or sad
    released: tuple[tuple[str, int], ...]  # released label -> utterances
    dialog_seconds: float  # length of all dialog audio
    utterance_seconds: float  # length of all labelled utterances
    wall_seconds: float


@dataclass(frozen=True)
class DialogPaths:
    avi: Path
    wav: Path
    evaluation: Path
    transcription: Path
    sentences: Path  # folder of the sentence wavs

    @classmethod
    def of(cls, root: Path, dialog: SynthDialog) -> DialogPaths:
        session = root / f"Session{dialog.session}"
        return cls(
            avi=session / "dialog" / "avi" / "DivX" / f"{dialog.name}.avi",
            wav=session / "dialog" / "wav" / f"{dialog.name}.wav",
            evaluation=session / "dialog" / "EmoEvaluation" / f"{dialog.name}.txt",
            transcription=session / "dialog" / "transcriptions" / f"{dialog.name}.txt",
            sentences=session / "sentences" / "wav" / dialog.name,
        )


def _write_wav(path: Path, samples: np.ndarray) -> None:
    write_wav(path, samples, SAMPLE_RATE)


def _encode_avi(path: Path, audio: Path, frames: Iterable[memoryview], name: str) -> None:
    """DivX-tagged MPEG-4 video at 29.97 fps from raw I420 frames on stdin, with the dialog wav as its audio."""
    encode_video(path, frames, (WIDTH, HEIGHT), FRAME_RATE, audio, name, format="avi", vcodec="mpeg4",
                 vtag="DIVX", acodec="pcm_s16le", **BITEXACT, **{"q:v": VIDEO_QUALITY})


def write_dialog(root: Path, dialog: SynthDialog) -> None:
    """All files of one dialog; the AVI last (its presence marks the dialog complete)."""
    paths = DialogPaths.of(root, dialog)
    sentences = [paths.sentences / f"{u.utterance_id}.wav" for u in dialog.utterances]
    remove_leftovers([*sentences, paths.wav, paths.transcription, paths.evaluation, paths.avi])
    audio = render_dialog_audio(dialog)
    for utterance, path in zip(dialog.utterances, sentences):
        _write_wav(path, audio[utterance.start_sample:utterance.end_sample, utterance.channel])
    _write_wav(paths.wav, audio)
    write_text(paths.transcription, transcription_text(dialog))
    write_text(paths.evaluation, evaluation_text(dialog))
    _encode_avi(paths.avi, paths.wav, dialog_frames(dialog), dialog.name)


def generate_corpus(
    out: str | Path,
    sessions: int = 5,
    dialogs_per_session: int = 2,
    utterances_per_dialog: int = 26,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[SynthDialog], None] | None = None,
) -> SynthSummary:
    """Write a synthetic corpus to `out`/IEMOCAP_full_release; resume one left unfinished.

    `workers` dialogs are encoded at a time (each ffmpeg runs one thread);
    the files do not depend on it. `progress` is called after each dialog.
    """
    began = time.perf_counter()
    out = Path(out)
    params = SynthParams(sessions, dialogs_per_session, utterances_per_dialog, seed)
    claim(out, CORPUS_FOLDER, {"generator": "emoprep synth", "version": GENERATOR_VERSION, **asdict(params)})
    root = out / CORPUS_FOLDER
    write_text(root / "Documentation" / "README.txt", CORPUS_README.format(parameters=json.dumps(asdict(params))))
    dialogs = plan_corpus(params)
    written = write_pending(dialogs, lambda d: DialogPaths.of(root, d).avi.exists(),
                            lambda d: write_dialog(root, d), workers, progress)
    utterances = [u for d in dialogs for u in d.utterances]
    return SynthSummary(
        out=out,
        params=params,
        dialogs=len(dialogs),
        written=written,
        utterances=len(utterances),
        kept_majority=sum(u.released_label in KEPT_EMOTIONS for u in utterances),
        released=tuple(sorted(Counter(u.released_label for u in utterances).items())),
        dialog_seconds=sum(d.n_samples for d in dialogs) / SAMPLE_RATE,
        utterance_seconds=sum(u.end - u.start for u in utterances),
        wall_seconds=time.perf_counter() - began,
    )


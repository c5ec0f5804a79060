"""Writing a synthetic corpus to disk: the media edge (soundfile, ffmpeg) and the run around it.

Every file is written under a temporary name in its own folder and moved into
place, and a dialog's AVI is written last, so an existing AVI means the whole
dialog is complete: an interrupted run, started again with the same
parameters, skips finished dialogs and redoes the rest.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import soundfile as sf

from emoprep.atomic import atomic_path, is_temporary
from emoprep.corpus.iemocap import KEPT_EMOTIONS
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.synth.annotations import CORPUS_README, evaluation_text, transcription_text
from emoprep.synth.face import FRAME_RATE, HEIGHT, WIDTH, dialog_frames
from emoprep.synth.plan import SAMPLE_RATE, SynthDialog, SynthParams, plan_corpus
from emoprep.synth.voice import render_dialog_audio

CORPUS_FOLDER = "IEMOCAP_full_release"
STAMP = "synth.json"  # beside CORPUS_FOLDER: what made it, so a re-run can resume or refuse
# Bump when the same parameters would give different files, so old output is not resumed into new.
GENERATOR_VERSION = 1
VIDEO_QUALITY = 3  # mpeg4 -q:v: 1 best .. 31 worst; 3 keeps faces sharp for the detectors


class SynthError(Exception):
    """The output folder cannot be used, or a dialog could not be written."""


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


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        sf.write(temporary, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _encode_avi(path: Path, audio: Path, frames: Iterable[memoryview], name: str) -> None:
    """DivX-tagged MPEG-4 video at 29.97 fps from raw I420 frames on stdin, with the dialog wav as its audio."""
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="yuv420p", s=f"{WIDTH}x{HEIGHT}",
                         framerate=f"{FRAME_RATE.numerator}/{FRAME_RATE.denominator}")
    with atomic_path(path) as temporary:
        output = ffmpeg.output(
            video, ffmpeg.input(str(audio)), str(temporary), format="avi",
            vcodec="mpeg4", vtag="DIVX", acodec="pcm_s16le",
            # One thread and bit-exact flags: the same frames give the same bytes on every run.
            threads=1, fflags="+bitexact", **{"q:v": VIDEO_QUALITY, "flags:v": "+bitexact", "flags:a": "+bitexact"},
        )
        process = output.global_args("-loglevel", "error").overwrite_output().run_async(
            pipe_stdin=True, pipe_stderr=True, cmd=ffmpeg_exe())
        # A broken pipe means ffmpeg stopped early; its exit status and message below say why.
        with suppress(BrokenPipeError):
            try:
                for frame in frames:
                    process.stdin.write(frame)
            finally:
                process.stdin.close()
        errors = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise SynthError(f"{name}: ffmpeg could not encode {path.name}: {errors or 'no message'}")


def _remove_leftovers(paths: Iterable[Path]) -> None:
    """Temporary files that a killed run left beside these paths."""
    for path in paths:
        if path.parent.is_dir():
            for leftover in path.parent.glob(f".{path.name}.*"):
                if is_temporary(leftover):
                    leftover.unlink(missing_ok=True)


def write_dialog(root: Path, dialog: SynthDialog) -> None:
    """All files of one dialog; the AVI last (its presence marks the dialog complete)."""
    paths = DialogPaths.of(root, dialog)
    sentences = [paths.sentences / f"{u.utterance_id}.wav" for u in dialog.utterances]
    _remove_leftovers([*sentences, paths.wav, paths.transcription, paths.evaluation, paths.avi])
    audio = render_dialog_audio(dialog)
    for utterance, path in zip(dialog.utterances, sentences):
        _write_wav(path, audio[utterance.start_sample:utterance.end_sample, utterance.channel])
    _write_wav(paths.wav, audio)
    _write_text(paths.transcription, transcription_text(dialog))
    _write_text(paths.evaluation, evaluation_text(dialog))
    _encode_avi(paths.avi, paths.wav, dialog_frames(dialog), dialog.name)


def _claim(out: Path, params: SynthParams) -> None:
    """Check that `out` is empty or holds this very corpus (then it resumes), and stamp it."""
    stamp = {"generator": "emoprep synth", "version": GENERATOR_VERSION, **asdict(params)}
    stamp_path = out / STAMP
    if stamp_path.exists():
        found = json.loads(stamp_path.read_text(encoding="utf-8"))
        if found != stamp:
            raise SynthError(
                f"{out} holds a synthetic corpus made with other parameters ({found}); "
                "choose another --out, or delete that folder to regenerate"
            )
        return
    if (out / CORPUS_FOLDER).exists():
        raise SynthError(
            f"{out / CORPUS_FOLDER} exists but was not written by emoprep synth (no {STAMP}); "
            "refusing to write into it: choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_text(stamp_path, json.dumps(stamp, indent=2, sort_keys=True) + "\n")


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
    _claim(out, params)
    root = out / CORPUS_FOLDER
    _write_text(root / "Documentation" / "README.txt", CORPUS_README.format(parameters=json.dumps(asdict(params))))
    dialogs = plan_corpus(params)
    pending = [d for d in dialogs if not DialogPaths.of(root, d).avi.exists()]
    if progress is not None:
        for dialog in dialogs:
            if dialog not in pending:
                progress(dialog)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # map() keeps order and re-raises the first failure here, with the dialog named in its message.
        for dialog, _ in zip(pending, pool.map(lambda d: write_dialog(root, d), pending)):
            if progress is not None:
                progress(dialog)
    utterances = [u for d in dialogs for u in d.utterances]
    return SynthSummary(
        out=out,
        params=params,
        dialogs=len(dialogs),
        written=len(pending),
        utterances=len(utterances),
        kept_majority=sum(u.released_label in KEPT_EMOTIONS for u in utterances),
        released=tuple(sorted(Counter(u.released_label for u in utterances).items())),
        dialog_seconds=sum(d.n_samples for d in dialogs) / SAMPLE_RATE,
        utterance_seconds=sum(u.end - u.start for u in utterances),
        wall_seconds=time.perf_counter() - began,
    )


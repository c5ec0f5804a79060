"""Writing any synthetic corpus: atomic files, ffmpeg encoding from raw frames, the stamp, resumable runs.

Every file is written under a temporary name in its own folder and moved into
place; each corpus writes a unit's video last, so an existing video means the
unit (an IEMOCAP dialog, a CREMA-D or RAVDESS clip) is complete and a re-run
with the same parameters skips it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import ffmpeg
import numpy as np
import soundfile as sf

from emoprep.atomic import atomic_path, is_temporary
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.synth.plan import SAMPLE_RATE

STAMP = "synth.json"  # beside the corpus folder: what made it, so a re-run can resume or refuse
# Output options that make ffmpeg's bytes depend on the input alone (no version string, one thread).
BITEXACT = {"threads": 1, "fflags": "+bitexact", "flags:v": "+bitexact", "flags:a": "+bitexact"}

Unit = TypeVar("Unit")


class SynthError(Exception):
    """The output folder cannot be used, or a file could not be written."""


@dataclass(frozen=True)
class TwinSummary:
    root: Path  # the corpus folder
    clips: int
    written: int  # clips written by this run; the others were complete already
    labels: tuple[tuple[str, int], ...]  # intended label -> clips
    seconds: float  # audio, all clips
    wall_seconds: float


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with atomic_path(path) as temporary:
        sf.write(temporary, samples, rate, subtype="PCM_16", format="WAV")


def encode_video(path: Path, frames: Iterable[memoryview], size: tuple[int, int], frame_rate: Fraction,
                 audio: Path | None, name: str, finish: Callable[[Path], None] | None = None,
                 **output: Any) -> None:
    """Raw I420 frames on stdin (and `audio`, a file, when given) -> `path`, encoded as `output` says.

    `output` holds ffmpeg's output options (format, codecs, rates); add BITEXACT for reproducible bytes.
    `finish` rewrites the encoded file (what ffmpeg cannot write) before it is moved into place.
    """
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="yuv420p", s=f"{size[0]}x{size[1]}",
                         framerate=f"{frame_rate.numerator}/{frame_rate.denominator}")
    streams = [video] if audio is None else [video, ffmpeg.input(str(audio))]
    with atomic_path(path) as temporary:
        command = ffmpeg.output(*streams, str(temporary), **output)
        process = command.global_args("-loglevel", "error").overwrite_output().run_async(
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
        if finish is not None:
            finish(temporary)


def remove_leftovers(paths: Iterable[Path]) -> None:
    """Temporary files that a killed run left beside these paths."""
    for path in paths:
        if path.parent.is_dir():
            for leftover in path.parent.glob(f".{path.name}.*"):
                if is_temporary(leftover):
                    leftover.unlink(missing_ok=True)


def claim(out: Path, folder: str, stamp: dict[str, Any]) -> None:
    """Check that `out` is empty or holds this very corpus (then it resumes), and stamp it."""
    stamp_path = out / STAMP
    if stamp_path.exists():
        found = json.loads(stamp_path.read_text(encoding="utf-8"))
        if found != stamp:
            raise SynthError(
                f"{out} holds a synthetic corpus made with other parameters ({found}); "
                "choose another --out, or delete that folder to regenerate"
            )
        return
    if (out / folder).exists():
        raise SynthError(
            f"{out / folder} exists but was not written by emoprep synth (no {STAMP}); "
            "refusing to write into it: choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_text(stamp_path, json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def write_pending(units: Sequence[Unit], done: Callable[[Unit], bool], write: Callable[[Unit], None],
                  workers: int, progress: Callable[[Unit], None] | None) -> int:
    """Write every unit not `done` yet, `workers` at a time (the files do not depend on it); how many were written.

    `progress` is called once per unit, finished ones first.
    """
    pending = [unit for unit in units if not done(unit)]
    if progress is not None:
        for unit in units:
            if unit not in pending:
                progress(unit)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # map() keeps order and re-raises the first failure here, with the unit named in its message.
        for unit, _ in zip(pending, pool.map(write, pending)):
            if progress is not None:
                progress(unit)
    return len(pending)


def generate_twin(out: Path, folder: str, stamp: dict[str, Any], texts: dict[str, str], clips: Sequence[Unit],
                  video_of: Callable[[Path, Unit], Path], write: Callable[[Path, Unit], None], workers: int,
                  progress: Callable[[Unit], None] | None) -> TwinSummary:
    """Claim `out`, write the metadata `texts` (relative path -> text) and every clip not finished yet.

    A clip (with `.emotion` and `.acted`, an emoprep.synth.full_frame.ActedClip) is finished
    when its `video_of` file exists: each twin writes that file last.
    """
    began = time.perf_counter()
    claim(out, folder, stamp)
    root = out / folder
    for relative, text in texts.items():
        write_text(root / relative, text)
    written = write_pending(clips, lambda clip: video_of(root, clip).exists(), lambda clip: write(root, clip),
                            workers, progress)
    return TwinSummary(
        root=root,
        clips=len(clips),
        written=written,
        labels=tuple(sorted(Counter(clip.emotion for clip in clips).items())),
        seconds=sum(clip.acted.n_samples for clip in clips) / SAMPLE_RATE,
        wall_seconds=time.perf_counter() - began,
    )

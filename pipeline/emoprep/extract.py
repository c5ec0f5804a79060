"""The extract run: a corpus's clip records -> a WORK folder, resumably and in parallel.

For every kept clip (one with a class under the recipe's label policy), whatever the corpus,
a worker extracts its waveform, face crops and record into WORK (emoprep.utterance; the
layout is emoprep.work's), and each run ends by rebuilding WORK's manifest. A record is
final: a resumed run skips every utterance that has one (a failed record too, unless
retry_failed), so a run killed at any moment is finished by running it again. Bad input
becomes a record with its reason and never stops the run; anything else is a bug and does.
A run has WORK to itself (a lock), and WORK holds one corpus and one detector's crops.

A worker builds its face detector on its first clip with a video, so a run of audio-only
clips never loads one (nor looks for its weights).
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

from emoprep.atomic import is_temporary, write_bytes
from emoprep.corpus.base import CorpusClips
from emoprep.labels import labels_table
from emoprep.media.audio import SAMPLE_RATE
from emoprep.media.faces import DetectorSpec, DetectorUnavailable, FaceDetector, build_detector, resolve
from emoprep.utterance import Job, extract_utterance
from emoprep.work import CONFIG_FILE, LOCK_FILE, MANIFEST, Record, read_record, work_paths, write_manifest, \
    write_problems



class ExtractError(Exception):
    """Nothing can be extracted: no kept utterance, detector unavailable, WORK in use or made otherwise."""


@dataclass(frozen=True)
class ExtractOptions:
    clips: CorpusClips  # what the corpus's recipe read
    work: Path
    detector: DetectorSpec
    workers: int
    limit: int | None = None  # only the first N kept utterances (by id)
    retry_failed: bool = False  # re-run utterances whose record says failed
    job_slice: tuple[int, int] | None = None  # (K, N): this machine's slice, utterances K-1, K-1+N, ... (1-based K)


@dataclass(frozen=True)
class ExtractSummary:
    manifest: Path
    utterances: int  # manifest rows: the kept utterances (after --limit)
    resumed: int  # of them, done by an earlier run
    processed: int  # of them, done by this run
    ok: int  # manifest rows with status ok (this run and earlier ones)
    failed: int
    failures: dict[str, int]  # failed rows by error kind
    warnings: int  # ok rows with a warning
    wall_s: float
    audio_s: float  # seconds of audio written by this run
    corpus_problems: int  # metadata the recipe left out
    job_slice: tuple[int, int] | None = None  # (K, N) when only a slice was extracted (no manifest then)

    @property
    def utterances_per_s(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def audio_hours_per_hour(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


ProgressFactory = Callable[[int], ContextManager[Any]]  # length -> a context with .update(n), like click.progressbar


class _NoProgress:
    def update(self, n: int) -> None:
        pass


def _no_progress(length: int) -> ContextManager[Any]:
    return nullcontext(_NoProgress())


# ---------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(work: str, spec: DetectorSpec) -> None:
    """Once per worker process (and in-process for --workers 1): one thread each, one detector each.

    One thread also makes the detectors' results independent of the machine's core count.
    The detector itself is built on the worker's first clip with a video (_detector).
    """
    import cv2

    cv2.setNumThreads(1)  # also OpenCV's DNN module, which runs CenterFace
    if spec.name == "sfd":
        import torch

        torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER.update(work=Path(work), spec=spec)


def _detector() -> FaceDetector | None:
    """The worker's detector, built on first need: an audio-only run never loads a network."""
    if "detector" not in _WORKER:
        _WORKER["detector"] = build_detector(_WORKER["spec"])
    return _WORKER["detector"]


def _run_job(job: Job) -> Record:
    try:
        detector = None if job.video_path is None else _detector()
        return extract_utterance(job, _WORKER["work"], _WORKER["spec"].name, detector)
    except Exception as error:
        raise RuntimeError(f"{job.utterance_id}: unexpected {type(error).__name__} while extracting: {error}") from error


def _run_jobs(jobs: list[Job], work: Path, spec: DetectorSpec, workers: int) -> Iterator[Record]:
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        _init_worker(str(work), spec)
        yield from map(_run_job, jobs)
        return
    workers = min(workers, len(jobs))
    # Consecutive jobs often share a video; sending a few together lets a worker reuse its probe of it.
    chunk = max(1, min(8, len(jobs) // (4 * workers)))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(str(work), spec),
    ) as pool:
        yield from pool.map(_run_job, jobs, chunksize=chunk)


# ---------------------------------------------------------------- the run

def slice_of(items: list, job_slice: tuple[int, int] | None) -> list:
    """Slice K of N of a list: items K-1, K-1+N, K-1+2N, ... (every slice gets a mix of speakers)."""
    if job_slice is None:
        return items
    k, n = job_slice
    return items[k - 1::n]


@contextmanager
def _locked(work: Path, job_slice: tuple[int, int] | None) -> Iterator[None]:
    """A whole run has WORK to itself; the N slices of a job array share it, one process per slice.

    The kernel drops the locks when their process dies, even by SIGKILL.
    """
    work.mkdir(parents=True, exist_ok=True)
    with open(work / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, (fcntl.LOCK_EX if job_slice is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExtractError(f"{work}: another emoprep extract is running on this folder; wait for it") from None
        if job_slice is None:
            yield
            return
        k, n = job_slice
        with open(work / f"{LOCK_FILE}.{k}-of-{n}", "a") as own:
            try:
                fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExtractError(f"{work}: slice {k}/{n} is already being extracted") from None
            yield


def _remove_leftovers(work: Path) -> int:
    """Delete temporary files that a killed run left behind (only ever partial copies)."""
    removed = 0
    for folder, _, names in os.walk(work):
        for name in names:
            if is_temporary(Path(name)):
                (Path(folder) / name).unlink(missing_ok=True)
                removed += 1
    return removed


def _check_config(work: Path, spec: DetectorSpec, corpus: str) -> None:
    """A WORK folder holds one corpus and one detector's crops: resuming with another would mix them."""
    path = work / CONFIG_FILE
    config = {"corpus": corpus, "detector": spec.name}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = None
        if previous != config:
            raise ExtractError(
                f"{work} was extracted with settings {previous} (in {path}), not {config}: "
                "use the same corpus and --face-detector to resume, or another --out"
            )
        return
    write_bytes(path, (json.dumps(config) + "\n").encode())


def run_extract(options: ExtractOptions, progress: ProgressFactory = _no_progress) -> ExtractSummary:
    """Extract every kept utterance not done yet, then rebuild the manifest. See the module docstring.

    With options.job_slice (K, N) only that slice is extracted and no manifest is written: the N
    slices of a job array run at once, and one plain run afterwards (which finds every record
    and extracts nothing) writes the manifest.
    """
    started = time.perf_counter()
    clips = options.clips
    kept = list(clips.kept)
    if options.limit is not None:
        kept = kept[:options.limit]
    if not kept:
        if clips.problems and options.job_slice is None:
            # The files the recipe left out are still put on record (an empty manifest and
            # problems.csv), so that `make predict` can give each of them its failed row;
            # with nothing to record, no WORK is made.
            with _locked(options.work, None):
                write_manifest(options.work, labels_table(clips, []), {})
                write_problems(options.work, clips.problems)
        raise ExtractError(
            f"{clips.root}: nothing to extract: no {clips.corpus} utterance has a kept label "
            f"({', '.join(clips.classes)}) under policy {clips.label_policy.get('name')} "
            f"({len(clips.clips)} utterances read, {len(clips.problems)} problems)"
        )
    spec = options.detector
    if any(clip.video_path is not None for clip in kept):  # no weights are looked for where no face will be
        try:
            spec = resolve(spec)
        except DetectorUnavailable as error:
            raise ExtractError(str(error)) from None

    work = options.work
    with _locked(work, options.job_slice):
        _check_config(work, spec, clips.corpus)
        if options.job_slice is None:
            _remove_leftovers(work)  # a slice must not: another slice may be writing its temporary files now
        jobs = [Job.of(clip) for clip in kept]
        records: dict[str, Record] = {}
        for job in jobs:
            record = read_record(work / work_paths(job.utterance_id, job.folder)["record"])
            if record is not None and (record.status == "ok" or not options.retry_failed):
                records[job.utterance_id] = record
        # The slice is taken of every job, done or not, so that each slice stays the same
        # however far the others have come.
        todo = [job for job in slice_of(jobs, options.job_slice) if job.utterance_id not in records]
        audio_s = 0.0
        with progress(len(todo)) as bar:
            for record in _run_jobs(todo, work, spec, options.workers):
                records[record.utterance_id] = record
                audio_s += (record.n_samples or 0) / SAMPLE_RATE
                bar.update(1)
        if options.job_slice is None:
            manifest = write_manifest(work, labels_table(clips, kept), records)
            write_problems(work, clips.problems)
        else:
            manifest = work / MANIFEST
            kept = slice_of(kept, options.job_slice)

    rows = [records[clip.clip_id] for clip in kept]
    failed = [r for r in rows if r.status == "failed"]
    return ExtractSummary(
        manifest=manifest,
        utterances=len(rows),
        resumed=len(rows) - len(todo),
        processed=len(todo),
        ok=len(rows) - len(failed),
        failed=len(failed),
        failures=dict(sorted(Counter(r.error_kind for r in failed).items())),
        warnings=sum(r.status == "ok" and r.warning is not None for r in rows),
        wall_s=time.perf_counter() - started,
        audio_s=audio_s,
        corpus_problems=len(clips.problems),
        job_slice=options.job_slice,
    )

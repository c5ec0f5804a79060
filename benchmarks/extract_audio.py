"""How close `emoprep extract` comes, on audio-only clips, to just reading and resampling the same audio.

A folder of sound files (by default the real RAVDESS speech in ../shared/real-speech/ravdess:
120 wavs, 48 kHz) is read by the `clips` recipe, which makes each file audio-only windows
(no video: extract opens none and builds no face detector). Then, alternately:
  floor:   each window read with soundfile and resampled to 16 kHz mono int16 with the same
           polyphase filter (scipy's resample_poly), nothing written, in `--workers` processes;
  extract: `run_extract` on those clips with `--workers` workers, into a fresh WORK
           (reading, resampling, FLAC and record writing, the manifest);
best of `--repeat` rounds of each, in the same run. Both pools start their processes the
same way (spawn), so worker start-up is on both sides.

The check: extract's wall time within 4x of the floor's (exit status 1 otherwise).

    python benchmarks/extract_audio.py --workers 2 --json benchmarks/results/extract_audio.json
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from report import Cost, cpu_seconds, table, write_json  # benchmarks/report.py: run as scripts, beside it
from emoprep.corpus import read_clips
from emoprep.corpus.base import CorpusClips
from emoprep.extract import ExtractOptions, run_extract
from emoprep.media.faces import DetectorSpec

RAVDESS_SPEECH = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-speech" / "ravdess"
LIMIT = 4.0  # the goal: extract within 4x of the floor
TARGET_RATE = 16_000


def read_and_resample(window: tuple[str, float, float]) -> int:
    """The floor's work for one window: read it, downmix, resample to 16 kHz int16; the sample count."""
    from scipy.signal import resample_poly

    path, start, end = window
    with sf.SoundFile(path) as file:
        rate = file.samplerate
        file.seek(round(start * rate))
        data = file.read(round((end - start) * rate), dtype="float64", always_2d=True).mean(axis=1)
    divisor = math.gcd(TARGET_RATE, rate)
    samples = resample_poly(data, TARGET_RATE // divisor, rate // divisor) if rate != TARGET_RATE else data
    return len(np.clip(np.rint(samples * 32768), -32768, 32767).astype(np.int16))


def floor_cost(windows: list[tuple[str, float, float]], workers: int) -> Cost:
    started, cpu = time.perf_counter(), cpu_seconds()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(read_and_resample, windows, chunksize=max(1, len(windows) // (4 * workers))))
    return Cost(time.perf_counter() - started, cpu_seconds() - cpu)


def extract_cost(clips: CorpusClips, workers: int, scratch: Path) -> Cost:
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        started, cpu = time.perf_counter(), cpu_seconds()
        summary = run_extract(ExtractOptions(clips=clips, work=Path(work), detector=DetectorSpec(), workers=workers))
        cost = Cost(time.perf_counter() - started, cpu_seconds() - cpu)
    if summary.failed or summary.ok != len(clips.kept):
        raise SystemExit(f"extract failed on {summary.failed} clips: {summary.failures}")
    return cost


def measure(folder: Path, workers: int, repeat: int) -> dict:
    clips = read_clips("clips", folder)
    if clips.problems:
        print("\n".join(str(p) for p in clips.problems), file=sys.stderr)
    if any(clip.video_path is not None for clip in clips.kept):
        raise SystemExit(f"{folder} holds videos: this benchmark is for audio-only clips")
    windows = [(clip.audio_path, *clip.audio_window) for clip in clips.kept]
    floors, extracts = [], []
    with tempfile.TemporaryDirectory(prefix="bench-extract-audio-") as scratch:
        for _ in range(repeat):
            floors.append(floor_cost(windows, workers))
            extracts.append(extract_cost(clips, workers, Path(scratch)))
    floor = Cost(min(c.wall for c in floors), min(c.cpu for c in floors))
    extract = Cost(min(c.wall for c in extracts), min(c.cpu for c in extracts))
    rates = sorted({sf.info(path).samplerate for path, _, _ in windows})
    return {
        "folder": str(folder.resolve()),
        "workers": workers,
        "clips": len(windows),
        "audio_s": round(sum(end - start for _, start, end in windows), 1),
        "source_rates": rates,
        "floor_s": round(floor.wall, 3),
        "extract_s": round(extract.wall, 3),
        "ratio": round(extract.wall / floor.wall, 2),
        "floor_cpu_s": round(floor.cpu, 3),
        "extract_cpu_s": round(extract.cpu, 3),
        "cpu_ratio": round(extract.cpu / floor.cpu, 2),
        "clips_per_s": round(len(windows) / extract.wall, 1),
        "limit": LIMIT,
    }


TABLE = [(key, key, "") for key in ("workers", "clips", "audio_s", "floor_s", "extract_s", "ratio", "floor_cpu_s",
                                     "extract_cpu_s", "cpu_ratio", "clips_per_s")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=RAVDESS_SPEECH, help="a folder of sound files")
    parser.add_argument("--workers", type=int, default=2, help="processes for both extract and the floor")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement; the best counts")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder}: no such folder (the real speech is in ../shared/real-speech/ravdess)")
    figures = measure(args.folder, args.workers, args.repeat)
    print(table([figures], TABLE))
    within = figures["ratio"] <= LIMIT
    print(f"extract is {figures['ratio']}x the floor's wall time: {'within' if within else 'NOT within'} {LIMIT:g}x")
    write_json(args.json, {**figures, "within_limit": within}, indent=1)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())

"""How close `emoprep extract` comes to the cost of just decoding the video it needs.

Generates a synthetic corpus (emoprep.synth) in a temporary folder, then for
each detector, alternately:
  floor:   ffmpeg decoding exactly the same video windows to null (`-f null -`,
           one thread per process, `--workers` processes at a time);
  extract: `run_extract` with that detector and `--workers` workers, into a fresh WORK;
each over all kept utterances and over the first `--workers` of them only,
and reports the best of `--repeat` rounds of each. Both sides run in the same
process, on the same windows, in the same minutes.

Figures (per detector):
  ratio           wall time of the whole run / the floor's (includes reading
                  the corpus, starting the workers, writing the manifest)
  cpu_ratio       the same in CPU seconds (this process and its finished
                  children: ffmpeg, the pool's workers and their ffmpeg): holds
                  on a machine other jobs share, where wall times swing
  marginal_ratio  CPU seconds of all utterances minus those of the first
                  `--workers`, against the floor's same difference: the cost of
                  one more utterance once the workers run, which is what a run
                  over the real corpus's 5,531 utterances approaches

    python benchmarks/extract.py --workers 2 --json benchmarks/results/extract.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from report import Cost, cpu_seconds, write_json  # benchmarks/report.py: run as scripts, beside it
from emoprep.corpus import read_clips
from emoprep.corpus.base import CorpusClips
from emoprep.extract import ExtractOptions, run_extract
from emoprep.utterance import MAX_SECONDS
from emoprep.media.faces import DetectorSpec
from emoprep.media.ffmpeg_bin import ffmpeg_exe


def video_windows(clips: CorpusClips) -> list[tuple[str, float, float]]:
    """(video, start, seconds) of every kept utterance, in extract's order: the windows it decodes."""
    return [(clip.video_path, clip.start, min(clip.duration, MAX_SECONDS)) for clip in clips.kept]


def decode_floor(windows: list[tuple[str, float, float]], workers: int) -> Cost:
    """ffmpeg decoding every window to null, `workers` processes at a time."""
    def decode(window: tuple[str, float, float]) -> None:
        avi, start, seconds = window
        subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-v", "error", "-threads", "1", "-ss", f"{start:.6f}", "-t", f"{seconds:.6f}",
             "-i", avi, "-f", "null", "-"],
            check=True, stdin=subprocess.DEVNULL,
        )

    started, cpu = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(decode, windows))
    return Cost(time.perf_counter() - started, cpu_seconds() - cpu)


def extract_cost(clips: CorpusClips, detector: str, workers: int, limit: int | None, scratch: Path) -> Cost:
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        started, cpu = time.perf_counter(), cpu_seconds()
        summary = run_extract(ExtractOptions(
            clips=clips, work=Path(work), detector=DetectorSpec(detector), workers=workers, limit=limit,
        ))
        cost = Cost(time.perf_counter() - started, cpu_seconds() - cpu)
    if summary.failed:
        raise SystemExit(f"extract failed on {summary.failed} synthetic utterances: {summary.failures}")
    return cost


def best(costs: list[Cost]) -> Cost:
    return Cost(min(c.wall for c in costs), min(c.cpu for c in costs))


def measure(clips: CorpusClips, windows: list, detector: str, workers: int, repeat: int, scratch: Path) -> dict:
    few = workers
    floor, floor_few, extract, extract_few = [], [], [], []
    for _ in range(repeat):
        floor.append(decode_floor(windows, workers))
        extract.append(extract_cost(clips, detector, workers, None, scratch))
        floor_few.append(decode_floor(windows[:few], workers))
        extract_few.append(extract_cost(clips, detector, workers, few, scratch))
    floor_all, extract_all = best(floor), best(extract)
    floor_start, extract_start = best(floor_few), best(extract_few)
    utterances = len(windows)
    return {
        "detector": detector,
        "workers": workers,
        "utterances": utterances,
        "video_s": round(sum(seconds for _, _, seconds in windows), 2),
        "floor_s": round(floor_all.wall, 3),
        "extract_s": round(extract_all.wall, 3),
        "ratio": round(extract_all.wall / floor_all.wall, 2),
        "floor_cpu_s": round(floor_all.cpu, 3),
        "extract_cpu_s": round(extract_all.cpu, 3),
        "cpu_ratio": round(extract_all.cpu / floor_all.cpu, 2),
        "marginal_ratio": round((extract_all.cpu - extract_start.cpu) / (floor_all.cpu - floor_start.cpu), 2),
        "utterances_per_s_per_core": round(utterances / extract_all.wall / workers, 2),
        "floor_utterances_per_s_per_core": round(utterances / floor_all.wall / workers, 2),
    }


TABLE = ("detector", "workers", "utterances", "video_s", "floor_s", "extract_s", "ratio", "floor_cpu_s",
         "extract_cpu_s", "cpu_ratio", "marginal_ratio", "utterances_per_s_per_core")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes for both extract and the floor")
    parser.add_argument("--detectors", default="centerface,haar,fixed",
                        help="comma-separated: centerface, haar, fixed, sfd")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--dialogs-per-session", type=int, default=4)
    parser.add_argument("--utterances-per-dialog", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement; the best counts")
    parser.add_argument("--corpus", type=Path, help="an existing corpus to use instead of generating one")
    parser.add_argument("--json", type=Path, help="write the figures here (the first detector's at the top level)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as scratch_name:
        scratch = Path(scratch_name)
        corpus = args.corpus
        if corpus is None:
            # Imported here: the pool's workers re-import this script, and need none of the generator.
            from emoprep.synth import generate_corpus

            corpus = scratch / "synth"
            print(f"generating a synthetic corpus in {corpus} ...", file=sys.stderr)
            generate_corpus(corpus, args.sessions, args.dialogs_per_session, args.utterances_per_dialog,
                            workers=args.workers)
        clips = read_clips("iemocap", corpus)
        windows = video_windows(clips)
        runs = [measure(clips, windows, detector, args.workers, args.repeat, scratch)
                for detector in args.detectors.split(",")]

    widths = [max(len(h), *(len(str(run[h])) for run in runs)) for h in TABLE]
    print("  ".join(h.rjust(w) for h, w in zip(TABLE, widths)))
    for run in runs:
        print("  ".join(str(run[h]).rjust(w) for h, w in zip(TABLE, widths)))
    write_json(args.json, {**runs[0], "runs": runs}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

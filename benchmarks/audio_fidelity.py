"""Every FLAC of an audio-only WORK folder against a reference resampling of its source file.

For each ok row of WORK/manifest.parquet whose clip is a whole sound file (no audio window,
start 0), the extracted 16 kHz FLAC is compared with two references computed here, not by
emoprep: the source read with soundfile, channels averaged, resampled by scipy's polyphase
filter (tests/emoprep/media_check.resampled_16k; extract uses the same filter, so this checks
reading, windows, mix-down and the FLAC round trip; samples the resampling lifts past 16-bit
full scale are counted, not charged as error), and ffmpeg's own resampler (`-ac 1 -ar
16000`; a different filter, so only the correlation is expected to be high). Prints the
worst clips and a summary; exits 1 when a clip misses the bounds below.

    python benchmarks/audio_fidelity.py /tmp/rav-work --json benchmarks/results/audio_fidelity.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf

from report import write_json  # benchmarks/report.py: run as scripts, beside it

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.emoprep
from tests.emoprep.media_check import agreement, decoded_audio, resampled_16k  # noqa: E402

MIN_CORRELATION = 0.99
MAX_ABS = 4 / 32768  # a few int16 steps: rounding, and clipping of a peak at full scale
MAX_LENGTH_DIFFERENCE = 16_000 // 25  # one 25 fps frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worst", type=int, default=5, help="clips listed, worst correlation first")
    args = parser.parse_args()

    rows = pq.read_table(args.work / "manifest.parquet").to_pylist()
    whole = [row for row in rows if row["status"] == "ok" and row["audio_start"] is None and row["start"] == 0.0]
    figures = []
    for row in whole:
        extracted, _ = sf.read(args.work / row["audio_path"], dtype="float64")
        source = Path(row["audio_file"])
        poly = agreement(extracted, resampled_16k(source))
        ffmpeg = agreement(extracted, decoded_audio(source, 16_000))
        figures.append({"clip": row["utterance_id"], "max_abs": poly.max_abs, "rms": poly.rms,
                        "correlation": poly.correlation, "length_difference": poly.length_difference,
                        "clipped": poly.clipped,
                        "ffmpeg_correlation": ffmpeg.correlation, "ffmpeg_max_abs": ffmpeg.max_abs})
    bad = [f for f in figures if f["correlation"] < MIN_CORRELATION or f["max_abs"] > MAX_ABS
           or abs(f["length_difference"]) > MAX_LENGTH_DIFFERENCE]
    summary = {
        "work": str(args.work), "manifest_rows": len(rows), "checked": len(figures),
        "not_checked": len(rows) - len(figures), "outside_bounds": len(bad),
        "worst_max_abs": max(f["max_abs"] for f in figures),
        "worst_rms": max(f["rms"] for f in figures),
        "worst_correlation": min(f["correlation"] for f in figures),
        "worst_length_difference": max(abs(f["length_difference"]) for f in figures),
        "clips_with_clipped_peaks": sum(f["clipped"] > 0 for f in figures),
        "clipped_samples": sum(f["clipped"] for f in figures),
        "worst_ffmpeg_correlation": min(f["ffmpeg_correlation"] for f in figures),
        "worst_ffmpeg_max_abs": max(f["ffmpeg_max_abs"] for f in figures),
    }
    for f in sorted(figures, key=lambda f: f["correlation"])[:args.worst]:
        print(f"{f['clip']}: correlation {f['correlation']:.7f}, max abs {f['max_abs']:.2e}, "
              f"rms {f['rms']:.2e}, length {f['length_difference']:+d}, clipped {f['clipped']}; ffmpeg correlation "
              f"{f['ffmpeg_correlation']:.5f}")
    for name, value in summary.items():
        print(f"{name}: {value}")
    for f in bad:
        print(f"OUTSIDE BOUNDS {f['clip']}: {f}", file=sys.stderr)
    write_json(args.json, {"summary": summary, "clips": figures})
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

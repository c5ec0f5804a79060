"""Frame encoding for the shards, and shard read throughput.

1. Encoding: for the face crops of a WORK folder, bytes per sample, decode throughput on one core
   (samples/s) and round-trip PSNR, for raw .npy, one JPEG per frame, the stacked JPEG (format v1),
   and a short H.264 video per sample (decoded by an ffmpeg subprocess: emotrain may not use ffmpeg,
   which counts against video anyway). A JPEG quality sweep shows where 38 dB is crossed.
2. Reading: the WORK written as shards by emoprep, then read back on one core: tar members only
   (the floor), tar + decoding every member by hand, and webdataset + the same decoding.

Without --work a synthetic WORK is made (astronaut face crops with noise, 2-6 s utterances).

    python benchmarks/shard_read.py --json benchmarks/results/shard_read.json
    python benchmarks/shard_read.py --work work --samples 64
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: per-core figures

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.emoprep.work_factory

from report import best_times, read_tar_members, table, write_json  # benchmarks/report.py: run as scripts, beside it
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.shard import JPEG_QUALITY, JPEG_SUBSAMPLING, encode_frames, plan_shard_set, write_shards


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255 ** 2 / error)


# ---------------------------------------------------------------- codecs under test

def npy_encode(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, frames)
    return buffer.getvalue()


def npy_decode(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data))


def jpeg(image: np.ndarray, quality: int, subsampling: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return buffer.getvalue()


def per_frame_encode(frames: np.ndarray) -> list[bytes]:
    return [jpeg(frame, JPEG_QUALITY, JPEG_SUBSAMPLING) for frame in frames]


def per_frame_decode(data: list[bytes]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in data])


def stacked_decode_pil(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).reshape(-1, 96, 96, 3)


def stacked_decode_torchvision(data: bytes) -> np.ndarray:
    import torch
    from torchvision.io import decode_jpeg

    pixels = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))  # (3, H, W)
    return pixels.permute(1, 2, 0).reshape(-1, 96, 96, 3).numpy()


def h264_encode(frames: np.ndarray, crf: int) -> bytes:
    command = [ffmpeg_exe(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x96",
               "-r", "25", "-i", "pipe:", "-c:v", "libx264", "-preset", "medium", "-crf", str(crf),
               "-pix_fmt", "yuv444p", "-threads", "1", "-f", "h264", "pipe:"]
    return subprocess.run(command, input=frames.tobytes(), capture_output=True, check=True).stdout


def h264_decode(data: bytes) -> np.ndarray:
    command = [ffmpeg_exe(), "-loglevel", "error", "-threads", "1", "-f", "h264", "-i", "pipe:",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    raw = subprocess.run(command, input=data, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 96, 96, 3)


def size_of(encoded: bytes | list[bytes]) -> int:
    return sum(map(len, encoded)) if isinstance(encoded, list) else len(encoded)


def compare_encodings(clips: list[np.ndarray], repeats: int) -> list[dict]:
    def stacked_encode(frames: np.ndarray) -> bytes:
        return encode_frames(frames)

    candidates = [
        ("raw .npy uint8", npy_encode, npy_decode),
        (f"JPEG per frame (q{JPEG_QUALITY}, PIL)", per_frame_encode, per_frame_decode),
        (f"stacked JPEG (q{JPEG_QUALITY}, PIL) [format v1]", stacked_encode, stacked_decode_pil),
        (f"stacked JPEG (q{JPEG_QUALITY}, torchvision)", stacked_encode, stacked_decode_torchvision),
        ("H.264 crf 18 yuv444 (ffmpeg pipe)", lambda f: h264_encode(f, 18), h264_decode),
        ("H.264 crf 23 yuv444 (ffmpeg pipe)", lambda f: h264_encode(f, 23), h264_decode),
    ]
    encoded = {name: [encode(frames) for frames in clips] for name, encode, _ in candidates}
    decoders = {name: decode for name, _, decode in candidates}
    seconds = best_times({name: lambda name=name: [decoders[name](blob) for blob in encoded[name]]
                          for name in encoded}, repeats)
    rows = []
    for name, decode in decoders.items():
        decoded = [decode(blob) for blob in encoded[name]]
        frames_ok = all(d.shape == c.shape for d, c in zip(decoded, clips))
        rows.append({
            "encoding": name,
            "bytes_per_sample": float(np.mean([size_of(e) for e in encoded[name]])),
            "bytes_per_frame": sum(size_of(e) for e in encoded[name]) / sum(len(c) for c in clips),
            "decode_samples_per_s": len(clips) / seconds[name],
            "psnr_db": min(psnr(c, d) for c, d in zip(clips, decoded)) if frames_ok else None,
            "frame_count_kept": frames_ok,
        })
    return rows


def quality_sweep(clips: list[np.ndarray]) -> list[dict]:
    rows = []
    for subsampling, label in ((2, "4:2:0"), (0, "4:4:4")):
        for quality in (85, 90, 92, 93, 94, 95, 97):
            stacked = [c.reshape(-1, 96, 3) for c in clips]
            encoded = [jpeg(s, quality, subsampling) for s in stacked]
            decoded = [np.asarray(Image.open(io.BytesIO(b))) for b in encoded]
            rows.append({"subsampling": label, "quality": quality,
                         "bytes_per_frame": sum(map(len, encoded)) / sum(len(c) for c in clips),
                         "min_psnr_db": min(psnr(s, d) for s, d in zip(stacked, decoded)),
                         "mean_psnr_db": float(np.mean([psnr(s, d) for s, d in zip(stacked, decoded)]))})
    return rows


# ---------------------------------------------------------------- reading shards

def decode_members(meta: bytes, flac: bytes, frames: bytes | None) -> None:
    json.loads(meta)
    sf.read(io.BytesIO(flac), dtype="int16")
    if frames is not None:
        np.asarray(Image.open(io.BytesIO(frames)))


def read_and_decode_tarfile(urls: list[str], frames: bool = True) -> int:
    count = 0
    for url in urls:
        with tarfile.open(url) as tar:
            members = [(info.name, tar.extractfile(info).read()) for info in tar]
        for i in range(0, len(members), 3):
            decode_members(members[i][1], members[i + 1][1], members[i + 2][1] if frames else None)
            count += 1
    return count


def read_and_decode_webdataset(urls: list[str]) -> int:
    import webdataset as wds

    count = 0
    for sample in wds.WebDataset(urls, shardshuffle=False):
        decode_members(sample["json"], sample["flac"], sample["frames.jpg"])
        count += 1
    return count


def read_shards(work: Path, out: Path, repeats: int) -> tuple[dict, list[dict]]:
    result = write_shards(plan_shard_set(work, max_samples_per_shard=64), out)
    urls = [str(out / e["file"]) for e in json.loads((out / "index.json").read_text())["shards"]]
    for url in urls:
        Path(url).read_bytes()  # warm the page cache: the floor measures tar parsing, not the disk
    shard_info = {"shards": result.shards, "samples": result.samples, "bytes": result.bytes,
                  "bytes_per_sample": result.bytes / result.samples}
    readers = {
        "tar members only (floor)": read_tar_members,
        "tarfile + decode json, flac": lambda u: read_and_decode_tarfile(u, frames=False),
        "tarfile + decode all members": read_and_decode_tarfile,
        "webdataset + decode all members": read_and_decode_webdataset,
    }
    seconds = best_times({name: lambda reader=reader: reader(urls) for name, reader in readers.items()}, repeats)
    floor = seconds["tar members only (floor)"]
    rows = [{"reader": name, "samples_per_s": result.samples / t, "mb_per_s": result.bytes / t / 1e6,
             "vs_floor": floor / t} for name, t in seconds.items()]
    return shard_info, rows


# ---------------------------------------------------------------- input

def synthetic_work(root: Path, samples: int) -> Path:
    from tests.emoprep.work_factory import EMOTIONS, FakeUtterance, make_work

    rng = np.random.default_rng(0)
    utterances = []
    for i in range(samples):
        seconds = rng.uniform(2, 6)  # IEMOCAP utterances, capped at 6 s
        session, speaker = 1 + i % 5, "FM"[i // 5 % 2]
        dialog = f"Ses0{session}F_impro0{1 + i % 3}" if i % 4 else f"Ses0{session}F_script01_1"
        utterances.append(FakeUtterance(f"{dialog}_{speaker}{i:03d}", EMOTIONS[i % 4],
                                        n_frames=int(seconds * 25), n_samples=int(seconds * 16_000)))
    return make_work(root, utterances)


def load_clips(work: Path, limit: int) -> list[np.ndarray]:
    rows = [r for r in pq.read_table(work / "manifest.parquet").to_pylist() if r["status"] == "ok"]
    return [np.load(work / r["frames_path"]) for r in rows[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="a WORK folder from emoprep extract (default: synthetic)")
    parser.add_argument("--samples", type=int, default=48, help="synthetic utterances to make (default 48)")
    parser.add_argument("--encode-samples", type=int, default=12, help="clips in the encoding comparison")
    parser.add_argument("--repeats", type=int, default=5, help="timings are the best of this many runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or synthetic_work(Path(scratch) / "work", args.samples)
        clips = load_clips(work, args.encode_samples)
        encodings = compare_encodings(clips, args.repeats)
        sweep = quality_sweep(clips)
        shard_info, reading = read_shards(work, Path(scratch) / "shards", args.repeats)

    frames = [len(c) for c in clips]
    print(f"Input: {'synthetic WORK' if args.work is None else args.work}; encoding on {len(clips)} clips of "
          f"{min(frames)}-{max(frames)} frames (mean {np.mean(frames):.0f}); one core\n")
    print("Frame encoding (per sample; PSNR: worst clip)")
    print(table(encodings, [("encoding", "encoding", "s"), ("bytes_per_sample", "bytes/sample", ",.0f"),
                            ("bytes_per_frame", "bytes/frame", ",.0f"),
                            ("decode_samples_per_s", "decode samples/s", ",.1f"), ("psnr_db", "PSNR dB", ".2f")]))
    print("\nStacked JPEG quality sweep (PIL)")
    print(table(sweep, [("subsampling", "chroma", "s"), ("quality", "quality", "d"),
                        ("bytes_per_frame", "bytes/frame", ",.0f"), ("min_psnr_db", "min PSNR dB", ".2f"),
                        ("mean_psnr_db", "mean PSNR dB", ".2f")]))
    print(f"\nShard reading: {shard_info['samples']} samples in {shard_info['shards']} shards, "
          f"{shard_info['bytes_per_sample'] / 1e3:,.0f} kB/sample, page cache warm")
    print(table(reading, [("reader", "reader", "s"), ("samples_per_s", "samples/s", ",.1f"),
                          ("mb_per_s", "MB/s", ",.0f"), ("vs_floor", "x floor", ".3f")]))
    write_json(args.json, {
        "input": str(args.work) if args.work else "synthetic", "clip_frames": frames,
        "encodings": encodings, "jpeg_quality_sweep": sweep, "shards": shard_info, "reading": reading,
    })


if __name__ == "__main__":
    main()

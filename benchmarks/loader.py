"""emotrain's loader on real shards against reading their tar bytes, and the loader workers a GPU needs.

On one part of one split of a shard folder (from `emoprep shard`), page cache warm, one thread
per process (OMP_NUM_THREADS=1, torch.set_num_threads(1); DataLoader workers set the same):

  floor         every member of the part's tar files read as bytes (tarfile), nothing decoded, one core
  workers 0     emotrain.data.eval_loader in this process: tar reading, decoding (json, FLAC, stacked
                JPEG) and collating into padded Batches, i.e. what one loader worker does on one core
  workers 1, 2  the same loader with that many DataLoader worker processes; every batch is copied into
                shared memory to cross to this process. On a 2-core machine, 2 workers and this consumer
                share 2 cores

for each modality (av, a, v), and for av with each CPU frame decoder emotrain.data offers
(--decoders: PIL, torchvision's libjpeg-turbo binding) and with --decode-frames device (the workers
only check the JPEG header; the batch is decoded on the training device, not timed here). A
decode-only table times the stacked-JPEG decoders themselves on the part's frames, one core
(PIL, torchvision, and simplejpeg when installed). train_loader runs the same stages (tar reading, decoding, batching)
behind resampled shards and a shuffle buffer of raw bytes; it is not timed here because its
resampled stream is a different mix of utterances than the tar files the floor reads.

Every figure is samples/s, the best of --repeats passes taken round robin: per CPU second of this
process where the work runs in it (the floor, workers 0, the decode-only table; robust to other
load on the machine), per wall second with worker processes; each pass reads the
part's shards k times, k chosen from an untimed warm-up pass so that a pass at workers 0 takes
at least --min-seconds (worker start-up is then a small share of it).

Workers needed = ceil(GPU samples/s / samples/s of one worker), for the projected H100 step
(--gpu-samples-per-s, else benchmarks/results/train_step.json's h100_projection: run
train_step.py first), with one worker's rate taken in process (workers 0) and as a DataLoader worker
(workers 1: the shared-memory copy included). The projection is for samples of 6 s; the
loader's cost grows with the utterance's length, so the count is also given with the
measured rates scaled to that length.

    .venv/bin/python benchmarks/loader.py --json benchmarks/results/loader.json
    .venv/bin/python benchmarks/loader.py --shards shards --split paper --part train --modalities av,a
    .venv/bin/python benchmarks/loader.py --gpu-samples-per-s 8000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # per-core figures; set before torch is imported

import numpy as np
import torch

from report import best_times, read_tar_members, table, write_json  # benchmarks/report.py: run as scripts, beside it
from emotrain.data import FRAME_DECODING, MODALITIES, Part, ShardsError, eval_loader, read_part
from shardformat import FRAME_SIZE, MAX_STEPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from shardformat.reader import check_frames_jpeg, decode_frames

WORKERS = (0, 1, 2)
TRAIN_STEP_JSON = Path(__file__).resolve().parent / "results" / "train_step.json"
STEP_KEY = re.compile(r"h100_(?:(\w+)_)?step_s")  # train_step.py: h100_fft_step_s, h100_direct_step_s, h100_step_s


def decode_frames_turbo(jpeg: bytes, n_frames: int) -> np.ndarray:
    """The format's decode_frames through torchvision's libjpeg-turbo binding: the same pixels, no PIL Image."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    check_frames_jpeg(jpeg, n_frames)
    chw = decode_jpeg(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8), mode=ImageReadMode.RGB)
    return chw.numpy().transpose(1, 2, 0).reshape(n_frames, FRAME_SIZE, FRAME_SIZE, 3)


# CPU decoders of the stacked JPEG timed alone: torchvision's decode was 1.13x PIL's but no faster in the
# loader (benchmarks/README.md, 2026-11-29), so the format's reader keeps PIL.
FRAME_DECODERS = {"pil": decode_frames, "torchvision": decode_frames_turbo}


def repeated(part: Part, times: int) -> Part:
    """The part with its shard list `times` over: a longer stream of the same tar bytes."""
    return replace(part, shards=part.shards * times, samples=part.samples * times)


@dataclass(frozen=True)
class Reader:
    """One way of running the loader: a modality, and where and with what the frames are decoded."""

    modality: str
    decoder: str = "loader"  # where the frames are decoded: one of FRAME_DECODING

    @property
    def label(self) -> str:
        return self.modality if self.decoder == "loader" else f"{self.modality}/{self.decoder}"


def loader_pass(part: Part, reader: Reader, batch: int, workers: int) -> int:
    """Samples in one pass of emotrain's loader over `part`; a skipped sample stops the benchmark."""
    samples = 0
    for b in eval_loader(part, modality=reader.modality, batch_size=batch, workers=workers, frames_on=reader.decoder):
        if b.skipped:
            raise SystemExit(f"the loader skipped samples ({b.skipped[0]}): check the shards with `emoprep verify`")
        samples += b.size
    return samples


def passes_for(samples_per_s: float, samples: int, min_seconds: float) -> int:
    return max(1, math.ceil(min_seconds * samples_per_s / samples))


def timed_once(function: Callable[[], object]) -> float:
    return best_times({"once": function}, 1)["once"]


def measure(part: Part, readers: list[Reader], batch: int, repeats: int, min_seconds: float) -> dict[str, dict]:
    """Samples/s of the floor ("floor") and of the loader ("av 0": reader av, workers 0), and passes (k)."""
    # Untimed warm-up passes: the page cache, imports and first calls; they also size the timed passes.
    floor_rate = part.samples / timed_once(lambda: read_tar_members(list(part.shards)))
    passes = {"floor": passes_for(floor_rate, part.samples, min_seconds / 4)}  # it needs no start-up to amortise
    for reader in readers:
        samples = 0

        def warm_up() -> None:
            nonlocal samples
            samples = loader_pass(part, reader, batch, 0)

        rate = part.samples / timed_once(warm_up)
        if samples != part.samples:
            raise SystemExit(f"the loader read {samples} samples of {part.split!r} {part.name!r}, splits.json says "
                             f"{part.samples}; check the shards with `emoprep verify`")
        passes[reader.label] = passes_for(rate, part.samples, min_seconds)

    floor_urls = list(part.shards) * passes["floor"]
    runs: dict[str, Callable[[], int]] = {"floor": lambda: read_tar_members(floor_urls)}
    for reader in readers:
        stream = repeated(part, passes[reader.label])
        for workers in WORKERS:
            runs[f"{reader.label} {workers}"] = lambda s=stream, r=reader, w=workers: loader_pass(s, r, batch, w)
    print(f"timing {len(runs)} runs, best of {repeats} ...", file=sys.stderr)
    # In process (the floor, workers 0): CPU seconds, a worker's cost on a core of its own however loaded
    # the machine is; with worker processes (whose CPU this process cannot count): wall seconds.
    in_process = {name: run for name, run in runs.items() if name == "floor" or name.endswith(" 0")}
    seconds = best_times(in_process, repeats, clock=time.process_time)
    seconds |= best_times({name: run for name, run in runs.items() if name not in in_process}, repeats)
    samples = {name: part.samples * passes[name.split()[0]] for name in runs}
    return {"samples_per_s": {name: samples[name] / seconds[name] for name in runs}, "passes": passes}


def workers_needed(per_worker: dict[str, float], gpu: dict, length_scale: float) -> dict[str, int]:
    """Loader workers to keep up with each projected GPU rate, for each per-worker rate (and scaled to its length)."""
    needed = {}
    for label, target in gpu["samples_per_s"].items():
        for basis, rate in per_worker.items():
            needed[f"{label}_{basis}"] = math.ceil(target / rate)
            needed[f"{label}_{basis}_at_{gpu['sample_s']:g}_s"] = math.ceil(target / (rate * length_scale))
    return needed


def part_profile(part: Part) -> dict:
    """Tar bytes and mean utterance length of the part, from its files and json members."""
    seconds = []
    for url in part.shards:
        with tarfile.open(url) as tar:
            seconds += [json.loads(tar.extractfile(info).read())["n_samples"] / SAMPLE_RATE
                        for info in tar if info.name.endswith(".json")]
    return {"bytes": sum(Path(url).stat().st_size for url in part.shards),
            "mean_utterance_s": sum(seconds) / len(seconds), "longest_utterance_s": max(seconds)}


def stacked_jpegs(part: Part) -> list[tuple[bytes, int]]:
    """(frames.jpg bytes, n_frames) of every sample of the part that has frames."""
    found = []
    for url in part.shards:
        with tarfile.open(url) as tar:
            members = {info.name: tar.extractfile(info).read() for info in tar}
        for name, data in members.items():
            if name.endswith(".frames.jpg"):
                meta = json.loads(members[name.removesuffix("frames.jpg") + "json"])
                found.append((data, meta["n_frames"]))
    return found


def decoder_rates(part: Part, repeats: int) -> dict:
    """Samples/s of each stacked-JPEG decoder alone (emotrain's, and simplejpeg if installed), and the largest pixel
    difference from PIL."""
    jpegs = stacked_jpegs(part)
    decoders = dict(FRAME_DECODERS)
    try:  # not an emotrain dependency: timed for comparison when it is installed
        import simplejpeg

        decoders["simplejpeg"] = lambda jpeg, n: simplejpeg.decode_jpeg(jpeg, colorspace="RGB").reshape(n, 96, 96, 3)
    except ImportError:
        print("simplejpeg is not installed: not timed", file=sys.stderr)
    reference = [FRAME_DECODERS["pil"](j, n) for j, n in jpegs]
    seconds = best_times({name: lambda d=decode: [d(j, n) for j, n in jpegs] for name, decode in decoders.items()},
                         repeats, clock=time.process_time)
    return {"samples": len(jpegs), "decoders": {name: {
        "samples_per_s": len(jpegs) / seconds[name],
        "max_abs_difference_vs_pil": max(int(np.abs(decode(j, n).astype(int) - r).max())
                                         for (j, n), r in zip(jpegs, reference))} for name, decode in decoders.items()}}


def gpu_projection(given: dict[str, float] | None, sample_seconds: float, train_step_json: Path) -> dict:
    """Projected GPU samples/s by label, the projection's seconds per sample, and where they came from."""
    if given is not None:
        return {"samples_per_s": given, "sample_s": sample_seconds, "source": "--gpu-samples-per-s"}
    if not train_step_json.is_file():
        raise SystemExit(f"{train_step_json}: not found; run `python benchmarks/train_step.py --json {train_step_json}` "
                         "first (its H100 projection is what the loader must feed), or pass --gpu-samples-per-s")
    figures = json.loads(train_step_json.read_text())
    batch = figures.get("h100_batch")
    steps = {match.group(1) or "step": seconds for key, seconds in figures.get("h100_projection", {}).items()
             if (match := STEP_KEY.fullmatch(key))}
    if not batch or not steps:
        raise SystemExit(f"{train_step_json}: no h100_batch or H100 step time in it; run benchmarks/train_step.py again")
    return {"samples_per_s": {label: batch / s for label, s in steps.items()},
            "sample_s": figures.get("steps", MAX_STEPS) * SAMPLES_PER_FRAME / SAMPLE_RATE,
            "source": f"{train_step_json} (H100, batch {batch})"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, default=Path("data/shards"), help="a folder from `emoprep shard`")
    parser.add_argument("--split", default="paper")
    parser.add_argument("--part", default="train", choices=("train", "val", "test"))
    parser.add_argument("--modalities", default=",".join(MODALITIES), help="comma-separated (default av,a,v)")
    parser.add_argument("--decoders", default="device",
                        help="av is also timed with the frames decoded here (default device: the JPEG header is "
                             "checked in the loader, the pixels decoded per batch; loader decoding is always timed)")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the loader (default 32, the projection's)")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the best of this many passes")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="least length of a pass at workers 0")
    parser.add_argument("--gpu-samples-per-s", action="append", metavar="[LABEL=]RATE",
                        help="GPU training throughput to feed, repeatable with labels (default: train_step.json's)")
    parser.add_argument("--gpu-sample-seconds", type=float, default=MAX_STEPS * SAMPLES_PER_FRAME / SAMPLE_RATE,
                        help="utterance length that --gpu-samples-per-s is for (default 6)")
    parser.add_argument("--train-step-json", type=Path, default=TRAIN_STEP_JSON,
                        help="train_step.py's --json, read for the projection (default: benchmarks/results/train_step.json)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    modalities = [m for m in args.modalities.split(",") if m]
    if unknown := set(modalities) - set(MODALITIES):
        parser.error(f"--modalities: unknown {', '.join(sorted(unknown))}; choose from {', '.join(MODALITIES)}")
    extra = [d for d in args.decoders.split(",") if d and d != "loader"]
    if unknown := set(extra) - set(FRAME_DECODING):
        parser.error(f"--decoders: unknown {', '.join(sorted(unknown))}; choose from {', '.join(FRAME_DECODING)}")
    readers = [Reader(m) for m in modalities] + [Reader("av", d) for d in extra]
    try:
        given = dict(rate.split("=", 1) if "=" in rate else ("given", rate) for rate in args.gpu_samples_per_s or [])
        given = {label: float(value) for label, value in given.items()} or None
    except ValueError:
        parser.error(f"--gpu-samples-per-s: give RATE or LABEL=RATE, not {args.gpu_samples_per_s}")
    torch.set_num_threads(1)

    try:
        part = read_part(args.shards, args.split, args.part)
    except ShardsError as exn:
        hint = ("" if (args.shards / "splits.json").is_file() else
                "\nMake shards first: `make demo` (writes data/shards), or `emoprep synth`, `emoprep extract` "
                "and `emoprep shard --work WORK --out SHARDS`, then pass --shards SHARDS.")
        print(f"{exn}{hint}", file=sys.stderr)
        return 2
    gpu = gpu_projection(given, args.gpu_sample_seconds, args.train_step_json)
    profile = part_profile(part)
    decode_only = decoder_rates(part, args.repeats)
    measured = measure(part, readers, args.batch, args.repeats, args.min_seconds)
    rate, passes = measured["samples_per_s"], measured["passes"]
    floor = rate["floor"]
    bytes_per_sample = profile["bytes"] / part.samples
    # Decoding cost grows with the utterance (FLAC samples, JPEG frames): a worker's rate on samples
    # of the projection's length, scaled from these; per-sample overheads make this conservative.
    length_scale = profile["mean_utterance_s"] / gpu["sample_s"]
    labels = [r.label for r in readers]
    per_modality = {m: {
        **{f"workers_{w}_samples_per_s": rate[f"{m} {w}"] for w in WORKERS},
        "fraction_of_floor": rate[f"{m} 0"] / floor,
        "mb_per_s": rate[f"{m} 0"] * bytes_per_sample / 1e6,
        "passes": passes[m],
    } for m in labels}
    needed = {m: workers_needed({"workers_0_rate": rate[f"{m} 0"], "workers_1_rate": rate[f"{m} 1"]}, gpu, length_scale)
              for m in labels}

    print(f"Shards: {args.shards}, split {args.split!r} part {args.part!r}: {part.samples} samples in "
          f"{len(part.shards)} shards, {bytes_per_sample / 1e3:,.0f} kB/sample, utterances of "
          f"{profile['mean_utterance_s']:.2f} s on average (longest {profile['longest_utterance_s']:.2f} s); "
          f"batch {args.batch}; one thread per process, {os.cpu_count()} cores; page cache warm; "
          f"best of {args.repeats}; k = passes over the part's shards in a timed run\n")
    rows = [{"reader": "tar bytes only (floor)", "w0": floor, "w1": None, "w2": None, "fraction": 1.0,
             "mb": floor * bytes_per_sample / 1e6, "passes": passes["floor"]}]
    rows += [{"reader": f"emotrain loader, {m}", "w0": f["workers_0_samples_per_s"], "w1": f["workers_1_samples_per_s"],
              "w2": f["workers_2_samples_per_s"], "fraction": f["fraction_of_floor"], "mb": f["mb_per_s"],
              "passes": f["passes"]} for m, f in per_modality.items()]
    print(table(rows, [("reader", "reader", "s"), ("w0", "workers 0 samples/s", ",.1f"), ("w1", "workers 1", ",.1f"),
                       ("w2", "workers 2", ",.1f"), ("fraction", "w0 x floor", ".4f"), ("mb", "w0 MB/s", ",.1f"),
                       ("passes", "k", "d")]))
    print(f"\nLoader workers (a core each) to feed {gpu['source']};\nper worker: the workers 0 or workers 1 rate, "
          f"as measured on these {profile['mean_utterance_s']:.2f} s utterances and scaled to {gpu['sample_s']:g} s ones")
    lengths = {"": "", f"_at_{gpu['sample_s']:g}_s": f" at {gpu['sample_s']:g} s"}  # key suffix: header suffix
    columns = [("modality", "modality", "s"), ("basis", "per worker", "s")] + [
        (f"{label}{suffix}", f"{label} {target:,.0f}/s{text}", "d")
        for label, target in gpu["samples_per_s"].items() for suffix, text in lengths.items()]
    print(table([{"modality": m, "basis": f"workers {w} ({rate[f'{m} {w}']:,.1f}/s)",
                  **{f"{label}{suffix}": needed[m][f"{label}_workers_{w}_rate{suffix}"]
                     for label in gpu["samples_per_s"] for suffix in lengths}}
                 for m in labels for w in (0, 1)], columns))
    print(f"\nStacked-JPEG decoders alone, one core, on the part's {decode_only['samples']} frame stacks: "
          "samples per CPU second, and the largest pixel difference from PIL:")
    print(table([{"decoder": name, "rate": figures["samples_per_s"], "diff": figures["max_abs_difference_vs_pil"]}
                 for name, figures in decode_only["decoders"].items()],
                [("decoder", "decoder", "s"), ("rate", "samples/s", ",.1f"), ("diff", "max |diff|", "d")]))

    write_json(args.json, {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"torch {torch.__version__}",
        "threads": torch.get_num_threads(), "shards": str(args.shards), "split": args.split, "part": args.part,
        "samples": part.samples, "shard_files": len(part.shards), "bytes_per_sample": bytes_per_sample,
        "mean_utterance_s": profile["mean_utterance_s"], "batch": args.batch, "repeats": args.repeats,
        "floor_samples_per_s": floor, "floor_mb_per_s": floor * bytes_per_sample / 1e6, "floor_passes": passes["floor"],
        **per_modality, "decode_only": decode_only,
        "gpu_samples_per_s": gpu["samples_per_s"], "gpu_sample_s": gpu["sample_s"], "gpu_source": gpu["source"],
        "workers_needed": needed,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

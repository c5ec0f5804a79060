"""`emotrain predict`'s throughput: windows per second on one core, small and paper model, against decoding alone.

On the shards of one part of a split (from `emoprep shard`; default the demo's `data/shards`,
paper, test), one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)), page cache warm:

  floor    reading the tar files and decoding every sample as predict does (JSON, FLAC, stacked
           JPEG -> the network's input), no network: what no predictor can beat
  small    emotrain.predict.predict_shards with the small network (random weights: the cost of a
           forward pass does not depend on them), batches of --batch
  paper    the same with the paper's network (ResNet-50 per frame) on the first --paper-windows
           windows only: it is some 100x slower on a CPU core

Time is this process's CPU time (time.process_time: user + system), not wall time: with one
thread that is the time of one core, and it does not grow when other processes share the
machine's cores (the 2-core VM these figures come from is shared by several). Wall time is
printed beside it. Figures: windows/s per core, audio-seconds/s (windows differ in length; a `clips` window is
6 s, most IEMOCAP utterances shorter), and the ratio to the floor (the share of the time
not spent in the network). Best of --repeats passes, round robin.

    .venv/bin/python benchmarks/predict.py --json benchmarks/results/predict.json
    .venv/bin/python benchmarks/predict.py --shards shards --split paper --part test --paper-windows 4
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # per-core figures; set before torch is imported

import torch
from dataclasses import replace

from shardformat import SAMPLE_RATE

from report import best_times, table, write_json  # benchmarks/report.py: run as scripts, beside it
from emotrain.data import Batch, Part, ShardsError, eval_loader
from emotrain.model import ModelConfig, build_model
from emotrain.predict import Predictor, predict_shards, select_shards


def decoded_windows(selection: Part, batch: int) -> list[Batch]:
    """Every sample of the selection read, decoded and collated as predict does it (the floor's work)."""
    return list(eval_loader(selection, modality="av", batch_size=batch, labelled=False))


def first_windows(selection: Part, limit: int) -> Part:
    """The fewest whole shards of the selection that hold `limit` windows (index.json's counts)."""
    files, total = [], 0
    for name in selection.shards:
        files.append(name)
        total += selection.shard_samples.get(name, limit)
        if total >= limit:
            break
    return replace(selection, shards=tuple(files), samples=total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, default=Path("data/shards"), help="a folder from `emoprep shard`")
    parser.add_argument("--split", default="paper", help="a split of splits.json ('' for every shard)")
    parser.add_argument("--part", default="test", choices=("train", "val", "test"))
    parser.add_argument("--batch", type=int, default=16, help="predict's batch size (default 16, its default)")
    parser.add_argument("--paper-windows", type=int, default=8, help="windows the paper model predicts (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timings are the best of this many passes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        selection = select_shards(args.shards, args.split or None, args.part if args.split else None)
    except ShardsError as exn:
        print(f"{exn} (make one with `make demo`, or pass --shards)", file=sys.stderr)
        return 1
    paper_selection = first_windows(selection, args.paper_windows)
    decoded = {"all": decoded_windows(selection, args.batch), "paper": decoded_windows(paper_selection, args.batch)}
    windows = {name: sum(b.size for b in batches) for name, batches in decoded.items()}
    audio_seconds = {name: sum(f["n_samples"] for b in batches for f in b.fields) / SAMPLE_RATE
                     for name, batches in decoded.items()}
    predictors = {name: Predictor(build_model(ModelConfig(name=name), load_weights=False), torch.device("cpu"))
                  for name in ("small", "paper")}
    print(f"Shards: {args.shards} ({windows['all']} windows, {audio_seconds['all']:.1f} s of audio; the paper "
          f"model on {windows['paper']} of them), batch {args.batch}, 1 thread; best of {args.repeats}",
          file=sys.stderr)
    runs = {
        "floor": lambda: decoded_windows(selection, args.batch),
        "floor (paper's windows)": lambda: decoded_windows(paper_selection, args.batch),
        "small": lambda: predict_shards(predictors["small"], selection, batch_size=args.batch),
        "paper": lambda: predict_shards(predictors["paper"], paper_selection, batch_size=args.batch),
    }
    wall_start = time.perf_counter()
    seconds = best_times(runs, args.repeats, clock=time.process_time)
    wall = time.perf_counter() - wall_start
    print(f"wall time {wall:.1f} s for {sum(seconds.values()):.1f} CPU s of the best passes "
          f"(x{args.repeats} passes)", file=sys.stderr)
    subset = {"floor": "all", "floor (paper's windows)": "paper", "small": "all", "paper": "paper"}
    floor_of = {"all": seconds["floor"], "paper": seconds["floor (paper's windows)"]}
    rows = []
    for name, elapsed in seconds.items():
        which = subset[name]
        rows.append({"reader": name, "windows": windows[which], "seconds": elapsed,
                     "windows_per_s": windows[which] / elapsed,
                     "audio_s_per_s": audio_seconds[which] / elapsed,
                     "x_floor": floor_of[which] / elapsed})
    print(table(rows, [("reader", "reader", ""), ("windows", "windows", "d"), ("seconds", "CPU s", ".2f"),
                       ("windows_per_s", "windows/s/core", ".2f"), ("audio_s_per_s", "audio s/s", ".1f"),
                       ("x_floor", "x floor", ".3f")]))
    write_json(args.json, {"machine": platform.platform(), "cpu_threads": 1, "clock": "process_time", "shards": str(args.shards),
                           "split": args.split, "part": args.part, "batch": args.batch, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

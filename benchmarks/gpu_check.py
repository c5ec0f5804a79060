"""The GPU check: one command that measures on a CUDA machine what the CPU benchmarks only project.

    python benchmarks/gpu_check.py --json benchmarks/results/gpu_check.json     # about 5 minutes

Stages, each in its own process with its own time box (a stage that overruns is killed and
recorded as such; what it measured until then is kept), the JSON rewritten after each:

  train_step  the paper's network (av, dynamic weighting, Adam, clipping), bf16 autocast and
              channels_last as `emotrain fit --device cuda` runs it, on 6 s clips (150 steps),
              batches of 8, 16 and 32: samples/s and peak memory, with the 4,000-tap
              convolution by FFT (emotrain.fftconv) and by cuDNN's direct convolution
  nvjpeg      a batch of 32 stacked JPEGs of 150 frames: torchvision.io.decode_jpeg on CUDA
              (nvJPEG, emotrain's --decode-frames device) against the loader's PIL decode and
              libjpeg-turbo on one CPU core; samples/s and the largest pixel difference
  detectors   emoprep's face detectors on CUDA, frames/s on 720x480 frames (skipped, with a
              note, where emoprep or a detector's weights are not installed)
  fit         synthetic shards (tests/emotrain/shard_factory.py), `emotrain fit --device cuda
              --decode-frames device` for one epoch, then `emotrain evaluate`
  torchrun    the same fit under torchrun, one process per GPU present, NCCL

Without CUDA it prints one line beginning `no CUDA device` and exits with status 2 at once.
`--cpu-smoke` runs every stage on the CPU at toy sizes: for developing this script on a
machine without a GPU; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCE_DIRS = [ROOT / "training", ROOT / "shards", ROOT / "pipeline", ROOT]  # a checkout runs without an install
DEFAULT_JSON = HERE / "results" / "gpu_check.json"
# Seconds per stage; with process start-up they add up to under 5 minutes.
BUDGETS = {"train_step": 100, "nvjpeg": 25, "detectors": 35, "fit": 70, "torchrun": 50}
STEPS = 150  # 6 s clips
BATCHES = (8, 16, 32)
TIMED_STEPS = 5
TAIL = 1500  # characters of a failed command's output kept in the JSON


def child_env() -> dict[str, str]:
    paths = [str(p) for p in SOURCE_DIRS] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class StageOutput:
    """A stage's figures, rewritten to its file after every measurement (a killed stage keeps them)."""

    def __init__(self, path: Path) -> None:
        self.path, self.figures = path, {}

    def put(self, key: str, value: object) -> None:
        self.figures[key] = value
        self.path.write_text(json.dumps(self.figures, indent=2))


# ---------------------------------------------------------------- stages (run in a child process)


def synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage_train_step(out: StageOutput, device, smoke: bool, work: Path) -> None:
    import numpy as np
    import torch
    from train_step import shard_sample  # benchmarks/train_step.py: realistic shard bytes

    from emotrain.config import TrainConfig
    from emotrain.data import collate, decode_sample
    from emotrain.objective import build_objective, prepare_for_device, score

    steps, batches, model = (10, (2,), "small") if smoke else (STEPS, BATCHES, "paper")
    rng = np.random.default_rng(0)
    raw = [shard_sample(f"Ses01F_impro01_F{i:03d}", steps, rng) for i in range(max(batches))]
    examples = [decode_sample(r, "av") for r in raw]
    out.put("setup", {"model": model, "steps": steps, "clip_s": steps * 0.04, "timed_steps": TIMED_STEPS,
                      "autocast": "bf16" if device.type == "cuda" else "off", "memory_format": "channels_last"})
    for mode in ("fft", "direct"):
        cfg = TrainConfig(shards="-", split="-", out="-", model=model, audio_conv=mode)
        torch.manual_seed(0)
        objective = prepare_for_device(build_objective(cfg), device).train()
        optimizer = torch.optim.Adam(objective.parameters(), lr=1e-4)
        for size in batches:
            key = f"{mode}_batch_{size}"
            batch = collate(examples[:size]).to(device)
            try:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                for number in range(2 + TIMED_STEPS):  # two untimed: cuDNN's algorithm search, allocator
                    if number == 2:
                        synchronize(device)
                        start = time.perf_counter()
                    optimizer.zero_grad(set_to_none=True)
                    score(objective, batch).joint.backward()
                    torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
                    optimizer.step()
                synchronize(device)
                seconds = (time.perf_counter() - start) / TIMED_STEPS
                peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
                out.put(key, {"step_s": seconds, "samples_per_s": size / seconds, "peak_memory_gib": peak})
            except torch.OutOfMemoryError:
                out.put(key, {"error": "out of memory"})
                torch.cuda.empty_cache()
        del objective, optimizer


def stage_nvjpeg(out: StageOutput, device, smoke: bool, work: Path) -> None:
    import numpy as np
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg
    from train_step import shard_sample

    from shardformat.reader import decode_frames
    from emotrain.data import decode_frames_batch

    steps, size = (10, 4) if smoke else (STEPS, 32)
    rng = np.random.default_rng(0)
    jpegs = [shard_sample(f"k{i}", steps, rng).members["frames.jpg"] for i in range(size)]
    tensors = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    torch.set_num_threads(1)

    def rate(decode: Callable[[], object], repeats: int = 3) -> float:
        decode()  # warm-up: nvJPEG's handles, caches
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            decode()
            synchronize(device)
            best = min(best, time.perf_counter() - start)
        return size / best

    out.put("setup", {"samples": size, "frames_per_sample": steps, "jpeg_bytes_per_sample": sum(map(len, jpegs)) / size})
    out.put("cpu_pil_samples_per_s_one_core", rate(lambda: [decode_frames(j, steps) for j in jpegs]))
    out.put("cpu_libjpeg_turbo_samples_per_s_one_core",
            rate(lambda: [decode_jpeg(t, mode=ImageReadMode.RGB) for t in tensors]))
    lengths = [steps] * size
    out.put(f"{device.type}_batch_decode_samples_per_s",
            rate(lambda: decode_frames_batch(tensors, lengths, lengths, device)))
    on_device = decode_frames_batch(tensors, lengths, lengths, device).cpu()
    reference = torch.from_numpy(np.stack([decode_frames(j, steps) for j in jpegs])).permute(0, 1, 4, 2, 3)
    out.put("max_abs_difference_vs_pil", int((on_device.int() - reference.int()).abs().max()))


def stage_detectors(out: StageOutput, device, smoke: bool, work: Path) -> None:
    import numpy as np

    try:
        from emoprep.media import faces
    except ImportError as exn:
        out.put("note", f"emoprep is not installed here ({exn}); face detectors not measured")
        return
    rng = np.random.default_rng(0)
    count = 8 if smoke else 64
    coarse = rng.integers(0, 256, (count, 30, 45, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)  # (N, 480, 720, 3), smooth like video
    for name in faces.DETECTORS:
        if name == "fixed":
            continue
        try:
            spec = faces.resolve(faces.DetectorSpec(name=name, device=device.type))
            detector = faces.build_detector(spec)
            detector.detect(frames[:4])  # warm-up
            start = time.perf_counter()
            detector.detect(frames)
            out.put(name, {"frames_per_s": count / (time.perf_counter() - start), "frame": "720x480",
                           "device": device.type})
        except Exception as exn:  # noqa: BLE001: a detector that cannot run here is a note, not a failure
            out.put(name, {"skipped": f"{type(exn).__name__}: {exn}"[:TAIL]})


def make_check_shards(work: Path, smoke: bool) -> Path:
    from tests.emotrain.shard_factory import make_shards

    root = work / "shards"
    if not (root / "splits.json").exists():
        sizes = {"train": [4, 4], "val": [4], "test": [4]} if smoke else {"train": [16] * 4, "val": [8, 8], "test": [8, 8]}
        make_shards(root, sizes, seconds=(0.3, 0.6) if smoke else (1.0, 3.0))
    return root


def run_command(command: list[str], timeout: float) -> dict:
    """Run a command in its own process group; past `timeout` the whole group is killed (torchrun's workers too)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(),
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"status": f"timed out after {timeout:g} s", "command": " ".join(command)}
    result = {"status": "ok" if process.returncode == 0 else f"exit {process.returncode}",
              "wall_s": time.perf_counter() - start, "command": " ".join(command)}
    if process.returncode:
        result["output_tail"] = output[-TAIL:]
    return result


def fit_command(shards: Path, run: Path, device, smoke: bool) -> list[str]:
    model = ["--model", "small", "--batch-size", "4"] if smoke else ["--model", "paper", "--batch-size", "16"]
    return ["-m", "emotrain.cli", "fit", "--shards", str(shards), "--split", "paper", "--out", str(run),
            "--epochs", "1", "--device", device.type, "--workers", "2", "--decode-frames", "device", *model]


def last_rows(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: r[k] for k in ("part", "samples", "samples_per_s", "joint_loss", "emotion_ua") if k in r} for r in rows]


def stage_fit(out: StageOutput, device, smoke: bool, work: Path) -> None:
    shards = make_check_shards(work, smoke)
    run = work / "run-fit"
    out.put("fit", run_command([sys.executable, *fit_command(shards, run, device, smoke)], BUDGETS["fit"] - 30))
    out.put("fit_metrics", last_rows(run))
    out.put("evaluate", run_command([sys.executable, "-m", "emotrain.cli", "evaluate", "--run", str(run), "--split",
                                     "paper", "--part", "test", "--checkpoint", "last", "--device", device.type,
                                     "--out", str(work / "eval.json")], 20))
    if (work / "eval.json").is_file():
        scores = json.loads((work / "eval.json").read_text())
        out.put("evaluate_metrics", {k: scores[k] for k in ("samples", "emotion_ua", "gender_acc", "samples_per_s")})


def stage_torchrun(out: StageOutput, device, smoke: bool, work: Path) -> None:
    import torch

    shards = make_check_shards(work, smoke)
    run = work / "run-torchrun"
    processes = torch.cuda.device_count() if device.type == "cuda" else 2
    out.put("processes", processes)
    out.put("backend", "nccl" if device.type == "cuda" else "gloo")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               *fit_command(shards, run, device, smoke)]
    out.put("torchrun", run_command(command, BUDGETS["torchrun"] - 10))
    out.put("fit_metrics", last_rows(run))


STAGES: dict[str, Callable[[StageOutput, object, bool, Path], None]] = {
    "train_step": stage_train_step, "nvjpeg": stage_nvjpeg, "detectors": stage_detectors,
    "fit": stage_fit, "torchrun": stage_torchrun,
}


def run_stage(name: str, out: Path, smoke: bool, work: Path) -> int:
    sys.path[:0] = [str(p) for p in SOURCE_DIRS] + [str(HERE)]
    import torch

    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    device = torch.device("cpu" if smoke else "cuda")
    STAGES[name](StageOutput(out), device, smoke, work)
    return 0


# ---------------------------------------------------------------- the parent: time boxes and the JSON


def machine(torch) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu_cores": os.cpu_count(),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"figures (default {DEFAULT_JSON})")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset, in this order")
    parser.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU, to develop this script")
    parser.add_argument("--run-stage", choices=list(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--stage-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_stage:
        return run_stage(args.run_stage, args.stage_out, args.cpu_smoke, args.work)

    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("no CUDA device: torch.cuda.is_available() is False; run this on a GPU machine "
              "(--cpu-smoke only tests the script)")
        return 2
    stages = [s for s in args.stages.split(",") if s]
    if unknown := set(stages) - set(STAGES):
        parser.error(f"--stages: unknown {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    figures = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(torch),
               "cpu_smoke": args.cpu_smoke, "budgets_s": BUDGETS, "stages": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        work = Path(scratch)
        for name in stages:
            print(f"{name} (at most {BUDGETS[name]} s) ...", file=sys.stderr, flush=True)
            stage_json = work / f"{name}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--run-stage", name, "--stage-out",
                       str(stage_json), "--work", str(work)] + (["--cpu-smoke"] if args.cpu_smoke else [])
            result = run_command(command, BUDGETS[name])
            if stage_json.is_file():
                result["figures"] = json.loads(stage_json.read_text())
            figures["stages"][name] = result
            figures["wall_s"] = time.perf_counter() - started
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2) + "\n")  # partial results as it goes
            print(f"  {result['status']}: {json.dumps(result.get('figures', {}))[:400]}", file=sys.stderr)
    failed = [n for n, r in figures["stages"].items() if r["status"] != "ok"]
    print(f"gpu check: {len(stages) - len(failed)} of {len(stages)} stages ok in {figures['wall_s']:.0f} s"
          + (f" (not ok: {', '.join(failed)})" if failed else "") + f"; wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

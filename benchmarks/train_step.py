"""One training step of the paper's network on CPU, timed in parts, with the long convolution by FFT and direct.

Parts of a step (batch of `--batch` utterances of `--steps` 40 ms steps):
  data       decode the batch's samples from shard-format bytes (FLAC audio, one
             stacked JPEG of frames, JSON) with emotrain.data.decode_sample and
             collate them; the bytes are generated in memory (no tar I/O). In
             training this runs in loader workers, beside the model's work.
  audio      the audio branch's forward (conv 80, pool, the 4000-tap conv, channel pool)
  visual     the frame branch's forward (ResNet-50 on every valid frame)
  lstm+heads LSTM, heads, cross-entropies and the dynamic joint loss
  backward   loss.backward() through everything
  optimizer  gradient clipping at 1.0 and an Adam step (the paper's recipe)
Both models hold the same weights; only LongConv1d's mode differs.

Also per sample (counted, not timed): FLOPs of each branch, forward + backward,
from torch.utils.flop_counter on the meta device (the FFT path's FLOPs are not
counted by it and are estimated analytically), activation memory saved for
backward (float32; about half under bf16 autocast), and what they imply for one
H100 under a stated utilisation: a projection for planning, not a measurement.

    python benchmarks/train_step.py --json benchmarks/results/train_step.json
    python benchmarks/train_step.py --steps 25 --modes fft      # a quick run
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from report import write_json  # benchmarks/report.py: run as scripts, beside it
from emotrain.data import collate, decode_sample
from emotrain.fftconv import next_fast_len, same_padding
from emotrain.model import MODEL_NAMES, ModelConfig, build_model
from emotrain.weighting import build_weighting
from shardformat import FRAME_SIZE, SAMPLE_KEYS, SAMPLE_RATE, SAMPLES_PER_FRAME
from shardformat.reader import RawSample

PARTS = ("data", "audio", "visual", "lstm+heads", "backward", "optimizer")

# The projection's assumptions (H100 SXM): dense BF16 tensor-core peak and HBM3 bandwidth,
# and the fractions of them a training step sustains. ResNet-50 and large convolutions
# reach 40% of peak with cuDNN and channels_last; the FFT path streams complex spectra
# and is bandwidth bound.
H100_BF16_FLOPS = 989e12
H100_BANDWIDTH = 3.35e12
COMPUTE_UTILISATION = 0.40
BANDWIDTH_UTILISATION = 0.50


def shard_sample(key: str, steps: int, rng: np.random.Generator) -> RawSample:
    """A raw sample as the format's reader yields it from a shard: JSON, FLAC and stacked-JPEG bytes."""
    samples = steps * SAMPLES_PER_FRAME
    audio = (rng.standard_normal(samples) * 3000).astype(np.int16)
    flac = io.BytesIO()
    sf.write(flac, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    # Smooth frames (12x12 blocks upsampled, plus noise) compress like face crops, not like noise.
    coarse = rng.integers(0, 256, (steps, 12, 12, 3))
    frames = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2) + rng.integers(-8, 9, (steps, FRAME_SIZE, FRAME_SIZE, 3))
    jpeg = io.BytesIO()
    Image.fromarray(frames.clip(0, 255).astype(np.uint8).reshape(steps * FRAME_SIZE, FRAME_SIZE, 3)).save(jpeg, "JPEG", quality=90)
    meta = dict.fromkeys(SAMPLE_KEYS[1]) | {"format_version": 1, "utterance_id": key, "emotion": "neu",
                                             "gender": "F", "n_samples": samples, "n_frames": steps}
    return RawSample(key, "synthetic.tar", {"json": json.dumps(meta).encode(), "flac": flac.getvalue(),
                                            "frames.jpg": jpeg.getvalue()})


def timed_step(model, weighting, optimizer, raw: list[RawSample], modality: str) -> dict[str, float]:
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[part] = now - clock
        clock = now

    batch = collate([decode_sample(sample, modality) for sample in raw])
    lap("data")
    parts = []
    if model.audio is not None:
        parts.append(model.audio(batch.audio, batch.lengths))
    lap("audio")
    if model.visual is not None:
        parts.append(model.visual(batch.frames, batch.lengths))
    lap("visual")
    emotion, gender = model.heads(torch.cat(parts, dim=-1), batch.lengths)
    loss = weighting({"emotion": F.cross_entropy(emotion, batch.emotion), "gender": F.cross_entropy(gender, batch.gender)})
    lap("lstm+heads")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    lap("backward")
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    lap("optimizer")
    times["total"] = sum(times[p] for p in PARTS)
    return times


def measure(config: ModelConfig, state: dict, raw: list[RawSample], repeat: int) -> dict[str, float]:
    model = build_model(config).train()
    model.load_state_dict(state)
    weighting = build_weighting("dynamic")
    optimizer = torch.optim.Adam(list(model.parameters()) + list(weighting.parameters()), lr=1e-4)
    runs = [timed_step(model, weighting, optimizer, raw, config.modality) for _ in range(repeat)]
    return min(runs, key=lambda r: r["total"])


def counted_flops(fn) -> float:
    """FLOPs of fn()'s forward and of its backward, on meta tensors (nothing is computed)."""
    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    forward = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        out.float().sum().backward()
    return forward + counter.get_total_flops()


def saved_bytes(fn) -> float:
    """Bytes of the tensors fn()'s forward saves for backward: the activation memory of a training step."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return total


def lstm_flops(config: ModelConfig, steps: int) -> float:
    """LSTM + heads, forward and backward (backward = 2x forward), per sample: 2 FLOPs a multiply-add."""
    forward = 0
    for layer in range(config.lstm_layers):
        inputs = config.lstm_input if layer == 0 else config.lstm_hidden
        forward += 2 * 4 * config.lstm_hidden * (inputs + config.lstm_hidden) * steps
    forward += 2 * config.lstm_hidden * 6
    return 3 * forward


def fft_path_estimate(config: ModelConfig, steps: int) -> dict[str, float]:
    """The FFT long convolution, forward + backward: FLOPs and bytes moved, per step (weights) and per sample.

    FLOPs: 2.5 n log2 n per real transform of length n, 8 per complex multiply-add.
    Per training step, once: the weight's transform (in*out channels) forward and
    its gradient's inverse backward. Per sample: 5 transforms of in or out channels
    and 3 batched complex matmuls (forward, grad input, grad weight) over F bins.
    Bytes: the in*out x F complex64 weight spectrum is written, copied bin-major,
    read by 2 matmuls, its gradient written, copied and read (about 8 passes); the
    per-sample spectra and signals about 12 passes each.
    """
    channels = config.audio_channels
    length = steps * SAMPLES_PER_FRAME // 2
    _, right = same_padding(config.audio_long_kernel)
    n = next_fast_len(max(length + right, config.audio_long_kernel))
    bins = n // 2 + 1
    transform = 2.5 * n * math.log2(n)
    return {
        "per_step_flops": 2 * channels * channels * transform,
        "per_sample_flops": 5 * channels * transform + 3 * 8 * bins * channels * channels,
        "per_step_bytes": 8 * channels * channels * bins * 8,
        "per_sample_bytes": 12 * channels * bins * 8,
    }


def per_sample_counts(config: ModelConfig, steps: int) -> dict[str, float]:
    """FLOPs (forward + backward) and saved activation bytes per sample, by branch, counted on meta tensors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        with torch.device("meta"):
            direct = build_model(replace(config, audio_conv="direct", visual_weights=None))
            fft = build_model(replace(config, audio_conv="fft", visual_weights=None))
        audio = torch.zeros(1, steps * SAMPLES_PER_FRAME, device="meta")
        frames = torch.zeros(steps, 3, FRAME_SIZE, FRAME_SIZE, device="meta")
        lengths = torch.full((1,), steps, dtype=torch.int64)
        counts: dict[str, float] = {"lstm_flops": lstm_flops(config, steps)}
        if direct.audio is not None:
            conv1 = direct.audio.conv1
            counts["audio_direct_flops"] = counted_flops(lambda: direct.audio(audio, lengths))
            counts["audio_conv1_flops"] = counted_flops(lambda: conv1(audio[:, None, :]))
            counts["audio_direct_bytes"] = saved_bytes(lambda: direct.audio(audio, lengths))
            counts["audio_fft_bytes"] = saved_bytes(lambda: fft.audio(audio, lengths))
        if direct.visual is not None:
            # The trunk on the frames themselves: boolean selection of valid frames has no meta kernel.
            counts["visual_flops"] = counted_flops(lambda: direct.visual.trunk(frames))
            counts["visual_bytes"] = saved_bytes(lambda: direct.visual.trunk(frames))
    return counts


def projection(config: ModelConfig, steps: int, counts: dict[str, float], batch: int) -> dict[str, float]:
    """Implied H100 time of a training step of `batch` samples, FFT on and off (seconds)."""
    compute = H100_BF16_FLOPS * COMPUTE_UTILISATION
    bandwidth = H100_BANDWIDTH * BANDWIDTH_UTILISATION
    shared = counts["lstm_flops"] + counts.get("visual_flops", 0.0)
    result = {}
    if "audio_direct_flops" in counts:
        fft = fft_path_estimate(config, steps)
        fft_time = (fft["per_step_bytes"] + batch * fft["per_sample_bytes"]) / bandwidth
        result["h100_direct_step_s"] = batch * (shared + counts["audio_direct_flops"]) / compute
        result["h100_fft_step_s"] = batch * (shared + counts["audio_conv1_flops"]) / compute + fft_time
        result["fft_path_flops_per_sample"] = fft["per_sample_flops"] + fft["per_step_flops"] / batch
    else:
        result["h100_step_s"] = batch * shared / compute
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODEL_NAMES, default="paper")
    parser.add_argument("--modality", choices=("av", "a", "v"), default="av")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="40 ms steps per utterance (150 = 6 s, 96,000 samples)")
    parser.add_argument("--modes", default="fft,direct", help="long-convolution modes to time, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="steps timed with the FFT; the fastest counts")
    parser.add_argument("--repeat-direct", type=int, default=1, help="steps timed with direct convolution (minutes each)")
    parser.add_argument("--h100-batch", type=int, default=32, help="batch size for the H100 projection")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    base = ModelConfig(name=args.model, modality=args.modality)
    state = build_model(base).state_dict()
    raw = [shard_sample(f"Ses01F_impro01_F{i:03d}", args.steps, rng) for i in range(args.batch)]
    figures: dict = {
        "model": args.model, "modality": args.modality, "batch": args.batch, "steps": args.steps,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(), "modes": {},
    }
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if base.modality == "v" and mode != modes[0]:
            break  # no audio branch: the mode changes nothing
        config = replace(base, audio_conv=mode)
        print(f"timing a training step of {args.model} {args.modality}, batch {args.batch} x {args.steps} steps, "
              f"long conv {mode} ...", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
            times = measure(config, state, raw, args.repeat if mode == "fft" else args.repeat_direct)
        figures["modes"][mode] = {part: round(value, 3) for part, value in times.items()}

    counts = per_sample_counts(base, args.steps)
    figures["per_sample"] = {
        key: round(value / (1e9 if key.endswith("flops") else 2**30), 3) for key, value in counts.items()
    }
    figures["per_sample_units"] = "GFLOP forward+backward (*_flops); GiB saved for backward in float32 (*_bytes)"
    figures["h100_batch"] = args.h100_batch
    figures["h100_assumptions"] = (
        f"{args.h100_batch} samples a step; dense BF16 peak {H100_BF16_FLOPS / 1e12:.0f} TFLOP/s at "
        f"{COMPUTE_UTILISATION:.0%}; FFT path bandwidth bound at {BANDWIDTH_UTILISATION:.0%} of {H100_BANDWIDTH / 1e12:.2f} TB/s; "
        "data loading overlapped"
    )
    figures["h100_projection"] = {
        key: (round(value, 4) if key.endswith("_s") else round(value / 1e9, 2))
        for key, value in projection(base, args.steps, counts, args.h100_batch).items()
    }

    header = f"{'mode':8}" + "".join(f"{part:>12}" for part in (*PARTS, "total"))
    print(header)
    for mode, times in figures["modes"].items():
        print(f"{mode:8}" + "".join(f"{times[part]:>12.3f}" for part in (*PARTS, "total")))
    if {"fft", "direct"} <= set(figures["modes"]):
        figures["speedup"] = round(figures["modes"]["direct"]["total"] / figures["modes"]["fft"]["total"], 1)
        print(f"step speedup with the FFT convolution: {figures['speedup']}x")
    print("per sample:", ", ".join(f"{k} {v}" for k, v in figures["per_sample"].items()), f"({figures['per_sample_units']})")
    print("H100 projection:", ", ".join(f"{k} {v}" for k, v in figures["h100_projection"].items()))
    print("  assuming", figures["h100_assumptions"])
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's long audio convolution, direct against FFT, forward + backward, in the same run.

Default size is the paper's: a batch of 4 utterances of 6 s, i.e. 48,000 positions at
8 kHz after the first conv and pool, 40 -> 40 channels, k = 4000, 'same' padding.
Both sides compute the same function with the same parameters (emotrain.fftconv.LongConv1d
in mode "direct" = F.conv1d, and mode "fft"), in float32, on the same input and
upstream gradient. The error is the FFT result's against the direct one's, each
relative to the largest magnitude of the direct result, over the output and the
gradients of input, weight and bias (tests/emotrain/test_fftconv.py checks the
FFT against float64 at small sizes).

A third side, fft_autograd, computes the same FFT product but lets autograd derive
the backward: the measurement behind fftconv's written-out backward.

Figures: direct_s and fft_s (best wall time of forward + backward over the repeats),
their forward/backward split, CPU seconds of this process (wall times swing when
other jobs share the cores), speedup = direct_s / fft_s, max_rel_err.

The direct convolution takes about a CPU-minute per 6 s utterance, and far longer batched
(below). With
--direct-batch / --direct-length it runs on the first utterances and positions of the
same input instead, and its times are scaled by (batch x length) / (direct batch x
direct length): with 'same' padding every output position costs the same
C_in x C_out x k multiply-adds, so the direct work is exactly proportional to it
(direct_measured_* keep the unscaled figures). The error is then measured on that
sub-size, against the FFT run on the same sub-size.

Scaled this way, direct_s is what the direct convolution costs one utterance at a time:
a lower bound for one batched call, so the speedup is a lower bound too. At this size a
batched call falls off oneDNN's fast path on CPU (torch 2.14.1, 2 cores, no grad):
1 x 48,000 positions took 7.4 s and 2 x 24,000 8.1 s, but 2 x 36,000 and 2 x 48,000 did
not finish within 100 s. Over the length the scaling overestimates a little, since a
sub-size still pays for its padding (1 x 6,000 positions: 20% above 1 x 24,000 per position).

    python benchmarks/audio_conv.py --direct-batch 1 --json benchmarks/results/audio_conv.json   # ~3 min
    python benchmarks/audio_conv.py --batch 1 --length 8000     # a quick run, everything measured
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import torch

from report import write_json  # benchmarks/report.py: run as scripts, beside it
from emotrain.fftconv import LongConv1d, next_fast_len, same_padding


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class AutogradFFTConv(torch.nn.Module):
    """The same FFT product as LongConv1d(mode="fft") with autograd deriving the backward: the
    baseline that motivated fftconv's written-out backward."""

    def __init__(self, conv: LongConv1d) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, kernel = x.shape[-1], self.weight.shape[-1]
        _, right = same_padding(kernel)
        n = next_fast_len(max(length + right, kernel))
        x_spec = torch.fft.rfft(x, n=n).permute(2, 0, 1)
        w_spec = torch.fft.rfft(self.weight.flip(-1), n=n).permute(2, 1, 0)
        y_spec = torch.matmul(x_spec.contiguous(), w_spec.contiguous()).permute(1, 2, 0)
        return torch.fft.irfft(y_spec, n=n)[..., right : right + length] + self.bias[:, None]


def run_once(conv: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> dict:
    """One forward + backward; times and the results (output, grads of input, weight, bias)."""
    conv.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    device = x.device
    synchronize(device)
    wall, cpu = time.perf_counter(), cpu_seconds()
    y = conv(x)
    synchronize(device)
    forward = time.perf_counter() - wall
    y.backward(grad)
    synchronize(device)
    total = time.perf_counter() - wall
    return {
        "forward_s": forward,
        "backward_s": total - forward,
        "total_s": total,
        "cpu_s": cpu_seconds() - cpu,
        "results": (y.detach(), x.grad, conv.weight.grad.clone(), conv.bias.grad.clone()),
    }


def measure(conv: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor, repeat: int) -> dict:
    runs = [run_once(conv, x, grad) for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r["total_s"])
    return {**fastest, "cpu_s": min(r["cpu_s"] for r in runs)}


def max_relative_error(values: tuple, references: tuple) -> float:
    return max(
        ((v.double() - r.double()).abs().max() / r.double().abs().max().clamp_min(1e-30)).item()
        for v, r in zip(values, references)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=48_000, help="positions at 8 kHz (48,000 = 6 s)")
    parser.add_argument("--channels", type=int, default=40)
    parser.add_argument("--kernel", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3, help="FFT rounds; the fastest counts")
    parser.add_argument("--repeat-direct", type=int, default=1, help="direct rounds (minutes each at full size on 2 cores)")
    parser.add_argument("--direct-batch", type=int, help="run the direct conv on this many utterances and scale (default: all)")
    parser.add_argument("--direct-length", type=int, help="run the direct conv on this many positions and scale (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    direct = LongConv1d(args.channels, args.channels, args.kernel, mode="direct").to(device)
    fft = LongConv1d(args.channels, args.channels, args.kernel, mode="fft").to(device)
    fft.load_state_dict(direct.state_dict())
    x = torch.randn(args.batch, args.channels, args.length, device=device)
    grad = torch.randn(args.batch, args.channels, args.length, device=device)

    print(f"conv {args.channels}->{args.channels} k={args.kernel} on {args.batch} x {args.length} "
          f"({device}, {torch.get_num_threads()} threads): FFT, FFT with autograd's backward, then direct ...", file=sys.stderr)
    fft_run = measure(fft, x, grad, args.repeat)
    autograd_run = measure(AutogradFFTConv(fft), x, grad, args.repeat)
    direct_batch = min(args.direct_batch or args.batch, args.batch)
    direct_length = min(args.direct_length or args.length, args.length)
    scale = (args.batch * args.length) / (direct_batch * direct_length)
    x_direct = x[:direct_batch, :, :direct_length].contiguous()
    grad_direct = grad[:direct_batch, :, :direct_length].contiguous()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        direct_run = measure(direct, x_direct, grad_direct, args.repeat_direct)
    reference = fft_run if scale == 1 else measure(fft, x_direct, grad_direct, 1)
    autograd_reference = autograd_run if scale == 1 else measure(AutogradFFTConv(fft), x_direct, grad_direct, 1)

    _, right = same_padding(args.kernel)
    figures = {
        "batch": args.batch,
        "length": args.length,
        "channels": args.channels,
        "kernel": args.kernel,
        "n_fft": next_fast_len(max(args.length + right, args.kernel)),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "direct_batch": direct_batch,
        "direct_length": direct_length,
        "direct_scale": round(scale, 3),
        "direct_measured_s": round(direct_run["total_s"], 3),
        "direct_measured_cpu_s": round(direct_run["cpu_s"], 3),
        "direct_s": round(scale * direct_run["total_s"], 3),
        "direct_forward_s": round(scale * direct_run["forward_s"], 3),
        "direct_backward_s": round(scale * direct_run["backward_s"], 3),
        "direct_cpu_s": round(scale * direct_run["cpu_s"], 3),
        "fft_s": round(fft_run["total_s"], 3),
        "fft_forward_s": round(fft_run["forward_s"], 3),
        "fft_backward_s": round(fft_run["backward_s"], 3),
        "fft_cpu_s": round(fft_run["cpu_s"], 3),
        "fft_autograd_s": round(autograd_run["total_s"], 3),
        "fft_autograd_forward_s": round(autograd_run["forward_s"], 3),
        "fft_autograd_backward_s": round(autograd_run["backward_s"], 3),
        "fft_autograd_cpu_s": round(autograd_run["cpu_s"], 3),
        "speedup": round(scale * direct_run["total_s"] / fft_run["total_s"], 1),
        "cpu_speedup": round(scale * direct_run["cpu_s"] / fft_run["cpu_s"], 1),
        "max_rel_err": float(f"{max_relative_error(reference['results'], direct_run['results']):.3g}"),
        "autograd_max_rel_err": float(f"{max_relative_error(autograd_reference['results'], direct_run['results']):.3g}"),
        "direct_gflop": round(3 * 2 * args.batch * args.length * args.channels**2 * args.kernel / 1e9, 1),
    }
    print(f"{'':13} {'forward s':>10} {'backward s':>11} {'total s':>9} {'cpu s':>9}")
    for name in ("direct", "fft", "fft_autograd"):
        print(f"{name:13} {figures[name + '_forward_s']:>10} {figures[name + '_backward_s']:>11} "
              f"{figures[name + '_s']:>9} {figures[name + '_cpu_s']:>9}")
    if scale != 1:
        print(f"direct measured on {direct_batch} x {direct_length} ({figures['direct_measured_s']} s) and scaled x{figures['direct_scale']}")
    print(f"speedup {figures['speedup']}x (cpu {figures['cpu_speedup']}x), max relative error {figures['max_rel_err']} "
          f"(autograd variant {figures['autograd_max_rel_err']}), "
          f"direct work {figures['direct_gflop']} GFLOP forward + backward")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

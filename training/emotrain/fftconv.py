"""The long audio convolution as an FFT product: the same function as nn.Conv1d(padding="same").

The paper's second audio convolution has a 4,000-tap kernel. Computed directly it
costs in*out*k multiply-adds per output position (about 0.6 TFLOP per 6 s sample);
as a product of spectra it costs a few FFTs plus in*out complex multiply-adds per
frequency bin, independent of k.

`LongConv1d` holds exactly nn.Conv1d's parameters (`weight` (out, in, k), `bias`
(out,)) so a state dict moves between the two, and computes either way:

  mode "direct"  F.conv1d(padding="same")
  mode "fft"     rfft -> per-bin channel mixing -> irfft, with a written-out backward
  mode "auto"    `choose_conv_mode(device, kernel_size)` at each call

`choose_conv_mode` is the one place the choice is made; see its docstring.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONV_MODES = ("direct", "fft", "auto")

# The smallest kernel for which "auto" takes the FFT path on CUDA. A projection, not
# a measurement (no GPU was available when this was written). On an H100 (bf16,
# 40% of peak) a 40 -> 40 direct convolution over a batch of 32 x 6 s costs about
# 37 us per kernel tap, forward + backward: ~150 ms at k=4000. The FFT path does not
# grow with k; it is bandwidth bound at a few ms (the 40x40 weight spectra, ~0.3 GB,
# pass through memory about 8 times). They cross near k=100; 256 leaves a margin
# for cuDNN's better kernels at small k and for short utterances.
# Re-measure with benchmarks/audio_conv.py --device cuda --kernel K and move this if needed.
CUDA_FFT_MIN_KERNEL = 256


def choose_conv_mode(device: torch.device, kernel_size: int) -> str:
    """Decide "direct" or "fft" for mode "auto".

    CPU: always "fft". Measured on 2 cores (forward + backward, batch 2-4 of 6 s):
    8 -> 8 channels at k=100 and k=400, FFT 9x and 16x faster; 40 -> 40 at k=4000,
    68x against direct called one utterance at a time, and far more against one batched
    call, which leaves oneDNN's fast path at that size (benchmarks/README.md). Only near
    k=80 with 40 channels are the two about even, and below that the layer is cheap either way.
    CUDA (and anything else): "fft" for kernel_size >= CUDA_FFT_MIN_KERNEL, else
    "direct" (a projection; see CUDA_FFT_MIN_KERNEL).
    """
    if device.type == "cpu":
        return "fft"
    return "fft" if kernel_size >= CUDA_FFT_MIN_KERNEL else "direct"


def next_fast_len(n: int) -> int:
    """The smallest m >= n whose only prime factors are 2, 3 and 5 (fast for pocketfft, MKL and cuFFT)."""
    if n < 1:
        raise ValueError(f"FFT length must be positive, got {n}")
    best = 1 << (n - 1).bit_length()  # a power of two always qualifies
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < n:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(left, right) zero padding of PyTorch's padding="same": the extra tap of an even kernel goes right."""
    total = kernel_size - 1
    return total // 2, total - total // 2


class _FFTConv1dSame(torch.autograd.Function):
    """conv1d(x, w, padding="same") without bias, by FFT, with a hand-written backward.

    conv1d is a cross-correlation, y[t] = sum_j w[j] x[t + j - left]. With the kernel
    reversed (v = flip(w)) it is a true convolution whose full output, shifted by
    `right`, is y: y[t] = full[t + right]. A circular convolution of size n equals
    `full` on the indices we keep as long as n >= L + right (the wrapped tail then
    lies beyond the last full index L + k - 2).

    Spectra are kept bin-major, (F, B, in) and (F, in, out), so the channel mixing
    is one batched matmul over bins. The backward is written out because autograd
    through rfft/bmm was 4-6x slower here: it differentiates the weight's rfft with a
    full complex FFT and resolves conjugate views one bin at a time (tens of
    thousands of small copies). Written out, the adjoints are circular
    correlations: with G the spectrum of the output gradient placed at `right`,
      grad_x = irfft(G conj(V))[:L]  (summed over out)
      grad_v = irfft(G conj(X))[:k]  (summed over the batch), grad_w = flip(grad_v).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, n_fft: int) -> Tensor:
        length, kernel_size = x.shape[-1], weight.shape[-1]
        _, right = same_padding(kernel_size)
        x_spec = torch.fft.rfft(x, n=n_fft).permute(2, 0, 1).contiguous()  # (F, B, in)
        w_spec = torch.fft.rfft(weight.flip(-1), n=n_fft).permute(2, 1, 0).contiguous()  # (F, in, out)
        y_spec = torch.bmm(x_spec, w_spec)  # (F, B, out)
        y = torch.fft.irfft(y_spec.permute(1, 2, 0), n=n_fft)[..., right : right + length]
        ctx.save_for_backward(x_spec, w_spec)
        ctx.sizes = (length, kernel_size, n_fft)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x_spec, w_spec = ctx.saved_tensors
        length, kernel_size, n_fft = ctx.sizes
        _, right = same_padding(kernel_size)
        placed = F.pad(grad_y, (right, n_fft - right - length))
        g_spec = torch.fft.rfft(placed).permute(2, 0, 1).contiguous()  # (F, B, out)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            # G conj(V) summed over out == conj(conj(G) V^T); conjugating the small
            # operand keeps the big one a plain transposed view.
            gx_spec = torch.bmm(g_spec.conj_physical(), w_spec.transpose(1, 2)).conj_physical()  # (F, B, in)
            grad_x = torch.fft.irfft(gx_spec.permute(1, 2, 0), n=n_fft)[..., :length]
        if ctx.needs_input_grad[1]:
            gv_spec = torch.bmm(x_spec.conj_physical().transpose(1, 2), g_spec)  # (F, in, out)
            grad_w = torch.fft.irfft(gv_spec.permute(2, 1, 0), n=n_fft)[..., :kernel_size].flip(-1)
        return grad_x, grad_w, None


def fft_conv1d_same(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """F.conv1d(x, weight, bias, padding="same") computed with real FFTs of size next_fast_len(max(L + right, k)).

    Runs in float32 (float64 if x is float64) with autocast off: cuFFT and pocketfft
    have no bfloat16, and half-precision spectra of a 4,000-tap product would lose
    the accuracy the layer is meant to keep. The output is float32 (or float64).
    """
    if x.dim() != 3 or weight.dim() != 3 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"expected x (B, in, L) and weight (out, in, k) with matching in, got {tuple(x.shape)} and {tuple(weight.shape)}")
    kernel_size = weight.shape[-1]
    _, right = same_padding(kernel_size)
    # The kernel itself must fit too (an input shorter than half the kernel).
    n_fft = next_fast_len(max(x.shape[-1] + right, kernel_size))
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device_type = x.device.type
    # (meta tensors, used to count FLOPs and memory, have no autocast)
    no_autocast = torch.autocast(device_type, enabled=False) if torch.amp.is_autocast_available(device_type) else nullcontext()
    with no_autocast:
        y = _FFTConv1dSame.apply(x.to(dtype), weight.to(dtype), n_fft)
        if bias is not None:
            y = y + bias.to(dtype)[:, None]
    return y


class LongConv1d(nn.Module):
    """nn.Conv1d(in, out, k, padding="same") that can compute by FFT. Same parameters, same state dict."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mode: str = "auto", bias: bool = True) -> None:
        super().__init__()
        if mode not in CONV_MODES:
            raise ValueError(f"convolution mode must be one of {CONV_MODES}, got {mode!r}")
        if min(in_channels, out_channels, kernel_size) < 1:
            raise ValueError(f"channels and kernel size must be positive, got in={in_channels} out={out_channels} k={kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.mode = mode
        # Initialised exactly like nn.Conv1d so that switching modes changes nothing.
        reference = nn.Conv1d(in_channels, out_channels, kernel_size, bias=bias)
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone()) if bias else None

    def resolved_mode(self, device: torch.device) -> str:
        return choose_conv_mode(device, self.kernel_size) if self.mode == "auto" else self.mode

    def forward(self, x: Tensor) -> Tensor:
        if self.resolved_mode(x.device) == "fft":
            return fft_conv1d_same(x, self.weight, self.bias)
        return F.conv1d(x, self.weight, self.bias, padding="same")

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding=same, mode={self.mode}, bias={self.bias is not None}"

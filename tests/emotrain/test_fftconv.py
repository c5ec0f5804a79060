"""emotrain.fftconv: the FFT long convolution computes nn.Conv1d(padding="same")'s function, forward and backward."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from emotrain.fftconv import CUDA_FFT_MIN_KERNEL, LongConv1d, choose_conv_mode, fft_conv1d_same, next_fast_len, same_padding

TOLERANCE = 1e-4  # relative (max-abs error / max-abs reference), float32 against float64


def _reference_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor):
    """Direct conv1d in float64: output and the gradients of input, weight and bias for upstream `grad`."""
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, weight, bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that even kernels need a padded copy
        y = F.conv1d(x64, w64, b64, padding="same")
    gx, gw, gb = torch.autograd.grad(y, (x64, w64, b64), grad.double())
    return y.detach(), gx, gw, gb


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    scale = reference.abs().max().item()
    return (value.double() - reference).abs().max().item() / max(scale, 1e-30)


def _random_case(seed: int) -> tuple[int, int, int, int, int]:
    rng = random.Random(seed)
    kernel = rng.choice([1, 2, 3, 4, 7, 8, 15, 16, 31, 64, 81, 100, 257])
    # Lengths both longer and shorter than the kernel, including 1.
    length = rng.choice([1, 2, kernel // 2 + 1, kernel, kernel + 1, rng.randint(1, 400), rng.randint(400, 2000)])
    return rng.randint(1, 3), rng.randint(1, 6), rng.randint(1, 6), max(length, 1), kernel


CASES = [_random_case(seed) for seed in range(40)]


@pytest.mark.parametrize("batch,in_channels,out_channels,length,kernel", CASES)
def test_fft_matches_direct_float64_forward_and_backward(batch, in_channels, out_channels, length, kernel):
    torch.manual_seed(batch * 1000 + in_channels * 100 + out_channels * 10 + kernel + length)
    conv = LongConv1d(in_channels, out_channels, kernel, mode="fft")
    x = torch.randn(batch, in_channels, length, requires_grad=True)
    y = conv(x)
    assert y.shape == (batch, out_channels, length) and y.dtype == torch.float32
    grad = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, conv.weight, conv.bias), grad)
    ref_y, ref_gx, ref_gw, ref_gb = _reference_conv(x, conv.weight, conv.bias, grad)
    assert _relative_error(y, ref_y) <= TOLERANCE
    assert _relative_error(gx, ref_gx) <= TOLERANCE
    assert _relative_error(gw, ref_gw) <= TOLERANCE
    assert _relative_error(gb, ref_gb) <= TOLERANCE


@pytest.mark.parametrize("kernel", [3999, 4000])
def test_paper_sized_kernel_within_tolerance(kernel):
    torch.manual_seed(kernel)
    conv = LongConv1d(2, 2, kernel, mode="fft")
    x = torch.randn(1, 2, 4800, requires_grad=True)  # 0.6 s at 8 kHz, longer than the kernel
    y = conv(x)
    grad = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, conv.weight, conv.bias), grad)
    ref_y, ref_gx, ref_gw, ref_gb = _reference_conv(x, conv.weight, conv.bias, grad)
    for value, reference in ((y, ref_y), (gx, ref_gx), (gw, ref_gw), (gb, ref_gb)):
        assert _relative_error(value, reference) <= TOLERANCE


def test_weight_gradient_without_input_gradient():
    torch.manual_seed(1)
    conv = LongConv1d(3, 2, 10, mode="fft")
    x = torch.randn(2, 3, 50)  # no grad wanted for x: the backward skips that branch
    y = conv(x)
    grad = torch.randn_like(y)
    gw, gb = torch.autograd.grad(y, (conv.weight, conv.bias), grad)
    _, _, ref_gw, ref_gb = _reference_conv(x, conv.weight, conv.bias, grad)
    assert _relative_error(gw, ref_gw) <= TOLERANCE and _relative_error(gb, ref_gb) <= TOLERANCE


def test_float64_input_stays_float64_and_is_exact():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 77, dtype=torch.float64)
    w = torch.randn(4, 3, 12, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    y = fft_conv1d_same(x, w, b)
    ref, _, _, _ = _reference_conv(x, w, b, torch.zeros(2, 4, 77))
    assert y.dtype == torch.float64
    assert _relative_error(y, ref) < 1e-12


def test_state_dict_moves_between_conv1d_and_longconv():
    torch.manual_seed(3)
    conv = nn.Conv1d(4, 6, 20, padding="same")
    long_conv = LongConv1d(4, 6, 20, mode="fft")
    assert set(long_conv.state_dict()) == set(conv.state_dict()) == {"weight", "bias"}
    long_conv.load_state_dict(conv.state_dict())
    x = torch.randn(2, 4, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = conv(x)
    assert torch.allclose(long_conv(x), expected, atol=1e-5, rtol=1e-4)
    # and back: a LongConv1d's state loads into a plain Conv1d and computes the same
    trained = LongConv1d(4, 6, 20, mode="fft")
    plain = nn.Conv1d(4, 6, 20, padding="same")
    plain.load_state_dict(trained.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.allclose(plain(x), trained(x), atol=1e-5, rtol=1e-4)
        trained.mode = "direct"
        assert torch.equal(trained(x), plain(x))


def test_modes_and_auto_rule():
    assert choose_conv_mode(torch.device("cpu"), 80) == "fft"
    assert choose_conv_mode(torch.device("cpu"), 4000) == "fft"
    assert choose_conv_mode(torch.device("cuda"), 4000) == "fft"
    assert choose_conv_mode(torch.device("cuda"), CUDA_FFT_MIN_KERNEL - 1) == "direct"
    conv = LongConv1d(2, 2, 4000)
    assert conv.mode == "auto" and conv.resolved_mode(torch.device("cpu")) == "fft"
    assert LongConv1d(2, 2, 4000, mode="direct").resolved_mode(torch.device("cpu")) == "direct"
    with pytest.raises(ValueError, match="convolution mode must be one of"):
        LongConv1d(2, 2, 5, mode="winograd")
    with pytest.raises(ValueError, match="positive"):
        LongConv1d(0, 2, 5)
    with pytest.raises(ValueError, match="matching in"):
        fft_conv1d_same(torch.zeros(1, 3, 10), torch.zeros(2, 4, 5), None)


def test_same_padding_is_pytorchs():
    # Even kernels put the extra zero on the right, as F.conv1d(padding="same") does.
    assert same_padding(80) == (39, 40)
    assert same_padding(4000) == (1999, 2000)
    assert same_padding(5) == (2, 2)
    x = torch.zeros(1, 1, 9, dtype=torch.float64)
    x[0, 0, 4] = 1.0
    w = torch.arange(1.0, 5.0, dtype=torch.float64).view(1, 1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = F.conv1d(x, w, padding="same")
    assert torch.allclose(fft_conv1d_same(x, w, None), direct, atol=1e-12)


def test_autocast_bfloat16_runs_the_fft_in_float32():
    torch.manual_seed(4)
    conv = LongConv1d(3, 3, 50, mode="fft")
    x = torch.randn(2, 3, 400)
    expected = conv(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x.bfloat16())
    assert y.dtype == torch.float32
    # Only the input's rounding to bfloat16 differs.
    assert _relative_error(y, expected.double()) < 2e-2


def test_next_fast_len_is_the_smallest_5_smooth_length():
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    rng = random.Random(0)
    for n in list(range(1, 600)) + [rng.randint(600, 200_000) for _ in range(100)]:
        m = next_fast_len(n)
        assert m >= n and smooth(m)
        assert not any(smooth(c) for c in range(n, m))
    with pytest.raises(ValueError):
        next_fast_len(0)

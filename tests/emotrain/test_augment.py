"""emotrain.augment: training-batch waveform perturbations."""

from __future__ import annotations

import pytest
import torch
from shardformat import SAMPLE_RATE, SAMPLES_PER_FRAME

from emotrain.augment import Augment, augment_audio, parse_augment


def _batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.zeros(len(lengths), max(lengths) * SAMPLES_PER_FRAME)
    for row, n in enumerate(lengths):
        audio[row, : n * SAMPLES_PER_FRAME] = torch.randn(n * SAMPLES_PER_FRAME, generator=torch.Generator().manual_seed(row))
    return audio, torch.tensor(lengths)


def test_parse_round_trip_and_errors():
    spec = parse_augment("speed=0.1,gain=6,noise_snr=10,shift=0.5")
    assert spec == Augment(speed=0.1, gain=6, noise_snr=10, shift=0.5)
    assert parse_augment(spec.to_text()) == spec
    assert parse_augment("none") == Augment() and not Augment().active and Augment().to_text() == "none"
    with pytest.raises(ValueError, match="the keys are"):
        parse_augment("pitch=2")
    with pytest.raises(ValueError, match="non-negative"):
        parse_augment("gain=-3")


def test_inactive_is_the_identity():
    audio, lengths = _batch([5, 3])
    out, out_lengths = augment_audio(audio, lengths, Augment(), torch.Generator())
    assert out is audio and out_lengths is lengths


def test_every_perturbation_keeps_padding_zero_and_lengths_valid():
    audio, lengths = _batch([20, 8, 3])
    spec = Augment(speed=0.2, gain=6, noise_snr=5, shift=0.2)
    out, new_lengths = augment_audio(audio, lengths, spec, torch.Generator().manual_seed(0))
    assert out.shape == audio.shape and not torch.equal(out, audio)
    assert (new_lengths >= 1).all() and (new_lengths <= audio.shape[1] // SAMPLES_PER_FRAME).all()
    for row, n in enumerate(new_lengths.tolist()):
        assert torch.count_nonzero(out[row, n * SAMPLES_PER_FRAME:]) == 0
    again, _ = augment_audio(audio, lengths, spec, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)  # seeded: a resumed run draws the same


def test_speed_changes_length_by_the_factor():
    audio, lengths = _batch([50])
    _, slow = augment_audio(torch.cat([audio, torch.zeros(1, 50 * SAMPLES_PER_FRAME)], 1), lengths,
                            Augment(speed=0.3), torch.Generator().manual_seed(1))
    assert 50 / 1.3 - 1 <= int(slow[0]) <= 50 / 0.7 + 1


def test_shift_rotates_within_the_valid_part():
    audio, lengths = _batch([10])
    out, same = augment_audio(audio, lengths, Augment(shift=0.1), torch.Generator().manual_seed(2))
    assert torch.equal(same, lengths)
    shifts = [k for k in range(-SAMPLE_RATE // 10, SAMPLE_RATE // 10 + 1) if torch.equal(torch.roll(audio[0], k), out[0])]
    assert len(shifts) == 1

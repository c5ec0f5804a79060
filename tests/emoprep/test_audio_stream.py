"""read_audio_stream: a video's own soundtrack, decoded by ffmpeg, resampled to 16 kHz mono with anti-aliasing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import resample_poly

from emoprep.media.audio import SAMPLE_RATE, AudioError, read_audio_stream
from tests.emoprep.media_factory import make_video, tones


def spectrum_energy(samples: np.ndarray, low: float, high: float) -> float:
    """Energy of the samples between `low` and `high` Hz (Hann-windowed FFT)."""
    x = samples.astype(float) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(x)) ** 2
    hz = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(power[(hz >= low) & (hz < high)].sum())


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_a_soundtrack_is_resampled_to_16k_with_the_tone_kept_and_what_16k_cannot_hold_removed(tmp_path, rate):
    # 1 kHz stays; 11 kHz is above 16 kHz's Nyquist frequency and would fold to 5 kHz without a filter.
    source = tones(2.0, rate, (1_000.0, 11_000.0))
    video = make_video(tmp_path / f"talk-{rate}.mkv", 2.0, audio=source, rate=rate, channels=2)
    waveform = read_audio_stream(video)
    assert (waveform.source_rate, waveform.source_channels) == (rate, 2)
    assert waveform.conversion_note() == f"downmixed 2 channels, resampled from {rate} Hz"
    samples = waveform.samples[400:-400].astype(float)
    reference = resample_poly(tones(2.0, rate, (1_000.0,)), SAMPLE_RATE // math.gcd(SAMPLE_RATE, rate),
                              rate // math.gcd(SAMPLE_RATE, rate))[400:-400] * 32768
    assert len(waveform.samples) == 2 * SAMPLE_RATE
    # The 1 kHz tone is there, sample for sample; 11 kHz is gone, not folded to 5 kHz.
    assert np.abs(samples - reference).max() < 0.01 * 32768
    tone_energy = spectrum_energy(samples, 900, 1_100)
    assert spectrum_energy(samples, 4_500, 5_500) < 1e-4 * tone_energy
    # Nothing above 7 kHz either (the filter's transition band ends at 8 kHz).
    assert spectrum_energy(samples, 7_000, 8_000) < 1e-4 * tone_energy


def test_a_window_of_the_soundtrack(tmp_path):
    # A tone that rises 1 kHz per second: the window's pitch says where it was cut.
    rate, seconds = 48_000, 4.0
    t = np.arange(int(seconds * rate)) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (500 * t + 500 * t * t))  # instantaneous 500 + 1000 t Hz
    video = make_video(tmp_path / "chirp.mkv", seconds, audio=chirp, rate=rate)
    waveform = read_audio_stream(video, start=2.0, duration=0.5)
    assert abs(len(waveform.samples) - SAMPLE_RATE // 2) <= 2
    spectrum = np.abs(np.fft.rfft(waveform.samples.astype(float)))
    peak_hz = np.fft.rfftfreq(len(waveform.samples), 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert 2_500 - 300 < peak_hz < 2_750 + 300  # 2.0 .. 2.5 s sweeps 2.5 .. 3.0 kHz


def test_aac_in_mp4_decodes_and_is_capped_at_six_seconds(tmp_path):
    video = make_video(tmp_path / "long.mp4", 7.0, audio=tones(7.0, 44_100, (440.0,)), rate=44_100)
    waveform = read_audio_stream(video)
    assert len(waveform.samples) == 6 * SAMPLE_RATE
    assert np.abs(waveform.samples).max() > 0.2 * 32768


def test_no_audio_stream_text_file_missing_file_and_a_window_past_the_end_name_file_and_reason(tmp_path):
    silent = make_video(tmp_path / "silent.mp4", 1.0)
    with pytest.raises(AudioError, match=r"no audio stream: .*silent\.mp4") as no_stream:
        read_audio_stream(silent)
    assert no_stream.value.kind == "no audio stream"
    (tmp_path / "notes.mp4").write_text("this is not a video\n")
    with pytest.raises(AudioError, match=r"unreadable audio: .*notes\.mp4"):
        read_audio_stream(tmp_path / "notes.mp4")
    with pytest.raises(AudioError, match="missing audio"):
        read_audio_stream(tmp_path / "nope.mp4")
    short = make_video(tmp_path / "short.mkv", 1.0, audio=tones(1.0, 48_000, (440.0,)))
    with pytest.raises(AudioError, match=r"empty audio: .*short\.mkv"):
        read_audio_stream(short, start=5.0, duration=1.0)


def test_an_aac_soundtrack_read_whole_keeps_its_first_frame(tmp_path):
    # A seek to 0 would make ffmpeg drop the first AAC frame (1,024 samples, 341 at 16 kHz) with its priming.
    rate = 48_000
    t = np.arange(2 * rate) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 700 * t ** 2))  # 200 Hz rising to 3 kHz: one alignment only
    whole = read_audio_stream(make_video(tmp_path / "talk.mp4", 2.0, audio=chirp, rate=rate)).samples.astype(float)
    reference = resample_poly(chirp, 1, 3) * 32768
    assert abs(len(whole) - 2 * SAMPLE_RATE) < 100
    lags = range(-600, 601)
    errors = [np.abs(whole[2_000 + lag:10_000 + lag] - reference[2_000:10_000]).mean() for lag in lags]
    assert abs(lags[int(np.argmin(errors))]) < 20  # aligned with the source, not 341 samples late

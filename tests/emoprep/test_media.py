"""The media edges on small hand-made files: sentence audio, dialog video, atomic writes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoprep.atomic import atomic_path, is_temporary
from emoprep.media.audio import MAX_SAMPLES, SAMPLE_RATE, AudioError, flac_bytes, read_waveform, write_flac
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.media.video import (
    FACE_SIZE, VideoError, VideoInfo, frames_in_window, half_geometry, parse_header, probe, read_window,
)


# ---------------------------------------------------------------- audio

def tone(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * t)


def test_a_16k_mono_wav_passes_through_sample_for_sample(tmp_path):
    samples = np.random.default_rng(1).integers(-30000, 30000, 40_000, dtype=np.int16)
    sf.write(tmp_path / "a.wav", samples, SAMPLE_RATE, subtype="PCM_16")
    waveform = read_waveform(tmp_path / "a.wav")
    assert waveform.samples.dtype == np.int16
    assert np.array_equal(waveform.samples, samples)
    assert waveform.conversion_note() is None


def test_only_the_first_six_seconds_are_kept(tmp_path):
    samples = np.random.default_rng(2).integers(-3000, 3000, MAX_SAMPLES + 5_000, dtype=np.int16)
    sf.write(tmp_path / "long.wav", samples, SAMPLE_RATE, subtype="PCM_16")
    assert np.array_equal(read_waveform(tmp_path / "long.wav").samples, samples[:MAX_SAMPLES])


def test_a_44k1_stereo_wav_is_downmixed_and_resampled(tmp_path):
    left, right = tone(1.0, 44_100), 0.5 * tone(1.0, 44_100)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 44_100, subtype="PCM_16")
    waveform = read_waveform(tmp_path / "stereo.wav")
    assert waveform.samples.dtype == np.int16 and len(waveform.samples) == SAMPLE_RATE
    assert waveform.conversion_note() == "downmixed 2 channels, resampled from 44100 Hz"
    # The mean of the channels, at 16 kHz: 0.75 x the tone (away from the filter's start-up at the ends).
    expected = 0.75 * tone(1.0, SAMPLE_RATE) * 32768
    error = np.abs(waveform.samples[200:-200] - expected[200:-200])
    assert error.max() < 0.01 * 32768


def test_resampling_removes_what_16k_cannot_hold(tmp_path):
    # 10 kHz is above 16 kHz's Nyquist frequency: a decent resampler filters it out instead of folding it to 6 kHz.
    sf.write(tmp_path / "high.wav", tone(0.5, 44_100, 10_000), 44_100, subtype="PCM_16")
    samples = read_waveform(tmp_path / "high.wav").samples[200:-200].astype(float)
    assert np.abs(samples).max() < 0.01 * 0.5 * 32768


def test_missing_unreadable_and_empty_audio_are_bad_input_with_their_kind(tmp_path):
    with pytest.raises(AudioError, match="missing audio") as missing:
        read_waveform(tmp_path / "nope.wav")
    assert missing.value.kind == "missing audio"
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(60))
    with pytest.raises(AudioError, match="unreadable audio: .*junk.wav"):
        read_waveform(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.int16), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="empty audio"):
        read_waveform(tmp_path / "empty.wav")


def test_flac_is_16_bit_16k_mono_lossless_and_deterministic(tmp_path):
    samples = np.random.default_rng(3).integers(-32768, 32767, 20_000, dtype=np.int16)
    data = flac_bytes(samples)
    assert data == flac_bytes(samples)
    info = sf.info(io.BytesIO(data))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", SAMPLE_RATE, 1)
    decoded, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert np.array_equal(decoded, samples)
    write_flac(tmp_path / "x" / "a.flac", samples)
    assert (tmp_path / "x" / "a.flac").read_bytes() == data


# ---------------------------------------------------------------- atomic writes

def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            assert is_temporary(temporary) and temporary.parent == tmp_path
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"


# ---------------------------------------------------------------- video

@pytest.fixture(scope="module")
def split_avi(tmp_path_factory) -> Path:
    """4 s of DivX at 29.97 fps, 720x480: a red left half and a blue right half, each with a moving box."""
    path = tmp_path_factory.mktemp("video") / "split.avi"
    graph = (
        "color=c=red:s=360x480:r=30000/1001:d=4[l];color=c=blue:s=360x480:r=30000/1001:d=4[r];"
        "[l][r]hstack=inputs=2[v]"
    )
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-filter_complex", graph, "-map", "[v]",
         "-c:v", "mpeg4", "-vtag", "DIVX", "-q:v", "3", str(path)],
        check=True,
    )
    return path


HEADER = """Input #0, avi, from 'Ses01F_impro01.avi':
  Duration: 00:05:01.53, start: 0.000000, bitrate: 1130 kb/s
  Stream #0:0: Video: mpeg4 (Advanced Simple Profile) (DIVX / 0x58564944), yuv420p, 720x480 [SAR 1:1 DAR 3:2], 29.97 fps
  Stream #0:1: Audio: mp3 (U[0][0][0] / 0x0055), 48000 Hz, stereo, fltp, 128 kb/s
"""


def test_parse_header_reads_size_and_duration():
    assert parse_header(HEADER) == VideoInfo(width=720, height=480, duration=301.53)
    assert parse_header("Stream #0:0: Audio: pcm_s16le, 16000 Hz") is None


def test_half_geometry_scales_a_224_pixel_square_to_96():
    info = VideoInfo(720, 480, 10.0)
    left, right = half_geometry(info, "left"), half_geometry(info, "right")
    assert (left.x, right.x, left.width, left.height) == (0, 360, 360, 480)
    assert (left.scaled_width, left.scaled_height) == (154, 206)  # 360 and 480 x 96/224
    odd = half_geometry(VideoInfo(723, 480, None), "right")
    assert (odd.x, odd.width) == (362, 360)
    tiny = half_geometry(VideoInfo(300, 200, None), "left")  # a half narrower than 224: its width maps to 96
    assert tiny.scaled_width == FACE_SIZE and tiny.scaled_height == 128
    with pytest.raises(ValueError):
        half_geometry(info, "middle")


def test_a_full_frame_region_is_the_whole_frame_at_the_same_scale():
    # CREMA-D (480x360), RAVDESS (1280x720): one speaker, the region is the whole frame.
    crema = half_geometry(VideoInfo(480, 360, None), "full")
    assert (crema.x, crema.width, crema.height) == (0, 480, 360)
    assert (crema.scaled_width, crema.scaled_height) == (206, 154)
    ravdess = half_geometry(VideoInfo(1280, 720, None), "full")
    assert (ravdess.width, ravdess.scaled_width, ravdess.scaled_height) == (1280, 548, 308)


def test_frames_in_window_counts_25_fps_frames_that_overlap_it():
    assert [frames_in_window(s) for s in (6.0, 2.5, 0.01, 0.04, 0.041, 0.0)] == [150, 63, 1, 1, 2, 0]


def test_probe_reads_the_avi(split_avi):
    info = probe(str(split_avi))
    assert (info.width, info.height) == (720, 480) and info.duration == pytest.approx(4.0, abs=0.1)


@pytest.mark.parametrize("start, seconds", [(0.0, 1.0), (1.2345, 2.1), (0.5, 0.03)])
def test_read_window_gives_25_fps_frames_of_the_speakers_half(split_avi, start, seconds):
    info = probe(str(split_avi))
    for side, colour in (("left", (254, 0, 0)), ("right", (0, 0, 254))):
        half = half_geometry(info, side)
        frames = read_window(str(split_avi), start, seconds, half)
        assert frames.shape == (frames_in_window(seconds), 206, 154, 3) and frames.dtype == np.uint8
        assert np.abs(frames.reshape(-1, 3).mean(axis=0) - colour).max() < 12


def test_a_window_past_the_end_gives_the_frames_that_exist(split_avi):
    half = half_geometry(probe(str(split_avi)), "left")
    assert abs(len(read_window(str(split_avi), 3.0, 3.0, half)) - 25) <= 1
    assert len(read_window(str(split_avi), 10.0, 2.0, half)) == 0


def test_missing_and_damaged_videos_are_bad_input(tmp_path, split_avi):
    with pytest.raises(VideoError, match="missing video") as missing:
        probe(str(tmp_path / "none.avi"))
    assert missing.value.kind == "missing video"
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(VideoError, match="unreadable video: .*junk.avi"):
        probe(str(junk))
    with pytest.raises(VideoError, match="unreadable video: .*junk.avi at 0.000 s"):
        read_window(str(junk), 0.0, 1.0, half_geometry(probe(str(split_avi)), "left"))

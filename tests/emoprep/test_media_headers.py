"""emoprep.media.headers: lengths and bad sound files told from headers alone, on small real files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoprep.media.audio import AudioError
from emoprep.media.headers import mp4_seconds, probe_audio
from tests.emoprep.media_factory import make_video, tones


@pytest.mark.parametrize("faststart", [False, True])  # moov after mdat (ffmpeg's default) or before it
def test_mp4_seconds_reads_the_movie_header(tmp_path: Path, faststart: bool):
    video = make_video(tmp_path / "clip name; 'é'.mp4", 1.2, audio=tones(1.2, 48000, (440,)), faststart=faststart)
    assert mp4_seconds(video) == pytest.approx(1.2, abs=0.05)


def test_mp4_seconds_is_none_without_a_movie_header(tmp_path: Path):
    for name, data in (("empty.mp4", b""), ("text.mp4", b"hello, not a video\n"),
                       ("no-moov.mp4", struct.pack(">I4s", 16, b"ftyp") + b"isom" + bytes(4))):
        (tmp_path / name).write_bytes(data)
        assert mp4_seconds(tmp_path / name) is None, name


def test_probe_audio_rates_channels_and_lengths(tmp_path: Path):
    sf.write(tmp_path / "a.wav", np.zeros((44100, 2), np.int16), 22050)
    info = probe_audio(tmp_path / "a.wav")
    assert (info.rate, info.channels, info.seconds) == (22050, 2, 2.0)
    sf.write(tmp_path / "b.flac", np.zeros(800, np.int16), 8000)
    assert probe_audio(tmp_path / "b.flac").seconds == 0.1


def test_probe_audio_names_the_file_and_the_fault(tmp_path: Path):
    sf.write(tmp_path / "whole.wav", np.zeros(4800, np.int16), 48000)
    whole = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:-1000])
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("RIFF? no.\n")
    sf.write(tmp_path / "silent.wav", np.zeros(0, np.int16), 48000)
    for name, kind in (("cut.wav", "truncated audio"), ("zero.wav", "empty audio"), ("text.wav", "not audio"),
                       ("silent.wav", "empty audio"), ("absent.wav", "missing audio")):
        with pytest.raises(AudioError, match=kind) as error:
            probe_audio(tmp_path / name)
        assert str(tmp_path / name) in str(error.value)

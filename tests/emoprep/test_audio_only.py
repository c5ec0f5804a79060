"""Audio-only clips (a ClipRecord without video): the `clips` recipe on a folder of sound files, extract
(no video opened, no face detector built), shard (no frames member) and every bad sound file named."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep import extract, utterance
from emoprep.cli import main
from emoprep.corpus import read_clips
from emoprep.extract import ExtractOptions, run_extract
from emoprep.media.faces import DetectorSpec
from emoprep.utterance import NO_DETECTOR
from emoprep.work import MANIFEST
from tests.emoprep.media_factory import _ffmpeg, tones


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    """Good sound files of every kind the recipe takes, and the bad ones a user's folder may hold."""
    root = tmp_path_factory.mktemp("sounds")
    stereo = np.stack([tones(8.0, 48_000, (220.0,)), tones(8.0, 48_000, (330.0,))], axis=1)
    sf.write(root / "talk; 'quoted' ü.wav", stereo, 48_000, subtype="PCM_16")  # 8 s: two windows
    (root / "phone").mkdir()
    sf.write(root / "phone" / "low.wav", tones(2.0, 8_000, (440.0,)), 8_000, subtype="PCM_16")
    sf.write(root / "studio.flac", tones(1.5, 96_000, (440.0,)), 96_000, subtype="PCM_24")
    sf.write(root / "voice.ogg", tones(1.0, 16_000, (300.0,)), 16_000, format="OGG", subtype="VORBIS")
    _ffmpeg("-i", str(root / "studio.flac"), "-c:a", "libmp3lame", "-ar", "44100", str(root / "song.mp3"))
    whole = (root / "phone" / "low.wav").read_bytes()
    sf.write(root / "cut.wav", tones(3.0, 16_000, (440.0,)), 16_000, subtype="PCM_16")
    data = (root / "cut.wav").read_bytes()
    (root / "cut.wav").write_bytes(data[:len(data) // 2])  # a copy cut short: its header promises 3 s
    (root / "zero.wav").write_bytes(b"")
    (root / "notes.wav").write_text("a text file named .wav\n")
    (root / "notes.mp3").write_text("a text file named .mp3\n")
    (root / "header-only.wav").write_bytes(whole[:44])
    return root


def test_a_folder_of_sound_files_gives_audio_only_windows_and_names_each_bad_file(sounds):
    clips = read_clips("clips", sounds)
    problems = {Path(p.path).name: p.reason for p in clips.problems}
    assert set(problems) == {"cut.wav", "zero.wav", "notes.wav", "notes.mp3", "header-only.wav"}
    assert problems["cut.wav"].startswith("truncated audio: ") and "promises 3.000 s, the file holds 1.49" in problems["cut.wav"]
    assert problems["zero.wav"].startswith("unreadable audio: ") and "zero.wav" in problems["zero.wav"]
    assert problems["notes.wav"].startswith("unreadable audio: ")
    assert problems["notes.mp3"].startswith("unreadable audio: ") and "notes.mp3" in problems["notes.mp3"]
    assert problems["header-only.wav"].startswith("empty audio: ")
    windows = sorted((c.extra["source"], c.start, c.end) for c in clips.clips)
    assert windows == [("phone/low.wav", 0.0, 2.0), ("song.mp3", 0.0, pytest.approx(1.55, abs=0.06)),
                       ("studio.flac", 0.0, 1.5), ("talk; 'quoted' ü.wav", 0.0, 6.0),
                       ("talk; 'quoted' ü.wav", 6.0, 8.0), ("voice.ogg", 0.0, 1.0)]
    assert all(c.video_path is None and c.audio_window == (c.start, c.end) for c in clips.clips)


def test_audio_only_clips_are_extracted_without_touching_video_and_sharded_without_frames(sounds, tmp_path,
                                                                                          monkeypatch):
    def untouchable(*args, **kwargs):
        raise AssertionError("an audio-only clip must not open video or build a face detector")

    for module, name in ((utterance, "probe"), (utterance, "read_window"), (extract, "build_detector"),
                         (extract, "resolve")):
        monkeypatch.setattr(module, name, untouchable)
    work = tmp_path / "work"
    clips = read_clips("clips", sounds)
    summary = run_extract(ExtractOptions(clips=clips, work=work, detector=DetectorSpec("centerface"), workers=1))
    assert (summary.ok, summary.failed) == (6, 0)
    rows = {(r["video_file"], r["audio_file"].rsplit("/", 1)[-1], r["start"]): r
            for r in pq.read_table(work / MANIFEST).to_pylist()}
    assert not (work / "frames").exists()
    for row in rows.values():
        assert (row["status"], row["frames_path"], row["n_frames"], row["face_ratio"], row["detector"]) == \
            ("ok", None, 0, None, NO_DETECTOR), row
    seconds = {key[1:]: row["n_samples"] / 16_000 for key, row in rows.items()}
    assert seconds == {("talk; 'quoted' ü.wav", 0.0): 6.0, ("talk; 'quoted' ü.wav", 6.0): 2.0, ("low.wav", 0.0): 2.0,
                       ("studio.flac", 0.0): 1.5, ("voice.ogg", 0.0): 1.0,
                       ("song.mp3", 0.0): seconds[("song.mp3", 0.0)]}
    assert seconds[("song.mp3", 0.0)] == pytest.approx(1.55, abs=0.06)
    assert rows[(None, "low.wav", 0.0)]["warning"] == "resampled from 8000 Hz"
    assert rows[(None, "studio.flac", 0.0)]["warning"] == "resampled from 96000 Hz"
    assert rows[(None, "talk; 'quoted' ü.wav", 6.0)]["warning"] == "downmixed 2 channels, resampled from 48000 Hz"
    assert rows[(None, "voice.ogg", 0.0)]["warning"] is None
    # The second window is the file's last 2 s: the 330 Hz + 220 Hz mix, read from 6 s on.
    flac = sf.read(work / rows[(None, "talk; 'quoted' ü.wav", 6.0)]["audio_path"], dtype="float64")[0]
    expected = 0.5 * (tones(8.0, 16_000, (220.0,)) + tones(8.0, 16_000, (330.0,)))[96_000:]
    assert np.abs(flac[100:-100] - expected[100:-100]).max() < 0.01

    shards = tmp_path / "shards"
    result = CliRunner().invoke(main, ["shard", "--work", str(work), "--out", str(shards)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    samples = {}
    for tar_path in sorted(shards.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                key, _, kind = member.name.partition(".")
                samples.setdefault(key, {})[kind] = tar.extractfile(member).read()
    assert len(samples) == 6 and all(sorted(members) == ["flac", "json"] for members in samples.values())
    metas = [json.loads(members["json"]) for members in samples.values()]
    assert {(m["n_frames"], m["face_ratio"], m["detector"]) for m in metas} == {(0, 0.0, NO_DETECTOR)}
    assert {m["source"] for m in metas} == {"talk; 'quoted' ü.wav", "phone/low.wav", "studio.flac", "voice.ogg",
                                            "song.mp3"}
    for members in samples.values():
        audio, rate = sf.read(io.BytesIO(members["flac"]), dtype="int16")
        assert rate == 16_000 and len(audio) == json.loads(members["json"])["n_samples"]
    verified = CliRunner().invoke(main, ["verify", str(shards)], catch_exceptions=False)
    assert verified.exit_code == 0, verified.output

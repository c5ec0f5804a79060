"""A folder of videos -> predictions, through the CLIs: labels -> extract --corpus clips -> shard -> predict.

What `make predict` chains, on small videos made here (ffmpeg's test pattern: no face, so the
crops are extract's fixed ones, with a warning) and a run trained for one epoch on the test
factory's shards. It checks the path and the bookkeeping (windows, sources, times, every
probability vector, the bad files named), not accuracy: the run has never seen these videos.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emoprep.cli import main as emoprep
from emotrain.cli import main as emotrain
from tests.emoprep.media_factory import make_video, tones
from tests.emotrain.shard_factory import make_shards

EMOTIONS = ("ang", "hap", "neu", "sad")


def run(cli, *args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    shards = make_shards(tmp_path_factory.mktemp("shards"), {"train": [4, 4], "val": [2], "test": [2]},
                         seconds=(0.2, 0.3))
    out = tmp_path_factory.mktemp("runs") / "av"
    result = run(emotrain, "fit", "--shards", shards.root, "--split", "paper", "--out", out, "--epochs", "1",
                 "--model", "small", "--workers", "0", "--device", "cpu", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    return out


def test_a_folder_of_videos_becomes_a_row_per_window_and_per_video(trained_run, tmp_path):
    videos = tmp_path / "videos"
    make_video(videos / "talk.mp4", 7.0, audio=tones(7.0, 44_100, (220.0,)), rate=44_100, size="160x120")
    make_video(videos / "phone" / "short clip.mov", 2.0, audio=tones(2.0, 48_000, (330.0,)), size="160x120")
    (videos / "notes.mp4").write_text("a text file named .mp4\n")
    make_video(videos / "tiny.mp4", 0.02, fps=100, size="64x48")
    make_video(videos / "silent.avi", 1.0, size="160x120")  # no audio stream
    (videos / "labels.csv").write_text("path,emotion,gender,speaker\ntalk.mp4,happy,F,anna\n"
                                       "phone/short clip.mov,sad,M,bob\nsilent.avi,neutral,M,cat\n")

    listed = run(emoprep, "labels", "--corpus", "clips", "--root", videos, "--out", tmp_path / "labels.parquet")
    assert "notes.mp4: -: unreadable video" in listed.output
    assert "tiny.mp4: -: shorter than one frame" in listed.output
    work, shards = tmp_path / "work", tmp_path / "shards"
    extracted = run(emoprep, "extract", "--corpus", "clips", "--root", videos, "--out", work,
                    "--face-detector", "haar", "--workers", "1", "--max-failures", "100%")
    assert extracted.exit_code == 0, extracted.output
    assert run(emoprep, "shard", "--work", work, "--out", shards).exit_code == 0
    # The video without sound is a video-only sample, with its reason as a warning: never silently dropped.
    manifest = {r["utterance_id"]: r for r in pq.read_table(work / "manifest.parquet").to_pylist()}
    silent = next(r for key, r in manifest.items() if key.startswith("silent_avi"))
    assert (silent["status"], silent["audio_path"], silent["n_samples"]) == ("ok", None, 0)
    assert silent["warning"].startswith("no audio stream: ") and "silent.avi" in silent["warning"]

    out = tmp_path / "predictions.csv"
    predicted = run(emotrain, "predict", "--run", trained_run, "--shards", shards, "--out", out, "--device", "cpu",
                    "--timeline")
    assert predicted.exit_code == 0, predicted.output
    with out.open(newline="") as file:
        every = list(csv.DictReader(file))
    assert "predicted 4 of 4 windows of 3 videos; 3 audio+video, 1 video; filled in: audio for 1" in predicted.output
    [silent_row] = [r for r in every if r["source"] == "silent.avi"]
    assert (silent_row["status"], silent_row["modalities"], silent_row["filled"]) == ("ok", "video", "audio")
    rows = [r for r in every if r["source"] != "silent.avi"]
    windows = [(r["source"], float(r["start"]), float(r["end"])) for r in rows]
    assert windows[0] == ("phone/short clip.mov", 0.0, pytest.approx(2.0, abs=0.05))
    assert windows[1:] == [("talk.mp4", 0.0, 6.0), ("talk.mp4", 6.0, pytest.approx(7.0, abs=0.05))]
    for row in rows:
        assert sum(float(row[f"p_{e}"]) for e in EMOTIONS) == pytest.approx(1, abs=1e-6)
        assert float(row["p_F"]) + float(row["p_M"]) == pytest.approx(1, abs=1e-6)
    assert [(r["true_emotion"], r["true_gender"]) for r in rows] == [("sad", "M"), ("hap", "F"), ("hap", "F")]
    with out.with_name("predictions-videos.csv").open(newline="") as file:
        videos_rows = {r["source"]: r for r in csv.DictReader(file)}
    assert set(videos_rows) - {"silent.avi"} == {"talk.mp4", "phone/short clip.mov"}
    assert videos_rows["talk.mp4"]["windows"] == "2"
    timelines = {p.name for p in (tmp_path / "predictions-timelines").iterdir()} - {"silent.avi.png"}
    assert timelines == {"phone_short_clip.mov.png", "talk.mp4.png"}


def test_a_folder_without_labels_is_extracted_whole_and_predicted(trained_run, tmp_path):
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 3.0, audio=tones(3.0, 48_000, (220.0,)), size="160x120")
    make_video(videos / "b.mkv", 8.0, audio=tones(8.0, 44_100, (330.0,)), rate=44_100, size="160x120")
    work, shards = tmp_path / "work", tmp_path / "shards"
    extracted = run(emoprep, "extract", "--corpus", "clips", "--root", videos, "--out", work,
                    "--face-detector", "haar", "--workers", "1")
    assert extracted.exit_code == 0, extracted.output
    assert "3 utterances: 3 ok" in extracted.output  # every window: 1 of a.mp4, 2 of b.mkv, none labelled
    sharded = run(emoprep, "shard", "--work", work, "--out", shards)
    assert sharded.exit_code == 0, sharded.output
    assert json.loads((shards / "splits.json").read_text())["splits"] == {}
    out = tmp_path / "p.csv"
    predicted = run(emotrain, "predict", "--run", trained_run, "--shards", shards, "--out", out, "--device", "cpu")
    assert predicted.exit_code == 0, predicted.output
    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["source"], r["true_emotion"]) for r in rows] == [("a.mp4", ""), ("b.mkv", ""), ("b.mkv", "")]
    # ffmpeg's test pattern has no face: each row says its crops are the fixed fallback, not a face.
    assert [float(r["face_ratio"]) for r in rows] == [0.0, 0.0, 0.0]


def test_every_input_file_gets_a_row_in_the_video_table_a_failed_one_with_its_reason(trained_run, tmp_path):
    """Videos, sound files and bad files of both kinds in one folder, through the steps `make predict` chains."""
    import soundfile as sf

    from tests.emoprep.media_factory import truncated_copy

    folder = tmp_path / "inputs"
    make_video(folder / "talk.mp4", 2.0, audio=tones(2.0, 48_000, (220.0,)), size="160x120")
    whole = make_video(tmp_path / "whole.mp4", 8.0, audio=tones(8.0, 48_000, (300.0,)), size="160x120", faststart=True)
    truncated_copy(whole, folder / "cut.mp4", keep=0.5)  # its second window has no audio left
    (folder / "notes.mp4").write_text("a text file named .mp4\n")
    sf.write(folder / "voice 8k.wav", tones(2.0, 8_000, (330.0,)), 8_000, subtype="PCM_16")
    sf.write(folder / "hifi.flac", tones(1.0, 96_000, (330.0,)), 96_000, subtype="PCM_24")
    sf.write(folder / "cut.wav", tones(2.0, 16_000, (330.0,)), 16_000, subtype="PCM_16")
    (folder / "cut.wav").write_bytes((folder / "cut.wav").read_bytes()[:20_000])
    (folder / "zero.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("a text file named .wav\n")

    work, shards = tmp_path / "work", tmp_path / "shards"
    extracted = run(emoprep, "extract", "--corpus", "clips", "--root", folder, "--out", work,
                    "--face-detector", "haar", "--workers", "1", "--max-failures", "100%")
    assert extracted.exit_code == 0, extracted.output
    from emoprep.failed_inputs import SOME_FAILED, main as failed_inputs

    assert failed_inputs([str(work), str(tmp_path / "failed.csv")]) == SOME_FAILED
    assert run(emoprep, "shard", "--work", work, "--out", shards).exit_code == 0
    out = tmp_path / "predictions.csv"
    predicted = run(emotrain, "predict", "--run", trained_run, "--shards", shards, "--out", out, "--device", "cpu",
                    "--failed-inputs", tmp_path / "failed.csv")
    assert predicted.exit_code == 3, predicted.output  # some inputs failed; the rest are predicted
    with out.with_name("predictions-videos.csv").open(newline="") as file:
        videos = {r["source"]: r for r in csv.DictReader(file)}
    assert set(videos) == {"talk.mp4", "cut.mp4", "notes.mp4", "voice 8k.wav", "hifi.flac", "cut.wav", "zero.wav",
                           "notes.wav"}
    for source in ("talk.mp4", "voice 8k.wav", "hifi.flac"):
        assert (videos[source]["windows"], videos[source]["failed"], videos[source]["reason"]) == ("1", "0", "")
        assert videos[source]["emotion"] in EMOTIONS
    assert videos["voice 8k.wav"]["modalities"] == "audio"
    assert (videos["cut.mp4"]["windows"], videos["cut.mp4"]["failed"]) == ("2", "1")
    assert videos["cut.mp4"]["reason"].startswith("empty audio: ") and videos["cut.mp4"]["emotion"] in EMOTIONS
    for source, reason in (("notes.mp4", "unreadable video: "), ("cut.wav", "truncated audio: "),
                           ("zero.wav", "unreadable audio: "), ("notes.wav", "unreadable audio: ")):
        row = videos[source]
        assert (row["windows"], row["failed"], row["emotion"], row["p_ang"]) == ("0", "0", "", ""), row
        assert row["reason"].startswith(reason) and source in row["reason"], row
    with out.open(newline="") as file:
        windows = list(csv.DictReader(file))
    assert sum(r["status"] == "failed" for r in windows) == 5 and len(windows) == 4 + 5  # 4 windows predicted


@pytest.mark.parametrize("with_failed_window", [False, True], ids=["every-file-left-out", "every-window-failed"])
def test_make_predict_on_a_folder_where_nothing_can_be_predicted_still_writes_every_files_reason(
        trained_run, tmp_path, with_failed_window):
    """No input gives a sample: the Makefile's recipe writes both tables of failed rows and ends with status 1.

    Either the recipe leaves every file out (extract has nothing to do), or a video it keeps
    fails in extract too (its window's audio is gone): extract exits 2 in both cases.
    """
    import shutil
    import subprocess
    import sys

    from tests.emoprep.media_factory import truncated_copy

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "notes.wav").write_text("a text file named .wav\n")
    (folder / "zero.mp4").write_bytes(b"")
    expected = {"notes.wav": "unreadable audio: ", "zero.mp4": "unreadable video: "}
    if with_failed_window:
        whole = make_video(tmp_path / "whole.mp4", 3.0, audio=tones(3.0, 48_000, (300.0,)), size="160x120",
                           faststart=True)
        truncated_copy(whole, folder / "cut.mp4", keep=0.05)  # its header reads; its one window has no audio
        expected["cut.mp4"] = "empty audio: "
    out = tmp_path / "predictions.csv"
    repo = Path(__file__).resolve().parents[1]
    # -o install: use the interpreter running these tests (BIN) as it is; never (re)build a venv here.
    result = subprocess.run(["make", "-s", "-o", "install", "predict", f"BIN={Path(sys.executable).parent}",
                             f"VIDEOS={folder}", f"RUN={trained_run}", f"OUT={out}", "PREDICT_OPTIONS=--device cpu",
                             "EXTRACT_OPTIONS=--max-failures 100% --face-detector haar --workers 1"],
                            cwd=repo, capture_output=True, text=True)
    assert result.returncode == 2 and "Error 1" in result.stderr, result.stderr  # make reports the recipe's 1
    assert "no window could be predicted" in result.stderr
    with out.with_name("predictions-videos.csv").open(newline="") as file:
        files = {row["source"]: row for row in csv.DictReader(file)}
    assert set(files) == set(expected)
    for source, reason in expected.items():
        assert files[source]["reason"].startswith(reason) and source in files[source]["reason"], files[source]
        assert files[source]["emotion"] == "" and files[source]["failed"] == ("1" if source == "cut.mp4" else "0")
    with out.open(newline="") as file:
        assert sorted((row["source"], row["status"]) for row in csv.DictReader(file)) == [
            (source, "failed") for source in sorted(expected)]

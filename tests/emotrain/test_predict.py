"""`emotrain predict` and the Predictor API: probabilities, windows, videos, missing modalities, bad input."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from emotrain.checkpoint import CheckpointError
from emotrain.cli import main
from emotrain.config import ConfigError
from emotrain.predict import Predictor, branch_means_path, prepare
from tests.emotrain.shard_factory import (
    FakeUtterance, audio_for, encode_flac, encode_frames, frames_for, make_shards, write_tar,
)

FAST = ["--model", "small", "--workers", "0", "--device", "cpu", "--batch-size", "4"]


def emotrain(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"), {"train": [4, 4], "val": [3, 3], "test": [3, 3]},
                       seconds=(0.2, 0.4))


def fit(shards: Path, out: Path, modality: str) -> Path:
    result = emotrain("fit", "--shards", shards, "--split", "paper", "--out", out, "--modality", modality,
                      "--epochs", "1", *FAST)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def av_run(labelled, tmp_path_factory):
    return fit(labelled.root, tmp_path_factory.mktemp("runs") / "av", "av")


@pytest.fixture(scope="module")
def audio_run(labelled, tmp_path_factory):
    return fit(labelled.root, tmp_path_factory.mktemp("runs") / "a", "a")


# ------------------------------------------------------------------ shard format v2 samples, built here

def v2_sample(key: str, source: str, start: float, seconds: float, *, audio: bool = True, video: bool = True,
              emotion: str | None = None, seed: int = 0) -> tuple[str, dict[str, bytes]]:
    """A v2 sample: source/start/end, null labels unless given, .flac or .frames.jpg left out when absent."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * 16_000)
    utt = FakeUtterance(key=key, emotion=emotion or "hap", gender="F", n_samples=n_samples,
                        n_frames=math.ceil(n_samples / 640))
    meta = {"format_version": 2, "utterance_id": key, "corpus": "clips", "speaker": "x", "group": "all",
            "emotion": emotion, "gender": None, "corpus_label": None, "label_policy": None, "source": source,
            "start": start, "end": start + seconds, "region": "full", "extra": {},
            "n_samples": n_samples if audio else 0, "n_frames": utt.n_frames if video else 0,
            "face_ratio": 1.0 if video else None, "detector": "fixed" if video else None}
    members = {"json": json.dumps(meta).encode()}
    if audio:
        members["flac"] = encode_flac(audio_for(utt, rng))
    if video:
        members["frames.jpg"] = encode_frames(frames_for(utt, rng))
    return key, members


def write_unlabelled_set(root: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    """An unlabelled v2 set: no splits.json, one shard listed in index.json."""
    root.mkdir(parents=True, exist_ok=True)
    write_tar(root / "clips-all-0000.tar", samples)
    index = {"format_version": 2, "classes": {"emotion": ["ang", "hap", "neu", "sad"], "gender": ["F", "M"]},
             "shards": [{"file": "clips-all-0000.tar", "samples": len(samples), "bytes": 0, "sha256": ""}]}
    (root / "index.json").write_text(json.dumps(index))
    return root


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


# ------------------------------------------------------------------ the API

def test_the_api_gives_the_networks_own_probabilities_for_complete_samples(av_run, labelled):
    predictor = Predictor.from_run(av_run, device="cpu")
    rng = np.random.default_rng(0)
    lengths = [8_000, 4_480]
    audio = [(rng.standard_normal(n) * 3000).astype(np.int16) for n in lengths]
    frames = [rng.integers(0, 255, (math.ceil(n / 640), 96, 96, 3), dtype=np.uint8) for n in lengths]
    result = predictor.predict(audio, frames)
    assert result.emotion.shape == (2, 4) and result.gender.shape == (2, 2)
    assert np.allclose(result.emotion.sum(axis=1), 1) and np.allclose(result.gender.sum(axis=1), 1)
    assert result.missing == (None, None)
    # The same numbers as the network's forward on the same inputs, prepared as training decodes them.
    samples = [prepare(a, f) for a, f in zip(audio, frames)]
    steps = max(s.steps for s in samples)
    audio_in = torch.zeros(2, steps * 640)
    frames_in = torch.zeros(2, steps, 3, 96, 96, dtype=torch.uint8)
    for row, s in enumerate(samples):
        audio_in[row, : len(s.audio)] = torch.from_numpy(s.audio)
        frames_in[row, : s.steps] = torch.from_numpy(s.frames)
    with torch.no_grad():
        emotion_logits, gender_logits = predictor.model(audio_in, frames_in, torch.tensor([s.steps for s in samples]))
    assert np.allclose(result.emotion, torch.softmax(emotion_logits.double(), -1).numpy(), atol=1e-5)
    assert np.allclose(result.gender, torch.softmax(gender_logits.double(), -1).numpy(), atol=1e-5)
    # A float waveform in [-1, 1] is the same signal as its int16 form.
    as_float = predictor.predict([audio[0] / 32768.0], [frames[0]])
    assert np.allclose(as_float.emotion[0], result.emotion[0], atol=1e-5)
    with pytest.raises(ValueError, match="frames must be"):
        predictor.predict([audio[0]], [frames[0][..., 0]])
    with pytest.raises(ValueError, match="neither"):
        predictor.predict([None], [None])


def test_the_api_imports_nothing_of_emoprep(av_run):
    code = ("import sys, numpy as np\n"
            "from emotrain.predict import Predictor\n"
            f"p = Predictor.from_run({str(av_run)!r}, device='cpu')\n"
            "r = p.predict([np.zeros(3200, np.int16)], [np.zeros((5, 96, 96, 3), np.uint8)])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('emoprep', 'cv2', 'ffmpeg')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_missing_modality_is_filled_with_the_branch_mean_not_zeros(av_run, labelled):
    predictor = Predictor.from_run(av_run, device="cpu")
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(6_400) * 3000).astype(np.int16)
    frames = rng.integers(0, 255, (10, 96, 96, 3), dtype=np.uint8)
    result = predictor.predict([audio, None, audio], [None, frames, frames])
    assert result.missing == ("video", "audio", None)
    assert np.allclose(result.emotion.sum(axis=1), 1)
    cache = branch_means_path(av_run / "best.pt")
    assert cache.is_file()  # computed once per checkpoint, from the run's training shards
    means = torch.load(cache, weights_only=True)
    assert means["samples"] == 8 and means["audio"].shape == (16,) and means["video"].shape == (64,)
    # What the LSTM saw for the audio-only sample: its audio features beside the mean visual features.
    sample = prepare(audio, None)
    model = predictor.model
    with torch.no_grad():
        audio_features = model.audio(torch.from_numpy(sample.audio)[None], torch.tensor([sample.steps]))
        visual = means["video"].expand(1, sample.steps, -1)
        expected, _ = model.heads(torch.cat([audio_features, visual], dim=-1), torch.tensor([sample.steps]))
    assert np.allclose(result.emotion[0], torch.softmax(expected.double(), -1).numpy()[0], atol=1e-5)
    # Zeros in (silence / black frames) is another input, and gives other probabilities.
    zeros = Predictor.from_run(av_run, device="cpu", fill="zeros").predict([audio], [None])
    assert zeros.missing == (None,) and not np.allclose(zeros.emotion[0], result.emotion[0], atol=1e-4)


def test_without_the_training_shards_a_one_modality_sample_fails_with_the_reason(av_run, tmp_path):
    run = tmp_path / "copied-run"
    shutil.copytree(av_run, run)
    branch_means_path(run / "best.pt").unlink(missing_ok=True)
    predictor = Predictor.from_run(run, device="cpu", fill_shards=str(tmp_path / "elsewhere"))
    with pytest.raises(ValueError, match="sample 0: no video: the branch means .* need the run's training shards"):
        predictor.predict([np.ones(3200, np.int16)], [None])
    # Complete samples are still predicted.
    assert predictor.predict([np.ones(3200, np.int16)], [np.zeros((5, 96, 96, 3), np.uint8)]).emotion.shape == (1, 4)


def test_an_audio_only_run_cannot_predict_a_sample_without_audio(audio_run):
    predictor = Predictor.from_run(audio_run, device="cpu")
    with pytest.raises(ValueError, match="no audio, and this run was trained on audio alone"):
        predictor.predict([None], [np.zeros((5, 96, 96, 3), np.uint8)])
    assert predictor.predict([np.ones(3200, np.int16)], [None]).missing == (None,)


def test_a_run_from_another_config_or_a_corrupt_checkpoint_is_a_one_line_error(av_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(av_run, other)
    config = json.loads((other / "config.json").read_text())
    config["train"]["modality"] = "a"
    config["model"]["modality"] = "a"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="trained with another configuration: modality"):
        Predictor.from_run(other)
    result = emotrain("predict", "--run", other, "--shards", tmp_path, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "another configuration" in result.output
    corrupt = tmp_path / "corrupt"
    shutil.copytree(av_run, corrupt)
    (corrupt / "best.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable emotrain checkpoint"):
        Predictor.from_run(corrupt)
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: not a run configuration"):
        Predictor.from_run(corrupt)


# ------------------------------------------------------------------ the command

def test_predict_writes_a_row_per_window_and_per_video_with_missing_and_failed_windows(av_run, tmp_path):
    samples = [
        v2_sample("talk_mp4-w000", "talk.mp4", 0.0, 0.4, seed=1),
        v2_sample("talk_mp4-w001", "talk.mp4", 0.4, 0.2, seed=2),
        v2_sample("silent_mp4-w000", "silent.mp4", 0.0, 0.3, audio=False, seed=3),
        v2_sample("noface_mp4-w000", "noface.mp4", 0.0, 0.3, video=False, seed=4),
        v2_sample("broken_mp4-w000", "broken.mp4", 0.0, 0.3, seed=5),
    ]
    samples[4][1]["flac"] = b"not a flac"
    shards = write_unlabelled_set(tmp_path / "clips-shards", samples)
    out = tmp_path / "out" / "predictions.csv"
    result = emotrain("predict", "--run", av_run, "--shards", shards, "--out", out, "--timeline", "--device", "cpu",
                      "--batch-size", "2")
    assert result.exit_code == 3, result.output  # some windows failed, the others were predicted
    assert "predicted 4 of 5 windows of 4 videos" in result.output
    assert "1 audio, 2 audio+video, 1 video; filled in: audio for 1, video for 1; 1 failed" in result.output
    assert "failed broken.mp4: broken_mp4-w000: " in result.output
    rows = {r["key"]: r for r in read_csv(out)}
    assert list(read_csv(out)[0])[:9] == ["key", "source", "start", "end", "status", "modalities", "filled",
                                          "face_ratio", "p_ang"]
    for key, row in rows.items():
        if row["status"] == "ok":
            assert sum(float(row[f"p_{e}"]) for e in ("ang", "hap", "neu", "sad")) == pytest.approx(1, abs=1e-5)
            assert float(row["p_F"]) + float(row["p_M"]) == pytest.approx(1, abs=1e-5)
            assert row["emotion"] == max(("ang", "hap", "neu", "sad"), key=lambda e: float(row[f"p_{e}"]))
    assert (rows["silent_mp4-w000"]["modalities"], rows["silent_mp4-w000"]["filled"]) == ("video", "audio")
    assert (rows["noface_mp4-w000"]["modalities"], rows["noface_mp4-w000"]["filled"]) == ("audio", "video")
    assert rows["broken_mp4-w000"]["status"] == "failed" and "flac" in rows["broken_mp4-w000"]["reason"].lower()
    assert rows["broken_mp4-w000"]["p_ang"] == ""
    # Per video: the windows' probabilities averaged by duration (0.4 s and 0.2 s).
    videos = {r["source"]: r for r in read_csv(out.with_name("predictions-videos.csv"))}
    w0, w1 = rows["talk_mp4-w000"], rows["talk_mp4-w001"]
    for e in ("ang", "hap", "neu", "sad"):
        expected = (0.4 * float(w0[f"p_{e}"]) + 0.2 * float(w1[f"p_{e}"])) / 0.6
        assert float(videos["talk.mp4"][f"p_{e}"]) == pytest.approx(expected, abs=1e-5)
    assert (videos["talk.mp4"]["windows"], videos["talk.mp4"]["seconds"]) == ("2", "0.6")
    assert (videos["broken.mp4"]["failed"], videos["broken.mp4"]["emotion"]) == ("1", "")
    timelines = sorted(p.name for p in (out.parent / "predictions-timelines").iterdir())
    assert timelines == ["noface.mp4.png", "silent.mp4.png", "talk.mp4.png"]
    assert (out.parent / "predictions-timelines" / "talk.mp4.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_on_a_labelled_split_scores_it_and_writes_parquet(av_run, labelled, tmp_path):
    out = tmp_path / "test.parquet"
    result = emotrain("predict", "--run", av_run, "--shards", labelled.root, "--split", "paper", "--part", "test",
                      "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pylist()
    assert sorted(r["key"] for r in table) == sorted(labelled.keys["test"])
    assert all(r["true_emotion"] in ("ang", "hap", "neu", "sad") and r["modalities"] == "audio+video" for r in table)
    correct = sum(r["emotion"] == r["true_emotion"] for r in table) / len(table)
    assert f"emotion WA {correct:.1%}" in result.output and "on 6 labelled" in result.output
    assert pq.read_table(tmp_path / "test-videos.parquet").num_rows == len({r["source"] for r in table})
    # --drop hides a modality from every sample: what a missing one costs, measured on labels.
    dropped = emotrain("predict", "--run", av_run, "--shards", labelled.root, "--split", "paper",
                       "--out", tmp_path / "no-video.csv", "--drop", "video", "--device", "cpu")
    assert dropped.exit_code == 0 and "6 audio; filled in: video for 6" in dropped.output


def test_bad_shard_folders_are_one_line_errors(av_run, labelled, tmp_path):
    result = emotrain("predict", "--run", av_run, "--shards", tmp_path, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1 and "index.json: not found" in result.output
    result = emotrain("predict", "--run", av_run, "--shards", labelled.root, "--split", "loso-9",
                      "--out", tmp_path / "p.csv")
    assert result.exit_code == 1 and "no split 'loso-9'; available: paper" in result.output
    result = emotrain("predict", "--run", av_run, "--shards", labelled.root, "--out", tmp_path / "p.txt")
    assert result.exit_code == 2 and "give a .csv or .parquet file" in result.output

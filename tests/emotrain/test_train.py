"""emotrain fit / evaluate on small generated shards: learning, files, resume, NaN, bad input."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emotrain.cli import main
from emotrain.objective import Objective
from emotrain.metrics import SCALAR_KEYS
from emotrain.metrics_log import TENSORBOARD_KEYS
from tests.emotrain.shard_factory import make_shards, rewrite_member

REQUIRED_KEYS = {"epoch", "part", "joint_loss", "unweighted_nll", "emotion_nll", "gender_nll", "emotion_nll_sum",
                 "gender_nll_sum", "emotion_wa", "emotion_ua", "emotion_f1", "gender_acc", "w_emotion", "w_gender",
                 "samples_per_s", "confusion", "skipped", "lr"}
TIMING_KEYS = {"samples_per_s"}
FAST = ["--model", "small", "--workers", "0", "--device", "cpu", "--batch-size", "4"]


def emotrain(*args: str) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def fit_args(shards: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", "--shards", shards, "--split", "paper", "--out", out, *FAST, *extra]


def rows_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Enough to learn from: train 4 shards (speakers alternate F, M), val and test 2 each; 0.2-0.4 s."""
    return make_shards(tmp_path_factory.mktemp("shards"), {"train": [10, 10, 10, 10], "val": [8, 8], "test": [6, 6]},
                       seconds=(0.2, 0.4))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """For the mechanics (resume, NaN, refusals, corrupt samples): a few short samples."""
    return make_shards(tmp_path_factory.mktemp("tiny"), {"train": [4, 3], "val": [4, 4], "test": [2]},
                       seconds=(0.1, 0.2))


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "av"
    result = emotrain(*fit_args(shards.root, run, "--epochs", "6", "--lr", "5e-3", "--batch-size", "8"))
    assert result.exit_code == 0, result.output
    return run, result.output


def test_fit_learns_and_writes_the_run_folder(trained):
    run, output = trained
    rows = rows_of(run)
    assert [(r["epoch"], r["part"]) for r in rows] == [(e, p) for e in range(1, 7) for p in ("train", "val")]
    assert all(REQUIRED_KEYS <= set(r) for r in rows)
    final = rows[-1]
    assert final["samples"] == 16 and final["skipped"] == 0
    assert final["emotion_wa"] >= 0.6 and final["gender_acc"] >= 0.8, final  # chance: 0.25 and 0.5
    assert rows[-2]["unweighted_nll"] < rows[0]["unweighted_nll"]
    assert final["w_emotion"] + final["w_gender"] == pytest.approx(1.0)
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "part", *SCALAR_KEYS, "samples", "skipped", "lr"]
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["model"] == "small" and config["model"]["modality"] == "av"
    assert "epoch 6/6" in output and "best val unweighted_nll" in output
    assert not (run / "tensorboard").exists()  # only with --tensorboard


def test_checkpoints_load_with_weights_only(trained):
    run, _ = trained
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert last["epoch"] == 6 and 1 <= best["epoch"] <= 6
    assert {"model", "weighting", "optimizer", "scheduler", "rng", "config", "best"} <= set(last)
    assert set(last["rng"]) == {"torch", "cuda", "numpy", "python"}
    val = {r["epoch"]: r for r in rows_of(run) if r["part"] == "val"}
    assert best["best"]["value"] == min(r["unweighted_nll"] for r in val.values())
    assert best["best"]["value"] == val[best["epoch"]]["unweighted_nll"]


def test_evaluate_writes_metrics_and_confusion_png(trained, tmp_path):
    run, _ = trained
    result = emotrain("evaluate", "--run", run, "--split", "paper", "--workers", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "eval-paper-test.json").read_text())
    assert REQUIRED_KEYS - {"epoch", "part", "lr"} <= set(metrics)
    assert (metrics["part"], metrics["samples"]) == ("test", 12)
    assert (run / "eval-paper-test-confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "emotion  WA" in result.output
    # Re-scoring the last checkpoint on val gives the figures fit logged for its last epoch.
    out = tmp_path / "val" / "metrics.json"
    result = emotrain("evaluate", "--run", run, "--split", "paper", "--part", "val", "--checkpoint", "last",
                      "--out", out, "--workers", "0", "--device", "cpu", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    again, logged = json.loads(out.read_text()), rows_of(run)[-1]
    assert again["confusion"] == logged["confusion"] and again["gender_acc"] == logged["gender_acc"]
    assert again["emotion_nll_sum"] == pytest.approx(logged["emotion_nll_sum"], rel=1e-5)
    assert (tmp_path / "val" / "metrics-confusion.png").is_file()


def test_resume_gives_the_same_metrics_as_one_run(tiny, tmp_path):
    straight, halted = tmp_path / "straight", tmp_path / "halted"
    assert emotrain(*fit_args(tiny.root, straight, "--epochs", "2")).exit_code == 0
    assert emotrain(*fit_args(tiny.root, halted, "--epochs", "1")).exit_code == 0
    resumed = emotrain(*fit_args(tiny.root, halted, "--epochs", "2", "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output
    assert without_timing(rows_of(halted)) == without_timing(rows_of(straight))


def tensorboard_scalars(run: Path, part: str) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of every scalar tag in RUN/tensorboard/<part>, as TensorBoard itself reads them."""
    events = EventAccumulator(str(run / "tensorboard" / part))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_hold_the_metrics_and_a_resume_repeats_no_epoch(tiny, tmp_path):
    run = tmp_path / "run"
    assert emotrain(*fit_args(tiny.root, run, "--epochs", "1", "--tensorboard")).exit_code == 0
    after_one = (run / "last.pt").read_bytes()
    assert emotrain(*fit_args(tiny.root, run, "--epochs", "2", "--resume", "--tensorboard")).exit_code == 0
    # As if epoch 2's metrics and events were written and training died before its last.pt:
    # the resume trains epoch 2 again, and TensorBoard must show it once, the second time.
    (run / "last.pt").write_bytes(after_one)
    result = emotrain(*fit_args(tiny.root, run, "--epochs", "3", "--resume", "--tensorboard"))
    assert result.exit_code == 0, result.output
    rows = rows_of(run)
    assert [(r["epoch"], r["part"]) for r in rows] == [(e, p) for e in (1, 2, 3) for p in ("train", "val")]
    for part in ("train", "val"):
        scalars = tensorboard_scalars(run, part)
        assert set(scalars) == set(TENSORBOARD_KEYS)
        for key in TENSORBOARD_KEYS:
            steps, values = zip(*scalars[key])
            assert steps == (1, 2, 3), (part, key)
            # Event files store float32; samples_per_s differs between the two epoch-2 attempts.
            assert values == pytest.approx([r[key] for r in rows if r["part"] == part], rel=1e-6), (part, key)


def test_tensorboard_missing_is_a_clear_error_before_the_run_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    result = emotrain(*fit_args(tiny.root, tmp_path / "run", "--epochs", "1", "--tensorboard"))
    assert result.exit_code == 1 and "--tensorboard needs the tensorboard package" in result.output
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert emotrain(*fit_args(tiny.root, run, "--epochs", "1")).exit_code == 0
    last_before = (run / "last.pt").read_bytes()
    forward, calls = Objective.forward, []

    def poisoned(self, *args):
        losses = forward(self, *args)
        calls.append(self.training)
        if sum(calls) == 2:
            return losses._replace(joint=losses.joint * float("nan"))
        return losses

    monkeypatch.setattr(Objective, "forward", poisoned)
    result = emotrain(*fit_args(tiny.root, run, "--epochs", "3", "--resume"))
    assert result.exit_code == 1
    assert "epoch 2, batch 2: the joint loss is nan" in result.output
    assert (run / "last.pt").read_bytes() == last_before
    assert {r["epoch"] for r in rows_of(run)} == {1}


def test_a_run_is_never_mixed_with_another_configuration(shards, tiny, trained, tmp_path):
    run, _ = trained
    again = emotrain(*fit_args(shards.root, run, "--epochs", "7"))
    assert again.exit_code == 1 and "already holds a run" in again.output
    changed = emotrain(*fit_args(shards.root, run, "--epochs", "7", "--lr", "1e-2", "--resume"))
    assert changed.exit_code == 1 and "lr: saved 0.005, now 0.01" in changed.output
    # A checkpoint of an audio-only run does not load into the audio-visual run's model.
    other = tmp_path / "audio"
    assert emotrain(*fit_args(tiny.root, other, "--epochs", "1", "--modality", "a")).exit_code == 0
    foreign = emotrain("evaluate", "--run", run, "--split", "paper", "--checkpoint", other / "last.pt",
                       "--workers", "0")
    assert foreign.exit_code == 1
    assert "trained with another configuration" in foreign.output and "modality: saved 'a', now 'av'" in foreign.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = emotrain("evaluate", "--run", run, "--split", "paper", "--checkpoint", tmp_path / "junk.pt")
    assert junk.exit_code == 1 and "not a readable emotrain checkpoint" in junk.output


def test_missing_or_empty_split_is_a_clear_error(tiny, tmp_path):
    missing = emotrain("fit", "--shards", tiny.root, "--split", "loso-1", "--out", tmp_path / "r", *FAST)
    assert missing.exit_code == 1 and "no split 'loso-1'; available: paper" in missing.output
    empty = tmp_path / "empty"
    shutil.copytree(tiny.root, empty)
    splits = json.loads((empty / "splits.json").read_text())
    splits["splits"]["paper"]["val"] = {"shards": [], "samples": 0, "counts": {}}
    (empty / "splits.json").write_text(json.dumps(splits))
    result = emotrain(*fit_args(empty, tmp_path / "r2", "--epochs", "1"))
    assert result.exit_code == 1 and "part 'val' is empty" in result.output
    assert not (tmp_path / "r2").exists()


def test_corrupt_sample_is_skipped_and_counted_or_stops_with_strict(tiny, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny.root, broken)
    key = tiny.keys["val"][3]
    rewrite_member(broken / tiny.shards["val"][0], key, "flac", b"not flac at all")
    result = emotrain(*fit_args(broken, tmp_path / "run", "--epochs", "1"))
    assert result.exit_code == 0, result.output
    assert f"skipped {broken / tiny.shards['val'][0]}: {key}: " in result.output
    val = rows_of(tmp_path / "run")[-1]
    assert (val["skipped"], val["samples"]) == (1, 7)
    strict = emotrain(*fit_args(broken, tmp_path / "strict", "--epochs", "1", "--strict"))
    assert strict.exit_code == 1 and key in strict.output and "--strict" in strict.output


def test_audio_alone_defaults_to_the_speech_network_and_its_learning_rate():
    """fit --modality a trains `speech` at 1e-3 unless told otherwise; with video the paper's network at 1e-4."""
    from emotrain.config import TrainConfig

    audio = TrainConfig(shards=("s",), split="paper", out="o", modality="a")
    assert (audio.model, audio.lr) == ("speech", 1e-3)
    both = TrainConfig(shards=("s",), split="paper", out="o")
    assert (both.model, both.lr) == ("paper", 1e-4)
    chosen = TrainConfig(shards=("s",), split="paper", out="o", modality="a", model="small", lr=3e-4)
    assert (chosen.model, chosen.lr) == ("small", 3e-4)
    assert TrainConfig.from_dict(audio.to_dict()) == audio

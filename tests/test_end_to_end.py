"""The whole path on a synthetic corpus, through the CLIs: synth -> extract -> shard -> fit -> evaluate.

The small network must learn both tasks from each modality: emotion and gender accuracy on
the held-out utterances (the paper split's validation and test parts pooled, 48 utterances,
scored with the last checkpoint so that nothing held out chose it) well above chance.

About 2 minutes on 2 cores: a corpus of 2 sessions x 4 dialogs x 24 utterances (121 improvised
with an ang/hap/neu/sad majority: 73 train, 24 val, 24 test) and 6 epochs per modality, the
learning rate cut to 0.3x after 4 (at a constant 3e-3 the last epoch swung: av's held-out gender
fell to 0.71 in one run). Measured here, held-out emotion UA / gender accuracy: av 0.67 / 0.96,
a 0.55 / 1.0, v 0.69 / 1.0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emoprep.cli import main as emoprep
from emotrain.cli import main as emotrain
from emotrain.metrics import unweighted_accuracy

CORPUS = ["--sessions", "2", "--dialogs-per-session", "4", "--utterances-per-dialog", "24"]
TRAIN = ["--model", "small", "--epochs", "6", "--lr", "3e-3", "--lr-step", "4", "--lr-gamma", "0.3", "--batch-size", "4", "--workers", "0"]
HELD_OUT = ("val", "test")
EMOTION_CHANCE = 0.25  # UA: the mean of per-class recalls, 1/4 for any constant guess


def invoke(cli, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, f"{' '.join(args[:1])} failed:\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("end_to_end")
    invoke(emoprep, "synth", "--out", str(root / "synth"), *CORPUS)
    invoke(emoprep, "extract", "--iemocap", str(root / "synth"), "--out", str(root / "work"),
           "--face-detector", "haar", "--workers", "2")
    invoke(emoprep, "shard", "--work", str(root / "work"), "--out", str(root / "shards"))
    return root / "shards"


def held_out_scores(run: Path) -> tuple[float, float, int]:
    """Emotion UA and gender accuracy over the val and test parts together, and how many samples."""
    parts = [json.loads((run / f"eval-paper-{part}.json").read_text()) for part in HELD_OUT]
    confusion = sum(np.array(p["confusion"]) for p in parts)  # rows: true class
    samples = sum(p["samples"] for p in parts)
    emotion_ua = unweighted_accuracy(confusion)
    gender_acc = sum(p["gender_acc"] * p["samples"] for p in parts) / samples
    return emotion_ua, gender_acc, samples


@pytest.fixture
def two_threads():
    """The figures above hold at two intra-op threads (the 2-core CI machine); another count reorders float
    sums, and six epochs on 200 utterances of video amplify that. Pinned so every machine trains alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("modality", ["av", "a", "v"])
def test_the_small_model_learns_both_tasks_from_each_modality(shards: Path, tmp_path: Path, modality: str,
                                                               two_threads: None):
    split = json.loads((shards / "splits.json").read_text())["splits"]["paper"]
    assert all(split[part]["samples"] >= 20 for part in HELD_OUT), split
    run = tmp_path / modality
    # Video alone under the paper's dynamic weights starves emotion (the weights drift to gender:
    # docs/experiments.md, "video alone"). Measured on these shards (torch 2.14.1, 2 threads), held-out
    # emotion UA / gender: dynamic 0.375 / 1.000, static 0.5/0.5 0.533 / 1.000, uncertainty 0.495 / 1.000.
    # The test asks whether each modality carries both tasks, so video trains with static weights.
    weighting = ("--weighting", "static") if modality == "v" else ()
    invoke(emotrain, "fit", "--shards", str(shards), "--split", "paper", "--out", str(run),
           "--modality", modality, *weighting, *TRAIN)
    for part in HELD_OUT:
        invoke(emotrain, "evaluate", "--run", str(run), "--split", "paper", "--part", part, "--checkpoint", "last")

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["part"] == "train"]
    assert [r["epoch"] for r in train] == list(range(1, 7))
    assert train[-1]["unweighted_nll"] < 0.85 * train[0]["unweighted_nll"], [r["unweighted_nll"] for r in train]

    emotion_ua, gender_acc, samples = held_out_scores(run)
    assert samples == sum(split[part]["samples"] for part in HELD_OUT)
    assert emotion_ua >= EMOTION_CHANCE + 0.15, f"{modality}: held-out emotion UA {emotion_ua:.3f}"
    assert gender_acc >= 0.85, f"{modality}: held-out gender accuracy {gender_acc:.3f}"

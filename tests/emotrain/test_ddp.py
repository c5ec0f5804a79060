"""emotrain fit under torchrun: two CPU processes (gloo), an odd number of training shards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from emotrain.cli import main
from tests.emotrain.shard_factory import make_shards


def test_two_processes_finish_and_validate_like_one(tmp_path):
    # 3 training shards of unequal sizes for 2 ranks: with plain shard splitting one rank would
    # get twice the data of the other and DDP would wait for it forever.
    fake = make_shards(tmp_path / "shards", {"train": [11, 5, 8], "val": [7, 6, 4]}, seconds=(0.3, 0.5))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "emotrain.cli", "fit", "--shards", str(fake.root), "--split", "paper", "--out", str(run),
               "--model", "small", "--device", "cpu", "--workers", "0", "--batch-size", "3", "--epochs", "2",
               "--tensorboard"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exn:
        pytest.fail(f"torchrun did not finish in 300 s (a rank waiting on another?): {exn.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("epoch 2/2 |") == 1  # only rank 0 prints
    for part in ("train", "val"):  # only rank 0 writes: one event file per part
        assert len(list((run / "tensorboard" / part).glob("events.out.tfevents.*"))) == 1, part

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["part"]) for r in rows] == [(1, "train"), (1, "val"), (2, "train"), (2, "val")]
    # Each rank trains ceil(24 / (3 * 2)) = 4 batches of 3 per epoch.
    assert rows[0]["samples"] == 24
    logged = rows[-1]
    assert logged["samples"] == 17  # every validation sample once over both ranks

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--run", str(run), "--split", "paper", "--part", "val",
                                       "--checkpoint", "last", "--out", str(out), "--workers", "0",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    single = json.loads(out.read_text())
    assert single["samples"] == 17
    assert single["confusion"] == logged["confusion"] and single["gender_acc"] == logged["gender_acc"]
    for key in ("emotion_nll_sum", "gender_nll_sum", "joint_loss", "emotion_ua", "emotion_f1"):
        assert single[key] == pytest.approx(logged[key], rel=1e-5, abs=1e-7), key

"""emotrain.metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emotrain.metrics import (
    MetricSums,
    confusion_matrix,
    is_better,
    macro_f1,
    plot_confusion,
    plot_curves,
    unweighted_accuracy,
    weighted_accuracy,
)

# 10 samples over 4 classes: true 0,0,0,0,1,1,2,2,2,3 ; predicted 0,0,1,2,1,0,2,2,2,2
TRUE = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
PRED = torch.tensor([0, 0, 1, 2, 1, 0, 2, 2, 2, 2])
CONFUSION = np.array([
    [2, 1, 1, 0],
    [1, 1, 0, 0],
    [0, 0, 3, 0],
    [0, 0, 1, 0],
])


def test_confusion_rows_are_true_columns_predicted():
    assert confusion_matrix(TRUE, PRED, 4).tolist() == CONFUSION.tolist()


def test_wa_ua_f1_by_hand():
    assert weighted_accuracy(CONFUSION) == pytest.approx(6 / 10)
    # recalls 2/4, 1/2, 3/3, 0/1
    assert unweighted_accuracy(CONFUSION) == pytest.approx((0.5 + 0.5 + 1 + 0) / 4)
    # F1 = 2TP/(support+predicted): 4/(4+3), 2/(2+2), 6/(3+5), 0/(1+0)
    assert macro_f1(CONFUSION) == pytest.approx((4 / 7 + 2 / 4 + 6 / 8 + 0) / 4)


def test_absent_classes_follow_sklearn():
    only_two = np.array([[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert unweighted_accuracy(only_two) == pytest.approx((3 / 4 + 1) / 2)
    assert macro_f1(only_two) == pytest.approx((6 / 7 + 4 / 5) / 2)
    assert math.isnan(weighted_accuracy(np.zeros((4, 4))))


def test_metric_sums_means_sums_and_confusion():
    sums = MetricSums(4)
    emotion_logits = torch.nn.functional.one_hot(PRED, 4).float()
    gender = torch.tensor([0, 1] * 5)
    gender_logits = torch.nn.functional.one_hot(torch.tensor([0] * 10), 2).float()
    emotion_nll, gender_nll = torch.arange(10.0), torch.full((10,), 0.5)
    sums.add(torch.tensor(2.0), emotion_nll[:6], gender_nll[:6], emotion_logits[:6], gender_logits[:6],
             TRUE[:6], gender[:6])
    sums.add(torch.tensor(4.0), emotion_nll[6:], gender_nll[6:], emotion_logits[6:], gender_logits[6:],
             TRUE[6:], gender[6:])
    sums.add_skipped(2)
    s = sums.summary({"emotion": 0.25, "gender": 0.75}, seconds=2.0)
    assert s["joint_loss"] == pytest.approx((2 * 6 + 4 * 4) / 10)
    assert s["emotion_nll_sum"] == pytest.approx(45.0) and s["emotion_nll"] == pytest.approx(4.5)
    assert s["gender_nll_sum"] == pytest.approx(5.0) and s["unweighted_nll"] == pytest.approx(5.0)
    assert s["confusion"] == CONFUSION.tolist() and s["emotion_wa"] == pytest.approx(0.6)
    assert s["gender_acc"] == pytest.approx(0.5)
    assert (s["samples"], s["skipped"], s["samples_per_s"], s["w_gender"]) == (10, 2, 5.0, 0.75)


def test_is_better_knows_direction_and_ignores_nan():
    assert is_better("emotion_ua", 0.6, 0.5) and not is_better("emotion_ua", 0.4, 0.5)
    assert is_better("unweighted_nll", 1.0, 2.0) and not is_better("unweighted_nll", 3.0, 2.0)
    assert is_better("gender_acc", 0.1, None) and not is_better("gender_acc", math.nan, 0.1)


def test_plots_are_pngs(tmp_path):
    rows = [{"epoch": e, "part": p, "joint_loss": 1.0 / e, "unweighted_nll": 2.0 / e, "w_emotion": 0.5,
             "w_gender": 0.5} for e in (1, 2) for p in ("train", "val")]
    plot_curves(rows, tmp_path / "curves.png")
    plot_confusion(CONFUSION.tolist(), ["ang", "hap", "neu", "sad"], tmp_path / "c.png", "test")
    for name in ("curves.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "curves.png"]  # no temp files left

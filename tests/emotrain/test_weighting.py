"""emotrain.weighting: the four joint-loss weightings against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from emotrain.weighting import TASKS, WEIGHTINGS, DWAWeighting, build_weighting


def _losses(emotion: float, gender: float, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    return {
        "emotion": torch.tensor(emotion, requires_grad=requires_grad),
        "gender": torch.tensor(gender, requires_grad=requires_grad),
    }


@pytest.mark.parametrize("name", WEIGHTINGS)
def test_every_weighting_starts_equal_and_sums_to_one(name):
    weighting = build_weighting(name)
    assert weighting.name == name
    weights = weighting.weights()
    assert list(weights) == list(TASKS)
    assert weights["emotion"] == pytest.approx(0.5) and weights["gender"] == pytest.approx(0.5)
    assert sum(weights.values()) == pytest.approx(1.0)


def test_unknown_name_and_bad_static_weights_are_rejected():
    with pytest.raises(ValueError, match="unknown loss weighting 'gradnorm'"):
        build_weighting("gradnorm")
    for bad in [(0.5,), (-1.0, 1.0), (0.0, 0.0), (float("nan"), 1.0)]:
        with pytest.raises(ValueError, match="static weights must be"):
            build_weighting("static", bad)


def test_losses_dict_is_checked():
    weighting = build_weighting("dynamic")
    with pytest.raises(ValueError, match="exactly the keys"):
        weighting({"emotion": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="must be a scalar"):
        weighting({"emotion": torch.ones(3), "gender": torch.tensor(1.0)})


def test_static_is_fixed_and_weighted_sum():
    weighting = build_weighting("static", (0.7, 0.3))
    assert list(weighting.parameters()) == []
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(weighting.parameters()), lr=0.5)
    emotion = model(torch.ones(1, 2)).sum() ** 2
    joint = weighting({"emotion": emotion, "gender": torch.tensor(2.0)})
    assert joint.item() == pytest.approx(0.7 * emotion.item() + 0.3 * 2.0)
    joint.backward()
    optimizer.step()
    assert weighting.weights() == pytest.approx({"emotion": 0.7, "gender": 0.3})


def test_dynamic_joint_loss_and_gradient_formula():
    weighting = build_weighting("dynamic")
    assert weighting({"emotion": torch.tensor(1.2), "gender": torch.tensor(0.4)}).item() == pytest.approx(0.8)
    with torch.no_grad():
        weighting.logits.copy_(torch.tensor([0.3, -0.8]))
    losses = _losses(1.3, 0.25)
    joint = weighting(losses)
    joint.backward()
    w = torch.softmax(torch.tensor([0.3, -0.8]), 0)
    l = torch.tensor([1.3, 0.25])
    mean = (w * l).sum()
    assert joint.item() == pytest.approx(mean.item())
    # d joint / d lambda_j = w_j (L_j - sum_i w_i L_i)
    torch.testing.assert_close(weighting.logits.grad, w * (l - mean))
    assert weighting.weights() == pytest.approx(dict(zip(TASKS, w.tolist())))


def test_dynamic_moves_weight_toward_the_lower_loss():
    weighting = build_weighting("dynamic")
    optimizer = torch.optim.SGD(weighting.parameters(), lr=1.0)
    for _ in range(5):
        optimizer.zero_grad()
        weighting(_losses(1.4, 0.2)).backward()  # gender is easier
        optimizer.step()
    weights = weighting.weights()
    assert weights["gender"] > 0.6 and sum(weights.values()) == pytest.approx(1.0)


def test_uncertainty_formula_gradient_and_reported_weights():
    weighting = build_weighting("uncertainty")
    s = torch.tensor([0.5, -1.0])
    with torch.no_grad():
        weighting.log_variance.copy_(s)
    l = torch.tensor([1.1, 0.3])
    joint = weighting(_losses(1.1, 0.3))
    expected = (l / (2 * torch.exp(s)) + s / 2).sum()
    assert joint.item() == pytest.approx(expected.item())
    joint.backward()
    torch.testing.assert_close(weighting.log_variance.grad, -l * torch.exp(-s) / 2 + 0.5)
    precision = torch.exp(-s)
    assert weighting.weights() == pytest.approx(dict(zip(TASKS, (precision / precision.sum()).tolist())))
    assert sum(weighting.weights().values()) == pytest.approx(1.0)


def test_uncertainty_optimum_is_the_loss():
    # Minimising over s_i alone gives e^{s_i} = L_i: training converges to the loss scale.
    weighting = build_weighting("uncertainty")
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        weighting(_losses(2.0, 0.5)).backward()
        optimizer.step()
    torch.testing.assert_close(torch.exp(weighting.log_variance.detach()), torch.tensor([2.0, 0.5]), atol=0.02, rtol=0.02)


def test_dwa_equal_for_two_epochs_then_softmax_of_ratios():
    weighting = build_weighting("dwa")
    assert list(weighting.parameters()) == []
    # epochs 1 and 2: w = 1 each (K-scaled), so the joint loss is L_e + L_g
    assert weighting(_losses(1.0, 0.5)).item() == pytest.approx(1.5)
    weighting.end_epoch({"emotion": 1.2, "gender": 0.6})
    assert weighting.weights() == pytest.approx({"emotion": 0.5, "gender": 0.5})
    weighting.end_epoch({"emotion": 1.0, "gender": 0.3})
    ratios = torch.tensor([1.0 / 1.2, 0.3 / 0.6])
    scaled = 2 * torch.softmax(ratios / 2.0, 0)
    assert weighting.weights() == pytest.approx(dict(zip(TASKS, (scaled / 2).tolist())))
    assert sum(weighting.weights().values()) == pytest.approx(1.0)
    # the task whose loss fell less (emotion) gets more weight
    assert weighting.weights()["emotion"] > 0.5
    assert weighting(_losses(0.9, 0.2)).item() == pytest.approx((scaled * torch.tensor([0.9, 0.2])).sum().item())
    # a third epoch slides the window: ratios of epochs 3 over 2
    weighting.end_epoch({"emotion": 0.5, "gender": 0.3})
    ratios = torch.tensor([0.5 / 1.0, 0.3 / 0.3])
    expected = torch.softmax(ratios / 2.0, 0)
    assert weighting.weights() == pytest.approx(dict(zip(TASKS, expected.tolist())))


def test_dwa_end_epoch_rejects_bad_losses():
    weighting = DWAWeighting()
    with pytest.raises(ValueError, match="mean losses must be a dict with exactly the keys"):
        weighting.end_epoch({"emotion": 1.0})
    with pytest.raises(ValueError, match="finite positive"):
        weighting.end_epoch({"emotion": 0.0, "gender": 1.0})
    with pytest.raises(ValueError, match="finite positive"):
        weighting.end_epoch({"emotion": math.inf, "gender": 1.0})
    assert int(weighting.epochs_seen) == 0


def _move_state(name: str):
    """A weighting of `name` whose weights are no longer the initial ones."""
    weighting = build_weighting(name, (0.8, 0.2))
    if name in ("dynamic", "uncertainty"):
        with torch.no_grad():
            next(weighting.parameters()).copy_(torch.tensor([0.9, -0.4]))
    elif name == "dwa":
        for emotion, gender in ((1.0, 1.0), (0.9, 0.4), (0.8, 0.35)):
            weighting.end_epoch({"emotion": emotion, "gender": gender})
    return weighting


@pytest.mark.parametrize("name", WEIGHTINGS)
def test_state_dict_round_trip_restores_weights(name):
    source = _move_state(name)
    assert source.weights()["emotion"] != pytest.approx(0.5)
    restored = build_weighting(name)
    restored.load_state_dict(source.state_dict())
    assert restored.weights() == pytest.approx(source.weights())
    losses = _losses(0.7, 0.45)
    assert restored(losses).item() == pytest.approx(source(losses).item())

"""emotrain.stats against values worked out by hand (and scipy's permutation test where it is installed)."""

import itertools

import numpy as np
import pytest

from emotrain.stats import (
    EXACT_TEST,
    MONTE_CARLO_TEST,
    compare_paired,
    holm,
    mean_and_std,
    paired_bootstrap_ci,
    sign_flip_test,
    smallest_p,
)


def test_sign_flip_all_positive_gives_the_smallest_p():
    # 32 sign assignments of [1..5]; only all-plus and all-minus reach |mean| 3.
    p, test = sign_flip_test([1, 2, 3, 4, 5])
    assert p == pytest.approx(2 / 32) == pytest.approx(smallest_p(5))
    assert test == EXACT_TEST


def test_sign_flip_counts_ties_with_the_observed_mean():
    # |sum| = 6; the sums of +-1 +-2 +-3 +-4 at least 6 from 0 are +-10, +-8 (1 flipped), +-6 (2 flipped).
    d = [1, -2, 3, 4]
    by_hand = sum(abs(sum(s * x for s, x in zip(signs, d))) >= 6
                  for signs in itertools.product((-1, 1), repeat=4)) / 16
    assert by_hand == 6 / 16
    assert sign_flip_test(d)[0] == pytest.approx(by_hand)


def test_sign_flip_zero_differences_are_not_significant():
    assert sign_flip_test([0.0, 0.0, 0.0])[0] == 1.0


def test_sign_flip_matches_scipy_where_available():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, size=9)
    reference = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                       alternative="two-sided").pvalue
    assert sign_flip_test(d)[0] == pytest.approx(reference)


def test_sign_flip_beyond_the_exact_limit_is_monte_carlo_and_close():
    d = np.r_[np.full(12, 1.0), np.full(10, -1.0)]  # 22 pairs: mean 2/22
    p, test = sign_flip_test(d)
    assert test == MONTE_CARLO_TEST
    # Exact: |sum of 22 random signs| >= 2 <=> not 0; P(sum = 0) = C(22, 11) / 2^22.
    from math import comb
    assert p == pytest.approx(1 - comb(22, 11) / 2 ** 22, abs=0.005)


def test_bootstrap_of_two_values_spans_them():
    # Resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    assert paired_bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)


def test_bootstrap_of_a_constant_is_that_constant_and_is_reproducible():
    assert paired_bootstrap_ci([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))
    d = [0.1, -0.05, 0.3, 0.2, 0.0, 0.15]
    assert paired_bootstrap_ci(d, seed=1) == paired_bootstrap_ci(d, seed=1)
    low, high = paired_bootstrap_ci(d)
    assert low < np.mean(d) < high
    assert min(d) <= low and high <= max(d)


def test_compare_paired_is_b_minus_a():
    result = compare_paired([0.5, 0.6, 0.4, 0.5, 0.55], [0.6, 0.7, 0.5, 0.6, 0.65])
    assert result.n == 5
    assert result.mean_difference == pytest.approx(0.1)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1, 0.1))
    assert result.p_value == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="same length"):
        compare_paired([1, 2], [1])


def test_holm_adjustment():
    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.02), max(0.04, 1 * 0.04); input order kept.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_mean_and_std():
    assert mean_and_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_and_std([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError):
        mean_and_std([])

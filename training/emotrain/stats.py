"""Paired statistics for comparing training configurations run on the same folds and seeds.

Two configurations trained on the same fold with the same seed see the same data in the same
order, so their difference on that (fold, seed) is one paired observation; fold-to-fold spread
(one held-out speaker is harder than another) cancels in the difference. On n such differences:

- `paired_bootstrap_ci`: percentile bootstrap confidence interval of the mean difference
  (resample the n pairs with replacement; the interval's ends are the percentiles of the
  resampled means). Seeded, so a table regenerates exactly.
- `sign_flip_test`: the paired permutation test. Under the null hypothesis that the two
  configurations are exchangeable, each difference is as likely to have either sign; the
  two-sided p-value is the share of the 2^n sign assignments whose mean difference is at least
  as far from 0 as the observed one. Exact (all assignments enumerated) up to
  EXACT_LIMIT pairs, a seeded Monte Carlo estimate beyond. With n pairs the smallest
  attainable exact p is 2 / 2^n: 0.0625 for 5 pairs, so five folds and one seed can never
  reach p < 0.05 (`smallest_p` says so before anyone reads a table).
- `holm`: Holm's step-down adjustment of a family of p-values (every pair of configurations
  is compared, so a raw p < 0.05 among fifteen comparisons says little).

numpy only: emotrain's install carries no scipy. Known values are in tests/emotrain/test_stats.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EXACT_LIMIT = 20  # 2^20 sign assignments (about a million) are enumerated in chunks; beyond, Monte Carlo
MONTE_CARLO_DRAWS = 200_000
BOOTSTRAP_RESAMPLES = 10_000
EXACT_TEST = "exact paired permutation (sign-flip) test, two-sided"
MONTE_CARLO_TEST = f"paired permutation (sign-flip) test, two-sided, {MONTE_CARLO_DRAWS:,} Monte Carlo draws"


@dataclass(frozen=True)
class PairedComparison:
    """B - A over n paired observations."""

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # the test's name, as the table prints it


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_and_std of no values")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def paired_bootstrap_ci(differences: Sequence[float], confidence: float = 0.95,
                        resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `differences` (resampling the pairs)."""
    d = _differences(differences)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def sign_flip_test(differences: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """Two-sided p-value of the paired permutation test on the mean difference, and the test's name."""
    d = _differences(differences)
    observed = abs(d.mean())
    # A relative tolerance so that assignments equal to the observed mean up to rounding count as extreme.
    threshold = observed - 1e-12 * max(1.0, float(np.abs(d).sum()))
    if d.size <= EXACT_LIMIT:
        extreme = 0
        for signs in _all_sign_assignments(d.size):
            extreme += int(np.count_nonzero(np.abs(signs @ d) / d.size >= threshold))
        return extreme / 2 ** d.size, EXACT_TEST
    rng = np.random.default_rng(seed)
    extreme, done = 0, 0
    while done < MONTE_CARLO_DRAWS:
        count = min(20_000, MONTE_CARLO_DRAWS - done)
        signs = rng.choice((-1.0, 1.0), size=(count, d.size))
        extreme += int(np.count_nonzero(np.abs(signs @ d) / d.size >= threshold))
        done += count
    # The observed assignment counts as one draw, so the estimate is never 0 (Phipson & Smyth 2010).
    return (extreme + 1) / (MONTE_CARLO_DRAWS + 1), MONTE_CARLO_TEST


def _all_sign_assignments(n: int, chunk: int = 1 << 16):
    """Every vector in {-1, +1}^n, as rows of (up to `chunk`, n) float arrays."""
    bits = np.arange(n)
    for start in range(0, 2 ** n, chunk):
        codes = np.arange(start, min(start + chunk, 2 ** n))[:, None]
        yield np.where((codes >> bits) & 1, 1.0, -1.0)


def smallest_p(n: int) -> float:
    """The smallest two-sided p the exact sign-flip test can give with n pairs (no ties at 0)."""
    return 2 / 2 ** n if n >= 1 else 1.0


def compare_paired(a: Sequence[float], b: Sequence[float], seed: int = 0) -> PairedComparison:
    """B - A on the same observations: mean, 95 % bootstrap CI, sign-flip p-value."""
    if len(a) != len(b):
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    differences = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    low, high = paired_bootstrap_ci(differences, seed=seed)
    p, test = sign_flip_test(differences, seed=seed)
    return PairedComparison(int(differences.size), float(differences.mean()), low, high, p, test)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def _differences(values: Sequence[float]) -> np.ndarray:
    d = np.asarray(values, dtype=np.float64).ravel()
    if d.size == 0:
        raise ValueError("no paired differences")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"paired differences must be finite, got {d.tolist()}")
    return d


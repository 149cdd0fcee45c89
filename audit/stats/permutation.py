"""Permutation intervals: tests that hold under the dependence of cross-validated verdicts, inverted.

Verdicts of a cross-validated adversary are not independent (each probe
trains the models that judge the other folds), so they get a **permutation
interval** (`permutation_interval`): the adversary is retrained in worlds
where the two models trade places on random probes, which is the null
hypothesis made true, and the interval collects the shifts that test does
not reject. `inverted_pvalue` turns an interval procedure without a
closed-form test into its p-value (scipy's ``brentq``).

Written here, not taken from scipy: ``scipy.stats.permutation_test`` cannot
retrain an adversary in each relabelled world or invert its test into the
union interval below; it would also draw its resamples from the generator
in another order, so every pinned number of an audit would move for no gain
in validity.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from audit.stats.estimate import _BOOT_CHUNK, Estimate
from audit.stats.exact import clopper_pearson


PERMUTATIONS = 1000
"""Relabelled worlds per permutation test. With 1 + 1000 = 1001 (odd) in every p-value's denominator, no
p-value can equal a level of the form α/m exactly, so "p < α/m" and "the interval at 1 − α/m excludes 0"
never differ by a rounding at the boundary."""


DIGITS = 12  # decimals a permutation statistic is compared at


def _tail(count: int, n_null: int) -> float:
    """Two-sided Monte-Carlo p-value from the count of null statistics at least as extreme on one side."""
    return min(1.0, 2.0 * (1 + count) / (1 + n_null))


def _count_needed(alpha: float, n_null: int) -> int:
    """The smallest one-sided count whose `_tail` is at least α: the rank of the interval's bounds."""
    count = max(0, math.ceil(alpha * (1 + n_null) / 2.0 - 1.0))
    while count > 0 and _tail(count - 1, n_null) >= alpha:
        count -= 1
    while _tail(count, n_null) < alpha:
        count += 1
    return count


def permutation_interval(observed: float, null, confidence: float = 0.95, *, per_probe,
                         bounds: tuple[float, float] = (-1.0, 1.0), n: int | None = None,
                         method: str = "permutation", details: dict | None = None) -> Estimate:
    """Interval and p-value of one test: exact at 0 under any dependence, never too narrow for a discrete statistic.

    The interval is the union of two, each an inverted test, and the row's
    p-value is the smallest α at which that union excludes 0:

    - the **permutation shift interval**: `null` holds the statistic in B
      relabelled worlds in which there is no difference by construction (the
      models traded places on random probes, and every adversary that learns
      was retrained there). "The truth is δ" is rejected when `observed` − δ
      is extreme among them, with the (1 + count)/(1 + B) p-value that keeps a
      Monte-Carlo permutation test valid at any B (Phipson & Smyth 2010).
      At δ = 0 this test is exact whatever n and whatever the dependence
      between verdicts (the worlds reproduce it: folds, shared probes).
    - the **share interval** (`share_interval`): Clopper–Pearson bounds on
      the share of probes that count for and against, Bonferroni-combined.
      Valid at every truth for independent probes, and as wide as a small,
      discrete sample deserves: five probes that all tie say little, where
      the shift interval of a null with no spread would say "exactly 0".

    Their union keeps the exactness of the first at 0 (its p-value is never
    smaller) and the coverage of the second away from 0. `per_probe` holds
    the per-probe values whose mean is `observed`, within `bounds`.
    """
    per_probe = np.asarray(per_probe, dtype=float)
    n = len(per_probe) if n is None else n
    # the statistic on a grid of 1e-12: sums of the same contributions in another order must tie, not differ by
    # a rounding (a monotone map of the statistic, so the test stays exact)
    observed = round(float(observed), DIGITS) + 0.0 if math.isfinite(observed) else observed
    z = np.sort(np.round(np.asarray(null, dtype=float), DIGITS)) + 0.0
    details = {**(details or {}), "null_worlds": len(z),
               "interval": "union of the permutation shift interval and the Clopper–Pearson share interval"}

    def restate(level: float) -> Estimate:
        return permutation_interval(observed, z, level, per_probe=per_probe, bounds=bounds, n=n, method=method,
                                    details=details)

    if len(z) == 0 or len(per_probe) == 0 or not math.isfinite(observed):
        return Estimate(observed if n else math.nan, math.nan, math.nan, n, confidence, method, None, details, restate)
    shares = _Shares(per_probe / bounds[1])
    need = _count_needed(1.0 - confidence, len(z))
    shift_low = observed - z[len(z) - need] if need else -math.inf  # the need-th largest null statistic
    shift_high = observed - z[need - 1] if need else math.inf  # the need-th smallest
    share_low, share_high = (bounds[1] * b for b in shares.interval(confidence))
    low = min(max(min(shift_low, share_low), bounds[0]), bounds[1])
    high = max(min(max(shift_high, share_high), bounds[1]), bounds[0])
    above = _tail(len(z) - int(np.searchsorted(z, observed, side="left")), len(z))  # lower bound > 0 below this
    below = _tail(int(np.searchsorted(z, observed, side="right")), len(z))  # upper bound < 0 below this
    # the union excludes 0 from above when both parts do, so p is the larger part's on each side
    p_value = min(max(above, shares.p_above()) if above < 1.0 else 1.0,
                  max(below, shares.p_below()) if below < 1.0 else 1.0)
    return Estimate(float(observed), float(low), float(high), n, confidence, method, p_value, details, restate)


class _Shares:
    """Per-probe values in [−1, 1] as the shares of probes reaching each level for (+) and against (−).

    A value's positive part is x⁺ = Σ_j Δ_j·[x ≥ t_j] on the levels t_j
    (steps Δ_j), so E x⁺ lies between Σ_j Δ_j·P(x ≥ t_j) and
    Σ_j Δ_j·P(x > t_{j−1}); the same for the negative part. Clopper–Pearson
    bounds every one of those shares, Bonferroni over all of them. The
    levels are {1} when every value is −1, 0 or 1 (verdicts), else {½, 1}
    (ties, and gaps of two verdicts); values in between are rounded the
    cautious way, which costs width, never coverage.
    """

    def __init__(self, values: np.ndarray):
        self.n = len(values)
        levels = np.array([1.0]) if np.all(np.isin(np.abs(values), (0.0, 1.0))) else np.array([0.5, 1.0])
        below = np.r_[0.0, levels[:-1]]
        self.steps = levels - below
        self.plus = ([int(np.sum(values >= t)) for t in levels], [int(np.sum(values > b)) for b in below])
        self.minus = ([int(np.sum(values <= -t)) for t in levels], [int(np.sum(values < -b)) for b in below])

    def interval(self, confidence: float) -> tuple[float, float]:
        each = 1.0 - (1.0 - confidence) / (2 * len(self.steps))  # every share's bounds hold together
        low = lambda counts: np.array([clopper_pearson(k, self.n, each)[0] for k in counts])  # noqa: E731
        high = lambda counts: np.array([clopper_pearson(k, self.n, each)[1] for k in counts])  # noqa: E731
        return (float(self.steps @ (low(self.plus[0]) - high(self.minus[1]))),
                float(self.steps @ (high(self.plus[1]) - low(self.minus[0]))))

    def p_above(self) -> float:
        """The smallest α at which the lower bound is above 0."""
        return inverted_pvalue(lambda level: (self.interval(level)[0], math.inf))

    def p_below(self) -> float:
        """The smallest α at which the upper bound is below 0."""
        return inverted_pvalue(lambda level: (-math.inf, self.interval(level)[1]))


def share_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """An interval for the mean of independent per-probe values in [−1, 1], valid at any n and any truth.

    The mean is E x⁺ − E x⁻; Clopper–Pearson bounds on the shares of probes
    for and against (`_Shares`), Bonferroni-combined, hold together with
    probability ≥ 1 − α whatever the probes' own distributions, so the
    corners cover. Nothing here needs the values to be symmetric or
    identically distributed, which is why it stays valid where sign-flip
    and bootstrap intervals fail: a handful of probes, most of them ties.
    """
    return _Shares(np.asarray(values, dtype=float)).interval(confidence)


def sign_flip_null(values, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``values`` with their signs flipped at random, n_perm times: the null of a symmetric statistic.

    For per-probe values of an adversary that learned nothing from the other
    probes (the judge), and for per-probe gaps between two such comparisons,
    a probe on which the two models trade places negates its value; so under
    "no difference" every sign pattern is as likely as the observed one.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    out = np.empty(n_perm)
    for start in range(0, n_perm, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_perm - start)
        # one random byte gives eight signs; flipped sum = 2·(kept part) − total
        kept = np.unpackbits(rng.integers(0, 256, size=(size, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
        out[start:start + size] = (2.0 * (kept @ values) - values.sum()) / max(n, 1)
    return out


def inverted_pvalue(interval_at: Callable[[float], tuple[float, float]], null: float = 0.0) -> float:
    """The smallest α at which the two-sided interval ``interval_at(1 − α)`` excludes ``null``.

    For interval procedures without a closed-form test (e.g. the Bonferroni
    corners of a split gap): their p-value is defined by the interval itself,
    so the two always agree. The procedure's intervals must shrink as α grows.
    The boundary is found by Brent's method (scipy) on how far the interval
    clears ``null``, then nudged so that the interval at 1 − p does exclude it.
    """
    from scipy.optimize import brentq

    def clearance(alpha: float) -> float:
        low, high = interval_at(1.0 - alpha)
        return max(low - null, null - high)

    top, bottom = 1.0 - 1e-12, 1e-15
    if clearance(top) <= 0:
        return 1.0
    if clearance(bottom) > 0:
        return bottom
    alpha = brentq(clearance, bottom, top, xtol=1e-15)
    while clearance(alpha) <= 0:
        alpha = min(top, alpha * (1.0 + 1e-12) + 1e-15)
    return alpha

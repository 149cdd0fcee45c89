"""Confidence sequences for the mean of a bounded stream, by betting: valid at every step at once.

A fixed-n interval holds for the n chosen in advance; look at it after every
round and stop when it excludes 0, and its error grows without bound. A
confidence sequence (CS) covers the mean at every step simultaneously, so a
sequential audit may stop whenever the data look decisive.

The construction is the hedged capital process of Waudby-Smith & Ramdas,
"Estimating means of bounded random variables by betting" (JRSS-B 2023),
Theorem 3, with their approximate-GRAPA bets (eq. 25): with the stream
rescaled to y ∈ [0, 1], for each candidate mean m a gambler bets a fraction
λᵢ(m), chosen from the past alone, on y landing above m (or below it), capped
at c/m (c/(1 − m)), c = 1/2. The hedged capital
Kᵢ(m) = max(½ Π(1 + λ⁺(y − m)), ½ Π(1 − λ⁻(y − m))) is at most the sum of two
nonnegative martingales of mean ½ when m is the mean, so by Ville's
inequality P(∃t: Kₜ(m) ≥ 1/α) ≤ α, and {m : Kₜ(m) < 1/α} is a (1 − α) CS.
Its running intersection is one too. The anytime-valid p-value of a null m₀
is min(1, 1 / maxₛ≤ₜ Kₛ(m₀)): the interval at step t excludes m₀ exactly when
that p-value is ≤ α, so the two never disagree. The aGRAPA bets grow the
capital fast once the data point away from m, so a claim is settled in few
probes; the price is that no CS can decide before the capital can reach
1/α: with every bet at its cap, about log(2/α)/log(1.5) ≈ 9 observations at
α = 0.05 for a null in the middle of the range.

Two facts about non-constant means, which a learning adversary has (its
predictor improves as it trains on more rounds): the one-sided capital
Π(1 + λ⁺(y − m)) stays a supermartingale as long as every step's
conditional mean is ≤ m, so a lower bound above m says that *some* step's
predictor had an advantage above m (and the null "every step has mean 0",
which holds whenever the two models are exchangeable, is tested exactly).
The upper bound, symmetrically, is on the smallest step's mean. For an
adversary that learns nothing from earlier rounds (a fixed rule) the mean is
one number and the CS is for it.

Cross-checked against the reference implementation (the ``confseq``
package's ``betting_mart`` with ``lambda_aKelly`` bets) in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

C_TRUNCATION = 0.5  # c: the largest fraction of capital bet (WSR use 1/2 or 3/4)
GRID = 2001  # candidate means on the [0, 1] scale; endpoints are refined between neighbours


@dataclass(frozen=True)
class Sequence:
    """A running-intersection CS over a stream, one entry per step (after that step's observation)."""

    estimate: np.ndarray  # running mean
    low: np.ndarray  # at the grid's resolution, rounded outward (for plots)
    high: np.ndarray
    p_value: np.ndarray  # anytime-valid p of the null, non-increasing
    bounds: tuple[float, float]
    confidence: float
    null: float
    final_low: float  # the last step's bounds, refined between grid points
    final_high: float

    def __len__(self) -> int:
        return len(self.estimate)


def _log_capital(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log Kₜ(m) of the hedged process max(½K⁺, ½K⁻), steps x candidate means, with aGRAPA bets.

    λ = (μ̂ₜ₋₁ − m) / (σ̂²ₜ₋₁ + (μ̂ₜ₋₁ − m)²) from the past alone (WSR 2023, eq. 25; confseq's
    ``lambda_aKelly``), the positive process betting max(λ, 0) ∧ c/m, the negative one max(−λ, 0) ∧ c/(1 − m):
    each bets only on the side the data so far point to, which is what makes a test decide quickly.
    """
    m = np.atleast_1d(m)[None, :]
    t = np.arange(1, len(y) + 1)
    mu = (0.5 + np.cumsum(y)) / (t + 1)
    variance = (0.25 + np.cumsum((y - mu) ** 2)) / (t + 1)
    mu_before, variance_before = np.r_[0.5, mu[:-1]][:, None], np.r_[0.25, variance[:-1]][:, None]
    lam = (mu_before - m) / (variance_before + (mu_before - m) ** 2)
    lam_up = np.minimum(np.maximum(lam, 0.0), C_TRUNCATION / np.maximum(m, 1e-12))
    lam_down = np.minimum(np.maximum(-lam, 0.0), C_TRUNCATION / np.maximum(1.0 - m, 1e-12))
    up = np.cumsum(np.log1p(lam_up * (y[:, None] - m)), axis=0)
    down = np.cumsum(np.log1p(-lam_down * (y[:, None] - m)), axis=0)
    return np.maximum(up, down) + math.log(0.5)


def confidence_sequence(values, bounds: tuple[float, float] = (-1.0, 1.0), confidence: float = 0.95,
                        null: float = 0.0) -> Sequence:
    """The CS of the mean of ``values`` (each within ``bounds``), step by step, with the p-value of ``null``."""
    lo, hi = bounds
    x = np.asarray(values, dtype=float)
    if len(x) and (x.min() < lo - 1e-9 or x.max() > hi + 1e-9):
        raise ValueError(f"a value lies outside the stated bounds {bounds}")
    alpha = 1.0 - confidence
    y = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    if len(y) == 0:
        empty = np.zeros(0)
        return Sequence(empty, empty, empty, empty, bounds, confidence, null, lo, hi)
    grid = np.unique(np.r_[np.linspace(0.0, 1.0, GRID), (null - lo) / (hi - lo)])
    inside = _log_capital(y, grid) < math.log(1.0 / alpha)
    inside = np.logical_and.accumulate(inside, axis=0)  # running intersection
    rescale = lambda v: lo + (hi - lo) * v  # noqa: E731
    low, high = _grid_bounds(inside, grid)
    null_y = np.array([(null - lo) / (hi - lo)])
    p = np.minimum(1.0, np.exp(-np.maximum.accumulate(_log_capital(y, null_y)[:, 0])))
    final_low, final_high = _refined(y, alpha, grid, inside)
    return Sequence(estimate=np.cumsum(x) / np.arange(1, len(x) + 1), low=rescale(low), high=rescale(high),
                    p_value=p, bounds=bounds, confidence=confidence, null=null,
                    final_low=rescale(final_low), final_high=rescale(final_high))


def _grid_bounds(inside: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the grid points just outside the CS (outward rounding); an empty CS collapses to its last point."""
    any_in = inside.any(axis=1)
    first = np.where(any_in, inside.argmax(axis=1), 0)
    last = np.where(any_in, len(grid) - 1 - inside[:, ::-1].argmax(axis=1), 0)
    low = grid[np.maximum(first - 1, 0)]
    high = grid[np.minimum(last + 1, len(grid) - 1)]
    return low, high


def _refined(y: np.ndarray, alpha: float, grid: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """The last step's running-intersection bounds, refined by bisection between grid neighbours.

    Each step's own set is an interval (the hedged capital is quasi-convex in
    m, WSR 2023), so where the running intersection first shut out the grid
    point next to its bound, that step's own bound lies between the two grid
    points, and bisection finds it. Later steps may have shut out a little
    more of that gap; taking the first step's bound is conservative (a wider
    interval), never narrower than the CS.
    """
    last = inside[-1]
    if not last.any():
        return float("nan"), float("nan")
    first, final = int(last.argmax()), int(len(grid) - 1 - last[::-1].argmax())
    level = math.log(1.0 / alpha)

    def boundary(outside: int, inner: int) -> float:
        step = int(np.argmax(~inside[:, outside])) + 1  # the first step whose set shut that grid point out
        return _boundary(y[:step], grid[outside], grid[inner], level)

    low = grid[first] if first == 0 else boundary(first - 1, first)
    high = grid[final] if final == len(grid) - 1 else boundary(final + 1, final)
    return float(low), float(high)


def _boundary(y: np.ndarray, outside: float, inside: float, level: float, iterations: int = 40) -> float:
    """Bisection for the m between ``outside`` (capital ≥ level) and ``inside`` (below) where the capital crosses."""
    for _ in range(iterations):
        middle = (outside + inside) / 2.0
        if _log_capital(y, np.array([middle]))[-1, 0] >= level:
            outside = middle
        else:
            inside = middle
    return outside

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
class Capital:
    """The state of the betting after some steps, for a set of candidate means: what a longer stream continues.

    Running sums are continued with ``np.cumsum`` from their last value, which
    adds in the same order as one pass over the whole stream, so a sequence
    extended round by round is bit-for-bit the one computed at once.
    """

    steps: int
    sum_y: float  # Σ y
    sum_squares: float  # Σ (y − μ̂)², each step's deviation from its own running mean
    log_up: np.ndarray  # log Π(1 + λ⁺(y − m)) per candidate mean
    log_down: np.ndarray  # log Π(1 − λ⁻(y − m)) per candidate mean

    @classmethod
    def start(cls, candidates: int) -> "Capital":
        return cls(0, 0.0, 0.0, np.zeros(candidates), np.zeros(candidates))


@dataclass(frozen=True)
class _Carry:
    """A sequence's state after its last step (`confidence_sequence` continues it when the stream grows)."""

    values: np.ndarray  # the stream so far, as given
    grid: Capital
    null: Capital
    null_peak: float  # the largest log-capital of the null so far
    inside: np.ndarray  # the running intersection after the last step, per grid point
    shut: np.ndarray  # per grid point, the first step (from 1) whose set shut it out; 0 while inside
    sum_x: float


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
    carry: _Carry | None = None

    def __len__(self) -> int:
        return len(self.estimate)


def _continued(total: float, steps: np.ndarray) -> np.ndarray:
    """The running sums of ``steps`` after ``total`` (exactly those of one pass over the whole stream)."""
    return np.cumsum(np.r_[total, steps])[1:]


def _betting(y: np.ndarray, m: np.ndarray, capital: Capital) -> tuple[np.ndarray, Capital]:
    """log Kₜ(m) of the hedged process max(½K⁺, ½K⁻) for each new step ``y`` and candidate mean ``m``, continuing
    ``capital``, with aGRAPA bets; and the capital after the last step.

    λ = (μ̂ₜ₋₁ − m) / (σ̂²ₜ₋₁ + (μ̂ₜ₋₁ − m)²) from the past alone (WSR 2023, eq. 25; confseq's
    ``lambda_aKelly``), the positive process betting max(λ, 0) ∧ c/m, the negative one max(−λ, 0) ∧ c/(1 − m):
    each bets only on the side the data so far point to, which is what makes a test decide quickly.
    """
    t = np.arange(capital.steps, capital.steps + len(y) + 1)  # the step before the new ones, then each new one
    sum_y = _continued(capital.sum_y, y)
    mu = (0.5 + np.r_[capital.sum_y, sum_y]) / (t + 1)  # the running mean μ̂ (the prior ½ before any step)
    sum_squares = _continued(capital.sum_squares, (y - mu[1:]) ** 2)
    variance = (0.25 + np.r_[capital.sum_squares, sum_squares]) / (t + 1)  # σ̂² (the prior ¼ before any step)
    mu_before, variance_before = mu[:-1, None], variance[:-1, None]
    m = m[None, :]
    lam = (mu_before - m) / (variance_before + (mu_before - m) ** 2)
    lam_up = np.minimum(np.maximum(lam, 0.0), C_TRUNCATION / np.maximum(m, 1e-12))
    lam_down = np.minimum(np.maximum(-lam, 0.0), C_TRUNCATION / np.maximum(1.0 - m, 1e-12))
    up = np.cumsum(np.vstack([capital.log_up, np.log1p(lam_up * (y[:, None] - m))]), axis=0)[1:]
    down = np.cumsum(np.vstack([capital.log_down, np.log1p(-lam_down * (y[:, None] - m))]), axis=0)[1:]
    after = Capital(int(t[-1]), float(sum_y[-1]), float(sum_squares[-1]), up[-1], down[-1])
    return np.maximum(up, down) + math.log(0.5), after


def _log_capital(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log Kₜ(m) over a whole stream, steps x candidate means (`_betting` from the start)."""
    m = np.atleast_1d(np.asarray(m, dtype=float))
    return _betting(np.asarray(y, dtype=float), m, Capital.start(len(m)))[0]


def _grid_of(bounds: tuple[float, float], null: float) -> np.ndarray:
    lo, hi = bounds
    return np.unique(np.r_[np.linspace(0.0, 1.0, GRID), (null - lo) / (hi - lo)])


def confidence_sequence(values, bounds: tuple[float, float] = (-1.0, 1.0), confidence: float = 0.95,
                        null: float = 0.0, previous: Sequence | None = None) -> Sequence:
    """The CS of the mean of ``values`` (each within ``bounds``), step by step, with the p-value of ``null``.

    ``previous``: the sequence of an earlier, shorter stream; where ``values``
    continues it (the same bounds, level and null, and its values a prefix of
    these), only the new steps are computed, and the result is identical to
    computing the whole stream at once. A sequential audit's streams only grow
    between rounds, so each round costs its own steps, not the whole audit's.
    """
    lo, hi = bounds
    x = np.asarray(values, dtype=float)
    if len(x) and (x.min() < lo - 1e-9 or x.max() > hi + 1e-9):
        raise ValueError(f"a value lies outside the stated bounds {bounds}")
    if not _continues(previous, x, bounds, confidence, null):
        previous = _empty(bounds, confidence, null)
    return _extend(previous, x[len(previous):])


def _continues(previous: Sequence | None, x: np.ndarray, bounds, confidence: float, null: float) -> bool:
    return (previous is not None and previous.carry is not None and previous.bounds == bounds
            and previous.confidence == confidence and previous.null == null and len(previous) <= len(x)
            and np.array_equal(previous.carry.values, x[:len(previous)]))


def _empty(bounds: tuple[float, float], confidence: float, null: float) -> Sequence:
    lo, hi = bounds
    grid = _grid_of(bounds, null)
    carry = _Carry(np.zeros(0), Capital.start(len(grid)), Capital.start(1), -math.inf,
                   np.ones(len(grid), dtype=bool), np.zeros(len(grid), dtype=int), 0.0)
    empty = np.zeros(0)
    return Sequence(empty, empty, empty, empty, bounds, confidence, null, lo, hi, carry)


def _extend(previous: Sequence, x: np.ndarray) -> Sequence:
    """``previous`` continued by the new values ``x``."""
    if len(x) == 0:
        return previous
    lo, hi = previous.bounds
    carry = previous.carry
    grid = _grid_of(previous.bounds, previous.null)
    alpha = 1.0 - previous.confidence
    y = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    log_k, grid_capital = _betting(y, grid, carry.grid)
    inside = np.logical_and.accumulate(np.vstack([carry.inside, log_k < math.log(1.0 / alpha)]), axis=0)[1:]
    shut = carry.shut.copy()
    newly = carry.inside & ~inside[-1]
    shut[newly] = carry.grid.steps + np.argmax(~inside[:, newly], axis=0) + 1
    null_log_k, null_capital = _betting(y, np.array([(previous.null - lo) / (hi - lo)]), carry.null)
    peak = np.maximum.accumulate(np.r_[carry.null_peak, null_log_k[:, 0]])[1:]
    rescale = lambda v: lo + (hi - lo) * v  # noqa: E731
    low, high = _grid_bounds(inside, grid)
    all_x = np.r_[carry.values, x]
    final_low, final_high = _refined(np.clip((all_x - lo) / (hi - lo), 0.0, 1.0), alpha, grid, inside[-1], shut)
    sum_x = _continued(carry.sum_x, x)
    steps = np.arange(len(previous) + 1, len(previous) + len(x) + 1)
    return Sequence(estimate=np.r_[previous.estimate, sum_x / steps], low=np.r_[previous.low, rescale(low)],
                    high=np.r_[previous.high, rescale(high)],
                    p_value=np.r_[previous.p_value, np.minimum(1.0, np.exp(-peak))], bounds=previous.bounds,
                    confidence=previous.confidence, null=previous.null, final_low=rescale(final_low),
                    final_high=rescale(final_high),
                    carry=_Carry(all_x, grid_capital, null_capital, float(peak[-1]),
                                 inside[-1], shut, float(sum_x[-1])))


def _grid_bounds(inside: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the grid points just outside the CS (outward rounding); an empty CS collapses to its last point."""
    any_in = inside.any(axis=1)
    first = np.where(any_in, inside.argmax(axis=1), 0)
    last = np.where(any_in, len(grid) - 1 - inside[:, ::-1].argmax(axis=1), 0)
    low = grid[np.maximum(first - 1, 0)]
    high = grid[np.minimum(last + 1, len(grid) - 1)]
    return low, high


def _refined(y: np.ndarray, alpha: float, grid: np.ndarray, last: np.ndarray,
             shut: np.ndarray) -> tuple[float, float]:
    """The last step's running-intersection bounds (``last``: which grid points are still inside), refined by
    bisection between grid neighbours.

    Each step's own set is an interval (the hedged capital is quasi-convex in
    m, WSR 2023), so where the running intersection first shut out the grid
    point next to its bound (at step ``shut`` of that point), that step's own
    bound lies between the two grid points, and bisection finds it. Later
    steps may have shut out a little more of that gap; taking the first step's
    bound is conservative (a wider interval), never narrower than the CS.
    """
    if not last.any():
        return float("nan"), float("nan")
    first, final = int(last.argmax()), int(len(grid) - 1 - last[::-1].argmax())
    level = math.log(1.0 / alpha)

    def boundary(outside: int, inner: int) -> float:
        return _boundary(y[:shut[outside]], grid[outside], grid[inner], level)

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

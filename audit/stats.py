"""Advantage estimators with honest intervals, multiplicity corrections and two-sample tests.

Every number the audit states about an adversary leaves this module as an
`Estimate`: a point estimate, its interval, n, the confidence level, the
interval method and, where a test applies, a p-value. Choices, and why:

- **One procedure per row.** A row's p-value is the inversion of its own
  interval: the smallest α at which the two-sided interval excludes 0 (the
  interval is the set of values its test does not reject). So p < α exactly
  when the interval excludes 0, and a reader never sees the two disagree.
- Counts of independent correct verdicts get **exact** Clopper–Pearson
  intervals, with the two-sided exact binomial test they invert: they never
  cover less than the stated level, whatever n and the true rate are.
- Verdicts of a cross-validated adversary are not independent (each probe
  trains the models that judge the other folds), so they get a **permutation
  interval** (`permutation_interval`): the adversary is retrained in worlds
  where the two models trade places on random probes, which is the null
  hypothesis made true, and the interval collects the shifts that test does
  not reject.
- Statistics over probes without a test (mean cosine) get a **bootstrap over
  probes** (groups), never over individual responses: the responses to one
  probe are not independent.
- Choosing the best of several adversaries is itself a multiple comparison; the
  headline bound pays for it (Bonferroni) or selects on data it does not report
  (held-out split).

Only numpy, scipy and statsmodels; scipy and statsmodels are imported where
they are used, so importing this module stays cheap. What is a library's and
what is written here, and why:

- scipy's special functions give the Beta quantiles of Clopper–Pearson
  (the same numbers as statsmodels' ``proportion_confint(method="beta")``,
  tested, at a fortieth of its cost inside p-value inversions), the binomial
  tails, the normal and t quantiles; scipy's ``brentq`` inverts intervals;
  statsmodels adjusts p-values by Benjamini–Hochberg.
- Holm's step-down is three lines here because statsmodels' Holm path runs
  ``gc.collect()`` on every call (same numbers, tested).
- ``scipy.stats.bootstrap`` does not resample ragged groups (a probe's
  several responses) nor widen its level for small n (Hesterberg's expanded
  BCa, which the coverage benchmark needs below 50 probes), and
  ``scipy.stats.permutation_test`` cannot retrain an adversary in each
  relabelled world or invert its test into the union interval below; both
  would also draw their resamples from the generator in another order, so
  every pinned number of an audit would move for no gain in validity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

_BOOT_CHUNK = 256  # resamples drawn at once: bounds memory at ~chunk x groups x 4 bytes


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval: the only shape in which an advantage leaves this module.

    `restate`, where the procedure allows it, gives the same estimate with its
    interval (and its p-value, unchanged) at another confidence level: the
    headline and the multiplicity corrections need each interval at a
    stricter level, computed by the very procedure that made it.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float
    method: str
    p_value: float | None = None
    details: dict = field(default_factory=dict)
    restate: Callable[[float], "Estimate"] | None = field(default=None, repr=False, compare=False)


def excludes(low: float | None, high: float | None, null: float = 0.0) -> bool:
    """Whether an interval lies wholly on one side of ``null``: what its p-value below α must mean."""
    return low is not None and high is not None and (low > null or high < null)


# ---- exact intervals for counts ----------------------------------------------


def clopper_pearson(k, n, confidence: float = 0.95):
    """Exact two-sided interval for a binomial rate k/n; works on scalars and numpy arrays.

    Clopper–Pearson inverts two one-sided exact binomial tests, so its coverage
    is at least `confidence` for every n and every true rate (conservative,
    never optimistic). n = 0 gives (0, 1): no data, no claim. The bounds are
    scipy's Beta quantile as a ufunc, the same numbers as statsmodels'
    ``proportion_confint(method="beta")`` (tested) at a fortieth of the cost,
    which matters inside p-value inversions and simulations.
    """
    from scipy.special import betaincinv

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, betaincinv(k, n - k + 1, tail), 0.0)
        hi = np.where(k < n, betaincinv(k + 1, n - k, 1.0 - tail), 1.0)
    lo = np.where(n > 0, lo, 0.0)
    hi = np.where(n > 0, hi, 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _binomial_two_sided(correct: int, n: int) -> float:
    """Twice the smaller exact binomial tail at rate 1/2: the test that Clopper–Pearson inverts.

    Clopper–Pearson at level 1 − α excludes 1/2 exactly when one tail is below
    α/2, so this p-value (not scipy's likelihood-ordered two-sided one) is the
    one whose p < α means the same as "the interval excludes chance".
    """
    from scipy.special import bdtr, bdtrc

    upper = float(bdtrc(correct - 1, n, 0.5)) if correct > 0 else 1.0  # P[X >= correct]
    lower = float(bdtr(correct, n, 0.5))  # P[X <= correct]
    return min(1.0, 2.0 * min(upper, lower))


def accuracy_advantage(correct: int, n: int, confidence: float = 0.95) -> Estimate:
    """Advantage 2·accuracy − 1 of an adversary that labels n balanced items, `correct` of them right.

    On a balanced test set 2·acc − 1 equals TPR − FPR, the distinguishing
    advantage. The interval is Clopper–Pearson on the accuracy mapped through
    2p − 1 (monotone, so coverage carries over exactly); the p-value is the
    two-sided exact binomial test it inverts (see `_binomial_two_sided`). The
    estimate is signed: a negative value means worse than chance and is
    reported as such, not folded. The items must be independent (e.g. one
    verdict per probe of an adversary that learned nothing from the others).
    """
    correct, n = int(correct), int(n)
    if not 0 <= correct <= n:
        raise ValueError(f"correct={correct} must lie in [0, n={n}]")
    lo, hi = clopper_pearson(correct, n, confidence)
    estimate = 2.0 * correct / n - 1.0 if n else math.nan
    return Estimate(
        estimate=estimate, ci_low=2.0 * lo - 1.0, ci_high=2.0 * hi - 1.0, n=n,
        confidence=confidence, method="clopper-pearson", p_value=_binomial_two_sided(correct, n) if n else 1.0,
        details={"correct": correct, "accuracy": correct / n if n else math.nan,
                 "test": "two-sided exact binomial test of accuracy 1/2 (the test Clopper–Pearson inverts)"},
        restate=lambda level: accuracy_advantage(correct, n, level),
    )


def at_confidence(est: Estimate, confidence: float) -> Estimate:
    """The same estimate with its interval recomputed, by its own procedure, at another level.

    Multiplicity corrections (the headline bound, provenance gaps, split gaps)
    need each interval at a stricter level. An estimate whose procedure cannot
    be rerun at another level (a bootstrap of a statistic without a test) is
    refused rather than approximated.
    """
    if est.restate is None:
        raise ValueError(f"an estimate by {est.method!r} cannot restate its interval at another level")
    return est.restate(confidence)


# ---- permutation intervals ------------------------------------------------------

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


# ---- bootstrap over probes ---------------------------------------------------


def _expanded_alpha(alpha: float, n: int) -> float:
    """Tail level of Hesterberg's expanded percentile interval.

    The plain percentile bootstrap is too narrow in small samples (it uses the
    plug-in variance and normal tails); widening the level so that
    z_{α'/2} = sqrt(n/(n−1))·t_{α/2, n−1} fixes that and fades away as n grows
    (n = 50: α' ≈ 0.042 for α = 0.05; n = 1000: α' ≈ 0.0496).
    """
    from scipy.special import ndtr, stdtrit

    z = math.sqrt(n / (n - 1)) * stdtrit(n - 1, 1.0 - alpha / 2.0)
    return float(2.0 * ndtr(-z))


def _boot_indices(rng: np.random.Generator, n_groups: int, n_boot: int):
    """Resampled group indices, in chunks so that 2,000 x 5,000 never sits in memory at once."""
    done = 0
    while done < n_boot:
        size = min(_BOOT_CHUNK, n_boot - done)
        yield rng.integers(0, n_groups, size=(size, n_groups), dtype=np.int32)
        done += size


def _as_groups(values_by_group) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-group (sums, counts, values) where values is the rectangular array, or None if ragged."""
    if isinstance(values_by_group, np.ndarray) and values_by_group.dtype != object:
        arr = np.asarray(values_by_group, dtype=float)
        if arr.ndim == 1:
            return arr, np.ones(len(arr)), arr
        return arr.sum(axis=1), np.full(len(arr), arr.shape[1], dtype=float), arr
    groups = [np.asarray(g, dtype=float).ravel() for g in values_by_group]
    sums = np.array([g.sum() for g in groups], dtype=float)
    counts = np.array([g.size for g in groups], dtype=float)
    return sums, counts, None


def _ragged_take(flat: np.ndarray, starts: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The values of groups idx (with repeats), concatenated, without a Python loop over groups."""
    c = counts[idx].astype(np.int64)
    offsets = np.repeat(starts[idx] - np.concatenate(([0], np.cumsum(c)[:-1])), c)
    return flat[offsets + np.arange(c.sum())]


def _acceleration(influence: np.ndarray) -> float:
    """BCa acceleration from (jackknife) influence values: their skewness, scaled as Efron (1987)."""
    u = influence - influence.mean()
    ss = float(np.sum(u**2))
    return float(np.sum(u**3) / (6.0 * ss**1.5)) if ss > 0 else 0.0


def _jackknife_influence(statistic: Callable, take: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """mean(θ₍·₎) − θ₍ᵢ₎ leaving out one group at a time: n calls of the statistic."""
    everyone = np.arange(n)
    loo = np.array([statistic(take(np.delete(everyone, i))) for i in range(n)], dtype=float)
    return loo.mean() - loo


def _boot_distribution(values_by_group, statistic, n_boot: int, rng) -> tuple[float, np.ndarray, np.ndarray]:
    """(statistic on the data, its bootstrap replicates, per-group influence values for the BCa acceleration)."""
    sums, counts, rect = _as_groups(values_by_group)
    n = len(sums)
    if n == 0:
        return math.nan, np.empty(0), np.empty(0)
    if statistic == "mean":
        estimate = float(sums.sum() / counts.sum())
        influence = sums - estimate * counts  # exact for a (ratio of) mean(s), up to a positive scale
        if np.all(counts == counts[0]):  # fast path: equal group sizes, pooled mean = mean of group means
            means = sums / counts[0]
            reps = [means[idx].mean(axis=1) for idx in _boot_indices(rng, n, n_boot)]
        else:  # pooled mean over groups of several values: ratio of resampled sums
            reps = [sums[idx].sum(axis=1) / counts[idx].sum(axis=1) for idx in _boot_indices(rng, n, n_boot)]
        return estimate, np.concatenate(reps), influence
    if not callable(statistic):
        raise ValueError(f"statistic must be 'mean' or a callable, not {statistic!r}")
    if rect is not None:
        take = rect.__getitem__
    else:
        flat = np.concatenate([np.asarray(g, dtype=float).ravel() for g in values_by_group])
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        take = lambda idx: _ragged_take(flat, starts, counts, idx)  # noqa: E731
    estimate = float(statistic(take(np.arange(n))))
    reps = [statistic(take(i)) for idx in _boot_indices(rng, n, n_boot) for i in idx]
    return estimate, np.asarray(reps, dtype=float), _jackknife_influence(statistic, take, n)


def _bca_interval(estimate: float, reps: np.ndarray, influence: np.ndarray, confidence: float) -> tuple[float, float]:
    """Expanded BCa: bias- and skew-corrected percentile interval at a small-sample-widened level.

    BCa (Efron 1987) moves the percentile interval's quantiles by the median
    bias z0 of the replicates and the acceleration a (skewness of the
    influence values); the level is first widened as in Hesterberg (2015)
    (see `_expanded_alpha`), because BCa alone still undercovers in small samples.
    """
    from scipy.special import ndtr, ndtri

    n_boot = len(reps)
    below = (np.sum(reps < estimate) + 0.5 * np.sum(reps == estimate)) / n_boot
    z0 = ndtri(np.clip(below, 0.5 / n_boot, 1.0 - 0.5 / n_boot))
    a = _acceleration(influence)
    alpha = _expanded_alpha(1.0 - confidence, len(influence))
    z = np.array([-1.0, 1.0]) * -ndtri(alpha / 2.0)
    denominator = 1.0 - a * (z0 + z)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = ndtr(z0 + (z0 + z) / denominator)
    levels = np.where(denominator > 0, levels, [0.0, 1.0])  # correction out of its range: widest interval
    lo, hi = np.quantile(reps, levels)
    return float(lo), float(hi)


MIN_BOOTSTRAP_PROBES = 10
"""Below this many probes no bootstrap interval is stated: on skewed per-probe values (cosines) the expanded BCa
interval covered 90% at 5 probes in `benchmarks/bench_coverage.py`, 94% from 10 on."""


def bootstrap_ci(values_by_group, statistic="mean", confidence: float = 0.95, n_boot: int = 2000,
                 seed: int = 0) -> Estimate:
    """Bootstrap interval for a statistic of probe-level data, resampling whole probes.

    `values_by_group`: a 1-D array (one value per probe), a 2-D array (one row
    per probe) or a sequence of 1-D arrays (the values of each probe, e.g. the
    correctness of its several responses). Probes are the resampling unit
    because responses to the same probe are dependent.

    `statistic`: "mean" — the fast, vectorised path: mean of per-probe values,
    or the pooled mean (sum over resampled probes / their value count) for
    several values per probe — or a callable applied to the resampled array
    (rows of a 2-D array, or the concatenated values of ragged groups), which
    runs once per resample plus once per probe (jackknife).

    Interval: expanded BCa (see `_bca_interval`). Chosen over the plain
    percentile interval, which undercovers for small n and skewed statistics
    (per-probe cosines are skewed); the acceleration is exact and free for
    means, a leave-one-probe-out jackknife for callables.

    No p-value: this is for statistics that are described, not tested (the
    similarity baseline). A tested statistic gets the interval of its own test
    (`permutation_interval`), so that its p-value and interval agree.
    """
    rng = np.random.default_rng(seed)
    estimate, reps, influence = _boot_distribution(values_by_group, statistic, n_boot, rng)
    n = len(influence)
    details = {"interval": "expanded BCa (Efron 1987; Hesterberg 2015)", "resampled": "probes", "n_boot": n_boot}
    if n < MIN_BOOTSTRAP_PROBES:
        details["no_interval"] = f"fewer than {MIN_BOOTSTRAP_PROBES} probes: a bootstrap interval would undercover"
        return Estimate(estimate, math.nan, math.nan, n, confidence, "bootstrap", None, details)
    lo, hi = _bca_interval(estimate, reps, influence, confidence)
    details["boot_se"] = float(reps.std(ddof=1))
    return Estimate(estimate, lo, hi, n, confidence, "bootstrap", None, details)


# ---- two-sample test ---------------------------------------------------------


def _kernel_matrix(Z: np.ndarray, kernel: str, rng: np.random.Generator) -> tuple[np.ndarray, float | None]:
    """Gram matrix of the pooled sample and the RBF bandwidth (median heuristic) if any."""
    if kernel == "linear":
        return Z @ Z.T, None
    if kernel != "rbf":
        raise ValueError(f"kernel must be 'rbf' or 'linear', not {kernel!r}")
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    sq = np.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * (Z @ Z.T), 0.0)
    sub = rng.choice(len(Z), size=min(len(Z), 1000), replace=False)
    pair = sq[np.ix_(sub, sub)][np.triu_indices(len(sub), k=1)]
    bandwidth = float(np.sqrt(np.median(pair))) if pair.size else 0.0
    bandwidth = bandwidth if bandwidth > 0 else 1.0  # all points equal: any bandwidth gives MMD 0
    return np.exp(-sq / (2.0 * bandwidth**2)), bandwidth


def _mmd2_unbiased(K0: np.ndarray, row_sums: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each row of `labels` (1 = first sample), from a zero-diagonal Gram matrix.

    With z the indicator of the first sample: Σ_xx = zᵀK₀z, Σ_xy = zᵀr − Σ_xx,
    Σ_yy = 1ᵀr − 2zᵀr + Σ_xx (r = row sums of K₀), so every permutation costs
    one matrix product — all permutations of a chunk in one BLAS call.
    """
    z = labels.astype(K0.dtype)
    n = z.sum(axis=1)
    m = K0.shape[0] - n
    s_xx = np.einsum("pi,pi->p", z @ K0, z)
    s_xr = z @ row_sums
    s_yy = row_sums.sum() - 2.0 * s_xr + s_xx
    s_xy = s_xr - s_xx
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def mmd_permutation_test(X, Y, *, kernel: str = "rbf", n_perm: int = 500, seed: int = 0,
                         confidence: float = 0.95, max_per_sample: int = 2000) -> Estimate:
    """Kernel two-sample test (MMD) between two sets of embeddings: model-free evidence of difference.

    Unbiased MMD² with an RBF kernel whose bandwidth is the median pairwise
    distance of the pooled sample (median heuristic, so no tuning on the
    data's answer), or a linear kernel (difference of mean embeddings). The
    p-value is a permutation test: (1 + #{MMD²_perm ≥ MMD²})/(1 + n_perm),
    valid at any sample size. Samples larger than `max_per_sample` are
    randomly subsampled (recorded in details) to bound the O(N²) Gram matrix.

    No interval: MMD² is a degenerate U-statistic near zero, where bootstrap
    intervals are not valid, so ci_low/ci_high are NaN and the evidence is the
    p-value; the null's upper `confidence` quantile is given for scale.
    """
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    subsampled = len(X) > max_per_sample or len(Y) > max_per_sample
    X = X[rng.choice(len(X), max_per_sample, replace=False)] if len(X) > max_per_sample else X
    Y = Y[rng.choice(len(Y), max_per_sample, replace=False)] if len(Y) > max_per_sample else Y
    n_x, n_y = len(X), len(Y)
    details = {"kernel": kernel, "n_x": n_x, "n_y": n_y, "n_perm": n_perm, "subsampled": subsampled}
    if n_x < 2 or n_y < 2:
        return Estimate(math.nan, math.nan, math.nan, n_x + n_y, confidence, "permutation", 1.0, details)
    K, bandwidth = _kernel_matrix(np.vstack([X, Y]), kernel, rng)
    np.fill_diagonal(K, 0.0)
    row_sums = K.sum(axis=1)
    labels = np.zeros(n_x + n_y, dtype=bool)
    labels[:n_x] = True
    observed = float(_mmd2_unbiased(K, row_sums, labels[None, :])[0])
    null = np.concatenate([
        _mmd2_unbiased(K, row_sums, rng.permuted(np.tile(labels, (min(_BOOT_CHUNK, n_perm - s), 1)), axis=1))
        for s in range(0, n_perm, _BOOT_CHUNK)
    ])
    p_value = (1 + int(np.sum(null >= observed))) / (1 + n_perm)
    details.update(bandwidth=bandwidth, null_quantile=float(np.quantile(null, confidence)))
    return Estimate(observed, math.nan, math.nan, n_x + n_y, confidence, "permutation", p_value, details)


# ---- multiplicity --------------------------------------------------------------


def correct_pvalues(pvalues: Sequence[float | None]) -> tuple[list[float | None], list[float | None]]:
    """(Holm, Benjamini–Hochberg) adjusted p-values, in input order; None/NaN stay None and are not counted.

    Holm controls the family-wise error (any false category claim); BH the
    false discovery rate (the share of false ones among those flagged). Both
    are reported because per-category evidence is read both ways. BH is
    statsmodels'; Holm's step-down (`_holm`) is written out because
    statsmodels' Holm path calls ``gc.collect()`` on every call, about 0.1 s
    each in an analysis process (the same numbers, tested).
    """
    from statsmodels.stats.multitest import multipletests

    p = np.array([math.nan if v is None else float(v) for v in pvalues], dtype=float)
    ok = ~np.isnan(p)
    holm = np.full(len(p), math.nan)
    bh = np.full(len(p), math.nan)
    if ok.any():
        holm[ok] = _holm(p[ok])
        bh[ok] = multipletests(p[ok], method="fdr_bh")[1]
    as_list = lambda a: [None if math.isnan(v) else float(v) for v in a]  # noqa: E731
    return as_list(holm), as_list(bh)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's adjusted p-values: the i-th smallest times (m − i + 1), kept monotone, capped at 1 (Holm 1979)."""
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)))
    out = np.empty(len(p))
    out[order] = adjusted
    return out


def headline_bound(estimates: Mapping[str, Estimate], confidence: float = 0.95, method: str = "bonferroni",
                   *, heldout: Mapping[str, Estimate] | None = None) -> Estimate:
    """The best adversary's advantage, with the cost of having picked the best paid for.

    Picking the adversary with the largest estimate and quoting its ordinary
    95% interval overstates the evidence (the winner is the one that got
    lucky). Two honest ways:

    - "bonferroni": every adversary's interval is recomputed by its own
      procedure at level 1 − α/m (m adversaries with an estimate); then all m
      hold together with probability ≥ 1 − α, so the selected one's holds
      whatever the selection rule. The p-value is Bonferroni's, min(1, m·p),
      which is below α exactly when that stricter interval excludes 0.
      details also give `class_interval` = [max lo, max hi], the simultaneous
      interval for the class's advantage max_A Adv(A).
    - "holdout": `estimates` were measured on a selection split and `heldout`
      on disjoint probes; the winner on the selection split is reported with
      its held-out estimate at the full level — selection never saw the data
      that is reported, so no correction is needed.

    The selected adversary is the one with the largest point estimate.
    """
    valid = {name: e for name, e in estimates.items() if not math.isnan(e.estimate)}
    if not valid:
        raise ValueError("headline_bound needs at least one adversary with an estimate")
    selected = max(sorted(valid), key=lambda name: valid[name].estimate)
    if method == "holdout":
        if heldout is None or selected not in heldout:
            raise ValueError(f"holdout selection needs a held-out estimate for {selected!r}")
        report = heldout[selected]
        if report.confidence != confidence:
            report = at_confidence(report, confidence)
        details = {"selected": selected, "selection": "largest estimate on the selection split",
                   "m": len(valid), "selection_estimates": {k: e.estimate for k, e in sorted(valid.items())},
                   "inner_method": report.method, "inner_details": report.details}
        return replace(report, method="holdout", details=details)
    if method != "bonferroni":
        raise ValueError(f"method must be 'bonferroni' or 'holdout', not {method!r}")
    strict = bonferroni(valid, confidence)
    chosen = strict[selected]
    details = {
        "selected": selected, "selection": "largest estimate", "m": len(valid),
        "per_test_confidence": chosen.details["per_test_confidence"], "inner_method": valid[selected].method,
        "inner_details": valid[selected].details,
        "simultaneous": {k: [e.estimate, e.ci_low, e.ci_high] for k, e in strict.items()},
        "class_interval": [max(e.ci_low for e in strict.values()), max(e.ci_high for e in strict.values())],
    }
    return Estimate(chosen.estimate, chosen.ci_low, chosen.ci_high, chosen.n, confidence, "bonferroni",
                    chosen.p_value, details)


def bonferroni(estimates: Mapping[str, Estimate], confidence: float = 0.95) -> dict[str, Estimate]:
    """A family of m estimates, each corrected for the others: intervals that hold all together at ``confidence``.

    Each interval is restated by its own procedure at 1 − α/m and each
    p-value becomes min(1, m·p), which is below α exactly when that interval
    excludes 0 (p < α/m). The corrected estimates are stated at
    ``confidence``, the family's level; details keep the per-test level and
    the uncorrected interval and p-value.
    """
    m = len(estimates)
    per_test = 1.0 - (1.0 - confidence) / m
    family = {}
    for name, e in sorted(estimates.items()):
        strict = at_confidence(e, per_test)
        details = {**e.details, "m": m, "per_test_confidence": per_test,
                   "uncorrected": {"ci_low": e.ci_low, "ci_high": e.ci_high, "p_value": e.p_value}}
        family[name] = Estimate(e.estimate, strict.ci_low, strict.ci_high, e.n, confidence, f"{e.method}-bonferroni",
                                None if e.p_value is None else min(1.0, e.p_value * m), details)
    return family


def holm_interval(est: Estimate, p_holm: float | None) -> Estimate | None:
    """The interval that agrees with a Holm-adjusted p-value: ``est`` restated at level 1 − α·p/p_holm.

    Holm multiplies each p-value by a factor between 1 and m that depends on
    the others (p_holm / p). Widening the interval by that same factor (its
    level is 1 − α/factor) gives an interval that excludes 0 exactly when
    p_holm < α: nested between the plain interval and Bonferroni's, and what a
    reader may quote next to the corrected p-value. None where there is no
    p-value or no procedure to restate.
    """
    if p_holm is None or est.p_value is None or est.restate is None or est.p_value <= 0:
        return None
    alpha = 1.0 - est.confidence
    return at_confidence(est, 1.0 - alpha * est.p_value / p_holm)


def estimate_gap(a: Estimate, b: Estimate, confidence: float = 0.95) -> Estimate:
    """a − b for two estimates (e.g. the public and the private split), interval by Bonferroni.

    Each interval is recomputed by its own procedure at 1 − α/2 and the gap
    takes the extreme corners, so it covers at the stated level whether or
    not the two are independent. The p-value is that procedure's own, found
    by inverting it (`inverted_pvalue`): the smallest α at which the corners
    exclude 0.
    """
    def corners(level: float) -> tuple[float, float]:
        half = 1.0 - (1.0 - level) / 2.0
        sa, sb = at_confidence(a, half), at_confidence(b, half)
        return sa.ci_low - sb.ci_high, sa.ci_high - sb.ci_low

    def restate(level: float) -> Estimate:
        low, high = corners(level)
        return Estimate(a.estimate - b.estimate, low, high, a.n + b.n, level, f"{a.method}-gap", p_value,
                        {"n_a": a.n, "n_b": b.n, "per_interval_confidence": 1.0 - (1.0 - level) / 2.0}, restate)

    p_value = inverted_pvalue(corners)
    return restate(confidence)


def rank_by_evidence(rows: Sequence) -> list:
    """Result rows (e.g. one per category, ``audit.results.ResultRow``) strongest evidence first.

    Order: Holm-corrected p-value, then the higher lower bound, then the
    higher estimate. Ranking by the lower bound rather than the estimate
    keeps a small lucky category from outranking a large consistent one.
    The one rule: the analysis records each row's rank, the report reads it.
    """
    def key(row):
        p, lo, est = (_missing_as(row.p_holm, math.inf), _missing_as(row.ci_low, -math.inf),
                      _missing_as(row.estimate, -math.inf))
        return (p, -lo, -est)

    return sorted(rows, key=key)


def _missing_as(value: float | None, fallback: float) -> float:
    return fallback if value is None or math.isnan(value) else value

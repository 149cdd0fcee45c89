"""Advantage estimators with honest intervals, multiplicity corrections and two-sample tests.

Every number the audit states about an adversary leaves this module as an
`Estimate`: a point estimate, its interval, n, the confidence level, the
interval method and, where a test applies, a p-value. Choices, and why:

- Counts of correct verdicts get **exact** Clopper–Pearson intervals: an audit
  claim may end up in front of a lawyer, and exact intervals never cover less
  than the stated level, whatever n and the true rate are.
- Statistics over probes (mean cosine, per-probe advantages, paired gaps) get a
  **bootstrap over probes** (groups), never over individual responses: the
  responses to one probe are not independent, and resampling them one by one
  would make the interval too narrow.
- Choosing the best of several adversaries is itself a multiple comparison; the
  headline bound pays for it (Bonferroni) or selects on data it does not report
  (held-out split).

Only numpy, scipy and statsmodels; scipy and statsmodels are imported where
they are used, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

_BOOT_CHUNK = 256  # resamples drawn at once: bounds memory at ~chunk x groups x 4 bytes


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval: the only shape in which an advantage leaves this module."""

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float
    method: str
    p_value: float | None = None
    details: dict = field(default_factory=dict)

    def as_result(self) -> dict:
        """The fields `Store.record_results` expects; the caller adds adversary, comparison, q, t, ..."""
        return {
            "advantage": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "confidence": self.confidence,
            "ci_method": self.method,
            "p_value": self.p_value,
            "details": dict(self.details),
        }


# ---- exact intervals for counts ----------------------------------------------


def clopper_pearson(k, n, confidence: float = 0.95):
    """Exact two-sided interval for a binomial rate k/n; works on scalars and numpy arrays.

    Clopper–Pearson inverts two one-sided exact binomial tests, so its coverage
    is at least `confidence` for every n and every true rate (conservative,
    never optimistic). n = 0 gives (0, 1): no data, no claim.
    """
    from scipy.special import betaincinv  # the beta quantile as a ufunc: no per-call overhead in simulations

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


def accuracy_advantage(correct: int, n: int, confidence: float = 0.95) -> Estimate:
    """Advantage 2·accuracy − 1 of an adversary that labels n balanced items, `correct` of them right.

    On a balanced test set 2·acc − 1 equals TPR − FPR, the distinguishing
    advantage. The interval is Clopper–Pearson on the accuracy mapped through
    2p − 1 (monotone, so coverage carries over exactly). The p-value is the
    one-sided exact binomial test of accuracy ≤ 1/2: only an adversary doing
    better than a coin is evidence. The estimate is signed: a negative value
    means worse than chance and is reported as such, not folded. The items
    must be independent (e.g. one verdict per probe); `details["correct"]`
    lets `at_confidence` recompute the interval at another level.
    """
    from scipy.special import bdtrc

    correct, n = int(correct), int(n)
    if not 0 <= correct <= n:
        raise ValueError(f"correct={correct} must lie in [0, n={n}]")
    lo, hi = clopper_pearson(correct, n, confidence)
    estimate = 2.0 * correct / n - 1.0 if n else math.nan
    p_value = float(bdtrc(correct - 1, n, 0.5)) if n and correct > 0 else 1.0  # P[X >= correct | acc = 1/2]
    return Estimate(
        estimate=estimate, ci_low=2.0 * lo - 1.0, ci_high=2.0 * hi - 1.0, n=n,
        confidence=confidence, method="clopper-pearson", p_value=p_value,
        details={"correct": correct, "accuracy": correct / n if n else math.nan},
    )


def rate_difference_advantage(hits_a: int, n_a: int, hits_b: int, n_b: int,
                              confidence: float = 0.95) -> Estimate:
    """Advantage TPR − FPR = P[says teacher | teacher] − P[says teacher | suspect].

    `hits_a` of `n_a` teacher responses and `hits_b` of `n_b` suspect
    responses were called "teacher". Interval: each rate gets an exact
    Clopper–Pearson interval at level 1 − α/2 and the difference takes the
    extreme corners, [lo_a − hi_b, hi_a − lo_b]. By Bonferroni both rate
    intervals hold together with probability ≥ 1 − α, so the difference
    interval covers at least at the stated level — and, unlike Newcombe's
    score interval, it needs no independence between the two rates, which
    matters because teacher and suspect answered the same probes. The price is
    some width. p-value: Fisher's exact test, one-sided (TPR > FPR), the
    direction the adversary was built to find. The estimate is signed.
    """
    from scipy.stats import fisher_exact

    for hits, n in ((hits_a, n_a), (hits_b, n_b)):
        if not 0 <= hits <= n:
            raise ValueError(f"hits={hits} must lie in [0, n={n}]")
    per_rate = 1.0 - (1.0 - confidence) / 2.0
    lo_a, hi_a = clopper_pearson(hits_a, n_a, per_rate)
    lo_b, hi_b = clopper_pearson(hits_b, n_b, per_rate)
    tpr = hits_a / n_a if n_a else math.nan
    fpr = hits_b / n_b if n_b else math.nan
    table = [[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue) if n_a and n_b else 1.0
    return Estimate(
        estimate=tpr - fpr, ci_low=lo_a - hi_b, ci_high=hi_a - lo_b, n=int(n_a + n_b),
        confidence=confidence, method="clopper-pearson-bonferroni", p_value=p_value,
        details={"hits_a": int(hits_a), "n_a": int(n_a), "hits_b": int(hits_b), "n_b": int(n_b),
                 "tpr": tpr, "fpr": fpr},
    )


def at_confidence(est: Estimate, confidence: float) -> Estimate:
    """The same count-based estimate with its exact interval recomputed at another level.

    Multiplicity corrections (the headline bound, split gaps) need each
    interval at a stricter level; exact intervals can be recomputed from the
    counts they carry. Bootstrap estimates cannot, and are refused rather than
    approximated.
    """
    d = est.details
    if est.method == "clopper-pearson":
        return accuracy_advantage(d["correct"], est.n, confidence)
    if est.method == "clopper-pearson-bonferroni":
        return rate_difference_advantage(d["hits_a"], d["n_a"], d["hits_b"], d["n_b"], confidence)
    raise ValueError(f"an estimate by {est.method!r} carries no counts to recompute its interval at another level")


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


def _sign_flip_pvalue(deviations: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided Monte-Carlo sign-flip test that per-probe deviations are symmetric about 0.

    Under the null each probe's deviation is as likely negated, so flipping
    signs at random draws from the null distribution of their sum. The
    (1 + count)/(1 + n_perm) form keeps the p-value valid (never 0).
    """
    n = len(deviations)
    total = deviations.sum()
    observed = abs(total)
    exceed = 0
    for start in range(0, n_perm, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_perm - start)
        # one random byte gives eight signs; flipped sum = 2·(kept part) − total
        kept = np.unpackbits(rng.integers(0, 256, size=(size, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
        flipped = 2.0 * (kept @ deviations) - total
        exceed += int(np.sum(np.abs(flipped) >= observed - 1e-12 * max(1.0, observed)))
    return (1 + exceed) / (1 + n_perm)


def bootstrap_ci(values_by_group, statistic="mean", confidence: float = 0.95, n_boot: int = 2000,
                 seed: int = 0, *, null: float | None = None) -> Estimate:
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

    `null`: for "mean" only, a two-sided sign-flip test of mean = null over
    probes (exact under symmetric per-probe deviations); else p is None.
    """
    rng = np.random.default_rng(seed)
    estimate, reps, influence = _boot_distribution(values_by_group, statistic, n_boot, rng)
    n = len(influence)
    details = {"interval": "expanded BCa (Efron 1987; Hesterberg 2015)", "resampled": "probes", "n_boot": n_boot}
    if n < 2:
        return Estimate(estimate, math.nan, math.nan, n, confidence, "bootstrap", None, details)
    lo, hi = _bca_interval(estimate, reps, influence, confidence)
    details["boot_se"] = float(reps.std(ddof=1))
    p_value = None
    if null is not None:
        if statistic != "mean":
            raise ValueError("a null value is tested only for statistic='mean'")
        sums, counts, _ = _as_groups(values_by_group)
        p_value = _sign_flip_pvalue(sums - null * counts, n_boot, rng)
        details["test"] = f"sign-flip over probes, H0: mean = {null}"
    return Estimate(estimate, lo, hi, n, confidence, "bootstrap", p_value, details)


def paired_bootstrap_difference(a_by_probe, b_by_probe, confidence: float = 0.95, n_boot: int = 2000,
                                seed: int = 0) -> Estimate:
    """Difference mean(a) − mean(b) of two per-probe statistics measured on the SAME probes.

    This is the provenance finding: a = per-probe advantage teacher-vs-control,
    b = per-probe advantage teacher-vs-suspect. Resampling probes jointly keeps
    the pairing (a hard probe is hard for both comparisons), which is what makes
    the interval for the difference much narrower than two separate ones. NaN
    in either member drops the probe (counted in details).

    Interval: expanded BCa bootstrap over probes (see `bootstrap_ci`).
    p-value: two-sided sign-flip permutation test on the per-probe differences
    — exact for H0 "the two comparisons are exchangeable on each probe", and
    not an approximation that depends on the bootstrap's small-sample accuracy.
    """
    a = np.asarray(a_by_probe, dtype=float)
    b = np.asarray(b_by_probe, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D per-probe arrays of equal length, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    est = bootstrap_ci(diff, "mean", confidence, n_boot, seed, null=0.0 if diff.size else None)
    details = {**est.details, "dropped_probes": int((~keep).sum()),
               "mean_a": float(a[keep].mean()) if diff.size else math.nan,
               "mean_b": float(b[keep].mean()) if diff.size else math.nan,
               "test": "two-sided sign-flip permutation over probes"}
    return replace(est, method="paired-bootstrap", details=details)


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
    are reported because per-category evidence is read both ways.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.array([math.nan if v is None else float(v) for v in pvalues], dtype=float)
    ok = ~np.isnan(p)
    holm = np.full(len(p), math.nan)
    bh = np.full(len(p), math.nan)
    if ok.any():
        holm[ok] = multipletests(p[ok], method="holm")[1]
        bh[ok] = multipletests(p[ok], method="fdr_bh")[1]
    as_list = lambda a: [None if math.isnan(v) else float(v) for v in a]  # noqa: E731
    return as_list(holm), as_list(bh)


def headline_bound(estimates: Mapping[str, Estimate], confidence: float = 0.95, method: str = "bonferroni",
                   *, heldout: Mapping[str, Estimate] | None = None) -> Estimate:
    """The best adversary's advantage, with the cost of having picked the best paid for.

    Picking the adversary with the largest estimate and quoting its ordinary
    95% interval overstates the evidence (the winner is the one that got
    lucky). Two honest ways:

    - "bonferroni": every adversary's exact interval is recomputed at level
      1 − α/m (m adversaries with an estimate); then all m hold together with
      probability ≥ 1 − α, so the selected one's holds whatever the selection
      rule. Needs count-based estimates (see `at_confidence`). details also
      give `class_interval` = [max lo, max hi], the simultaneous interval for
      the class's advantage max_A Adv(A).
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
    m = len(valid)
    per_test = 1.0 - (1.0 - confidence) / m
    strict = {name: at_confidence(e, per_test) for name, e in sorted(valid.items())}
    chosen = strict[selected]
    details = {
        "selected": selected, "selection": "largest estimate", "m": m, "per_test_confidence": per_test,
        "inner_method": chosen.method, "inner_details": chosen.details,
        "simultaneous": {k: [e.estimate, e.ci_low, e.ci_high] for k, e in strict.items()},
        "class_interval": [max(e.ci_low for e in strict.values()), max(e.ci_high for e in strict.values())],
    }
    p_bonf = min(1.0, chosen.p_value * m) if chosen.p_value is not None else None
    return Estimate(chosen.estimate, chosen.ci_low, chosen.ci_high, chosen.n, confidence, "bonferroni",
                    p_bonf, details)


def estimate_gap(a: Estimate, b: Estimate, confidence: float = 0.95) -> Estimate:
    """a − b for two count-based estimates (e.g. the public and the private split), interval by Bonferroni.

    Each interval is recomputed at 1 − α/2 and the gap takes the extreme
    corners, so it covers at the stated level whether or not the two are
    independent. For two accuracy estimates the p-value is Fisher's exact test
    (two-sided) of equal accuracy; otherwise None.
    """
    from scipy.stats import fisher_exact

    half = 1.0 - (1.0 - confidence) / 2.0
    sa, sb = at_confidence(a, half), at_confidence(b, half)
    p_value = None
    if a.method == b.method == "clopper-pearson" and a.n and b.n:
        ka, kb = a.details["correct"], b.details["correct"]
        p_value = float(fisher_exact([[ka, a.n - ka], [kb, b.n - kb]]).pvalue)
    return Estimate(a.estimate - b.estimate, sa.ci_low - sb.ci_high, sa.ci_high - sb.ci_low, a.n + b.n,
                    confidence, f"{a.method}-gap", p_value, {"n_a": a.n, "n_b": b.n, "per_interval_confidence": half})


def rank_by_evidence(rows: Sequence[dict]) -> list[dict]:
    """Result rows (e.g. one per category) strongest evidence first, each with `evidence_rank` (1 = strongest).

    Order: corrected p-value (Holm, else the raw p-value), then the higher
    lower bound, then the higher estimate. Ranking by the lower bound rather
    than the estimate keeps a small lucky category from outranking a large
    consistent one.
    """
    def key(row: dict):
        p = row.get("p_holm", row.get("p_value"))
        p = math.inf if p is None or (isinstance(p, float) and math.isnan(p)) else p
        lo = row.get("ci_low")
        lo = -math.inf if lo is None or math.isnan(lo) else lo
        adv = row.get("advantage")
        adv = -math.inf if adv is None or math.isnan(adv) else adv
        return (p, -lo, -adv)

    ranked = sorted(rows, key=key)
    return [{**row, "evidence_rank": i} for i, row in enumerate(ranked, start=1)]

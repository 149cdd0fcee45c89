"""Multiplicity: corrections for the many rows an audit states, and for picking its best adversary.

Choosing the best of several adversaries is itself a multiple comparison;
the headline bound pays for it (Bonferroni) or selects on data it does not
report (held-out split). Per-category p-values are adjusted by Holm
(family-wise) and Benjamini–Hochberg (false discovery rate), each with the
interval that agrees with it.

statsmodels adjusts p-values by Benjamini–Hochberg (imported where it is
used); Holm's step-down is three lines here because statsmodels' Holm path
runs ``gc.collect()`` on every call (same numbers, tested).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from audit.stats.estimate import Estimate, at_confidence
from audit.stats.permutation import inverted_pvalue


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

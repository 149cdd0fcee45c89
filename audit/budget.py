"""Query-budget curves: how the measured advantage depends on the number of probes asked per model.

A curve counts probes, not queries: with S samples per probe, a point at k probes rests on q = S × k queries
per model (q, the queries per model, is the glossary's word for what a claim rests on).

Two acquisition strategies are compared on the same pool of probes:

- **stratified**: k probes drawn at random, allocated to categories in
  proportion to their size (largest remainder), so every budget sees the
  suite's mix of tasks;
- **guided** (disagreement-guided acquisition): spend the budget where a pilot
  found the teacher and suspect most apart.

Why the pilot probes are excluded from evaluation. A probe's disagreement can
only be measured by querying it; if the guided strategy picked the probes
whose *own* responses disagreed most and then measured the adversary on those
same responses, it would be graded on its own selection data and look better
than it is (the winner's curse, again). So probes with a pilot score form the
pilot split and are removed from the pool for *both* strategies, and what the
guided strategy carries over to unqueried probes is what a real auditor could
know before querying them: the pilot's mean disagreement per category. Guided
acquisition fills the budget from the most-disagreeing categories first
(random within a category); categories the pilot never saw come last.

`evaluate(selected_probe_ids) -> Estimate` is the adversary's measurement on
exactly those probes. It must train *and* test on the selected probes only
(e.g. grouped cross-validation within them); reusing a model trained on more
probes would plot a bigger-budget adversary at a small budget.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

from audit.stats import Estimate

STRATEGIES = ("stratified", "guided")


def stratified_sample(pool: Sequence[Hashable], categories: Mapping[Hashable, str], size: int,
                      rng: np.random.Generator) -> list:
    """`size` probes from `pool`, allocated to categories in proportion to their size, random within each."""
    by_cat: dict[str, list] = defaultdict(list)
    for pid in pool:
        by_cat[categories[pid]].append(pid)
    names = sorted(by_cat)
    exact = np.array([size * len(by_cat[c]) / len(pool) for c in names])
    alloc = np.floor(exact).astype(int)
    remainder_order = sorted(range(len(names)), key=lambda i: (-(exact[i] - alloc[i]), names[i]))
    for i in remainder_order[: size - alloc.sum()]:
        alloc[i] += 1
    chosen: list = []
    for name, k in zip(names, alloc):
        members = by_cat[name]
        chosen.extend(members[j] for j in rng.choice(len(members), size=k, replace=False))
    return chosen


def guided_sample(pool: Sequence[Hashable], categories: Mapping[Hashable, str],
                  category_scores: Mapping[str, float], size: int, rng: np.random.Generator) -> list:
    """The `size` pool probes of the highest pilot disagreement by category (ties broken at random)."""
    score = np.array([category_scores.get(categories[pid], -math.inf) for pid in pool])
    order = np.lexsort((rng.random(len(pool)), -score))
    return [pool[i] for i in order[:size]]


def pilot_category_scores(pilot_scores: Mapping[Hashable, float], categories: Mapping[Hashable, str]) -> dict[str, float]:
    """Mean pilot disagreement per category: the part of the pilot that transfers to unqueried probes."""
    by_cat: dict[str, list[float]] = defaultdict(list)
    for pid, s in pilot_scores.items():
        by_cat[categories[pid]].append(float(s))
    return {c: float(np.mean(v)) for c, v in by_cat.items()}


def _point(strategy: str, probes: int, estimates: list[Estimate], confidence: float, extra: dict) -> dict:
    """One curve point: mean estimate over repeats; the interval a single audit of this many probes would report.

    The interval is the median of the per-repeat intervals (what one auditor
    asking that many probes would state); how much the estimate itself moves between
    repeated draws is given separately in details.
    """
    values = np.array([e.estimate for e in estimates], dtype=float)
    tail = (1.0 - confidence) / 2.0
    spread = np.nanquantile(values, [tail, 1.0 - tail]) if np.isfinite(values).any() else [math.nan, math.nan]
    return {
        "strategy": strategy, "probes": probes,
        "n": int(np.median([e.n for e in estimates])),
        "advantage": float(np.nanmean(values)) if np.isfinite(values).any() else math.nan,
        "ci_low": float(np.nanmedian([e.ci_low for e in estimates])),
        "ci_high": float(np.nanmedian([e.ci_high for e in estimates])),
        "confidence": confidence,
        "details": {"repeats": len(estimates), "ci_method": estimates[0].method,
                    "estimate_sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0,
                    "estimate_spread": [float(spread[0]), float(spread[1])], **extra},
    }


def _evaluate(evaluate: Callable[[list], Estimate], selected: list, confidence: float) -> Estimate:
    est = evaluate(selected)
    if not math.isclose(est.confidence, confidence):
        raise ValueError(f"evaluate returned a {est.confidence} interval, the curve is at {confidence}")
    return est


def budget_curve(probe_ids: Sequence[Hashable], categories: Sequence[str] | Mapping[Hashable, str],
                 evaluate: Callable[[list], Estimate], *,
                 budgets: Sequence[int | None] = (50, 100, 250, 500, 1000, None),
                 strategies: Sequence[str] = STRATEGIES, pilot_scores: Mapping[Hashable, float] | None = None,
                 repeats: int = 20, seed: int = 0, confidence: float = 0.95) -> list[dict]:
    """Advantage against the probes asked per model for each strategy, one dict per (strategy, probes).

    `categories`: one per probe id (same order) or a mapping id → category.
    `pilot_scores`: probe id → pilot disagreement (e.g. 1 − cosine of teacher
    and suspect responses) for the pilot split; those probes are left out of
    the pool of both strategies (see the module docstring). Without pilot
    scores there is nothing to guide by, and only the stratified curve is
    drawn. `budgets` are numbers of probes; None means the whole pool (evaluated once: every strategy then
    selects the same probes). Budgets larger than the pool are skipped.

    Each point: strategy, probes, n, advantage (mean over `repeats` draws), ci_low
    and ci_high (median per-draw interval), confidence, details (spread of the
    estimate over draws, pool size, pilot size).
    """
    cat_of = dict(categories) if isinstance(categories, Mapping) else dict(zip(probe_ids, categories))
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; choose from {STRATEGIES}")
    pilot = set(pilot_scores or ())
    if pilot - cat_of.keys():
        raise ValueError(f"{len(pilot - cat_of.keys())} pilot probes are not among probe_ids")
    pool = [pid for pid in probe_ids if pid not in pilot]
    active = [s for s in strategies if s != "guided" or pilot_scores]
    cat_scores = pilot_category_scores(pilot_scores, cat_of) if pilot_scores else {}
    extra = {"pool": len(pool), "pilot_excluded": len(pilot)}
    rng = np.random.default_rng(seed)
    points: list[dict] = []
    sizes = sorted({len(pool) if b is None else int(b) for b in budgets})
    for size in (k for k in sizes if 0 < k <= len(pool)):
        if size == len(pool):
            whole = _evaluate(evaluate, list(pool), confidence)
            points.extend(_point(s, size, [whole], confidence, {**extra, "all": True}) for s in active)
            continue
        for strategy in active:
            draw = (lambda: stratified_sample(pool, cat_of, size, rng)) if strategy == "stratified" else \
                   (lambda: guided_sample(pool, cat_of, cat_scores, size, rng))
            estimates = [_evaluate(evaluate, draw(), confidence) for _ in range(repeats)]
            info = {**extra, "category_scores": cat_scores} if strategy == "guided" else extra
            points.append(_point(strategy, size, estimates, confidence, info))
    return points

"""The query-budget curves: the paired discriminator's advantage against the number of probes asked.

Its own module because the curves refit the discriminator on subsets of the
probes, a computation apart from every results row, with its own ladder of
budgets.
"""

from __future__ import annotations

import numpy as np

from audit.adversaries import discriminator, similarity
from audit.adversaries.comparison import Comparison
from audit.analysis.context import Context
from audit.analysis.rows import finite
from audit.stats import Estimate

BUDGET_PROBES = (50, 100, 250, 500, 1000, None)  # probes per model; None: the whole pool
MIN_BUDGET_PROBES = 8  # a paired discriminator needs a few probes per fold
BUDGET_REPEATS = 10
PILOT_SHARE = 0.1  # probes set aside as the guided strategy's pilot


def budget_points(ctx: Context, comparisons: list[Comparison], comp: Comparison, repeats: int) -> list[dict]:
    """Paired-discriminator advantage against the probes asked per model: stratified random vs
    disagreement-guided acquisition.

    At each budget the discriminator is fitted (on every model's responses to
    the selected probes, as for the full audit) and tested on those probes only.
    """
    from audit.budget import budget_curve

    probes = sorted(set(comp.probe_ids.tolist()))
    if len(probes) < 20:
        return []
    categories = comp.category_of()
    rng = np.random.default_rng(ctx.seed)
    n_pilot = max(10, int(PILOT_SHARE * len(probes)))
    pilot = [probes[i] for i in rng.choice(len(probes), size=n_pilot, replace=False)]
    cosines = similarity.per_probe_cosine(comp)
    pilot_scores = {p: 1.0 - cosines[p] for p in pilot}

    def evaluate(selected: list) -> Estimate:
        mask = comp.mask_of(selected)
        design = discriminator.Design.of("paired", comparisons, mask)
        return discriminator.paired_outcome(design, comp, mask).estimate(ctx.confidence, ctx.seed)

    points = budget_curve(probes, categories, evaluate, budgets=budget_ladder(len(probes) - n_pilot),
                          pilot_scores=pilot_scores, repeats=repeats, seed=ctx.seed, confidence=ctx.confidence)
    for p in points:
        p.update(comparison=comp.name, adversary="discriminator-paired")
        p["details"]["pilot"] = "1 − cosine of teacher and other responses on the pilot probes"
    return [finite(p) for p in points]


def budget_ladder(pool: int) -> tuple:
    """The budgets of the curve, in probes per model: the standard ladder, plus halvings of the pool when the
    audit is small.

    A 40-probe audit would otherwise get one point (all of it) and no curve.
    """
    halvings = ({pool // 2**k for k in range(1, 4) if pool // 2**k >= MIN_BUDGET_PROBES}
                if pool < 2 * BUDGET_PROBES[1] else set())
    standard = {size for size in BUDGET_PROBES if size is not None and size < pool}
    return tuple(sorted(halvings | standard)) + (None,)

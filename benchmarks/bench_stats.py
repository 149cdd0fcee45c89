"""Timings of the statistics at the scale of a full audit: 5,000 probes x 3 models = 15,000 responses.

Run: .venv/bin/python benchmarks/bench_stats.py
Prints seconds per call for the bootstrap (fast path, pooled path, paired),
the MMD permutation test on 384-d embeddings, and the budget curves, plus a
naive per-resample Python loop beside the vectorised bootstrap for the ratio.
"""

import time

import numpy as np

from audit.budget import budget_curve
from audit.stats import (
    PERMUTATIONS, accuracy_advantage, bootstrap_ci, correct_pvalues, headline_bound, mmd_permutation_test,
    permutation_interval, sign_flip_null,
)

PROBES, DIM, CATEGORIES = 5000, 384, 10


def timed(label: str, fn, repeat: int = 3):
    fn()  # warm-up: imports, caches
    best = min(_once(fn) for _ in range(repeat))
    print(f"{label:<58} {best:8.3f} s")
    return best


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def naive_bootstrap(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """The textbook loop, for comparison only: one resample and one mean per iteration."""
    rng = np.random.default_rng(seed)
    reps = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return tuple(np.quantile(reps, [0.025, 0.975]))


def main() -> None:
    rng = np.random.default_rng(0)
    cats = [f"cat{i % CATEGORIES}" for i in range(PROBES)]
    ids = list(range(PROBES))
    verdict_vs_suspect = (rng.random(PROBES) < 0.6).astype(float)  # per-probe correct verdicts
    verdict_vs_control = (rng.random(PROBES) < 0.8).astype(float)
    cosine = rng.beta(8, 2, PROBES)
    ragged = [rng.integers(0, 2, rng.integers(1, 4)) for _ in range(PROBES)]
    teacher, suspect, control = (rng.normal(shift, 1, (PROBES, DIM)) for shift in (0.0, 0.01, 0.05))

    print(f"scale: {PROBES} probes x 3 models = {3 * PROBES} responses, {DIM}-d embeddings")
    fast = timed("bootstrap_ci, mean of 5,000 per-probe values, B=2000", lambda: bootstrap_ci(cosine, n_boot=2000))
    naive = timed("  naive Python loop, same resamples", lambda: naive_bootstrap(cosine, 2000, 0))
    print(f"{'  vectorised speed-up':<58} {naive / fast:8.1f} x")
    timed("bootstrap_ci, pooled mean over ragged probes, B=2000", lambda: bootstrap_ci(ragged, n_boot=2000))
    flip_rng = np.random.default_rng(2)
    judged = 2 * verdict_vs_suspect - 1
    timed("sign-flip permutation interval (judge), 1,000 worlds", lambda: permutation_interval(
        judged.mean(), sign_flip_null(judged, PERMUTATIONS, flip_rng), per_probe=judged))
    gap = verdict_vs_control - verdict_vs_suspect
    timed("sign-flip permutation interval (provenance gap), 1,000 worlds", lambda: permutation_interval(
        gap.mean(), sign_flip_null(gap, PERMUTATIONS, flip_rng), per_probe=gap, bounds=(-2.0, 2.0)))
    timed("per-category bootstrap, 10 categories, B=2000",
          lambda: [bootstrap_ci(cosine[i::CATEGORIES], n_boot=2000) for i in range(CATEGORIES)])
    timed("mmd_permutation_test rbf, 5,000 vs 5,000 (2,000 each), 500 perms",
          lambda: mmd_permutation_test(teacher, suspect, n_perm=500), repeat=1)
    timed("mmd_permutation_test linear, same", lambda: mmd_permutation_test(teacher, control, kernel="linear"),
          repeat=1)
    timed("accuracy estimates + headline + Holm/BH", lambda: (
        headline_bound({"a": accuracy_advantage(3000, 5000), "b": accuracy_advantage(3100, 5000)}),
        correct_pvalues(np.random.default_rng(1).random(40))))
    discriminator_worlds(teacher, suspect, control, cats)

    pilot = {i: float(verdict_vs_suspect[i]) for i in range(0, PROBES, 10)}
    evaluate = lambda sel: accuracy_advantage(int(verdict_vs_suspect[sel].sum()), len(sel))  # noqa: E731
    points = []
    timed("budget_curve, 6 budgets x 2 strategies x 20 repeats",
          lambda: points.extend(budget_curve(ids, cats, evaluate, pilot_scores=pilot, repeats=20)), repeat=1)
    print(f"{'  budget points':<58} {len(points) // 2:8d}")


def discriminator_worlds(teacher, suspect, control, cats) -> None:
    """The learned discriminators' permutation nulls at full scale: 1,000 retrained adversaries per interval."""
    from audit.adversaries import discriminator
    from audit.adversaries.comparison import Comparison

    ids = np.array([f"p{i}" for i in range(PROBES)], dtype=object)
    empty = [""] * PROBES
    style = np.zeros((PROBES, 36))
    comparisons = [Comparison(f"teacher-vs-{name}", name, ids, np.zeros(PROBES, int), np.array(cats, dtype=object),
                              np.full(PROBES, "public", dtype=object), empty, empty, empty, empty, empty, teacher,
                              other, style, style) for name, other in (("suspect", suspect), ("control:c", control))]
    for kind, build in (("paired", discriminator.paired_outcome), ("single", discriminator.single_outcome)):
        design = discriminator.Design.of(kind, comparisons)
        outcome = build(design, comparisons[0])
        timed(f"discriminator-{kind}: the interval (1,000 retrained worlds)", lambda: (
            outcome._nulls.clear(), outcome.estimate(0.95)), repeat=1)
        timed(f"  one category's interval (1/{CATEGORIES} of the probes)", lambda: (
            outcome.subset(outcome.categories == "cat0").estimate(0.95)), repeat=1)


if __name__ == "__main__":
    main()

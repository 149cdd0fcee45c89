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
    accuracy_advantage, bootstrap_ci, correct_pvalues, headline_bound, mmd_permutation_test,
    paired_bootstrap_difference, rate_difference_advantage,
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
    timed("bootstrap_ci with sign-flip test (null=0), B=2000", lambda: bootstrap_ci(2 * cosine - 1, null=0.0))
    timed("paired_bootstrap_difference (provenance gap), B=2000",
          lambda: paired_bootstrap_difference(verdict_vs_control, verdict_vs_suspect, n_boot=2000))
    timed("per-category bootstrap, 10 categories, B=2000",
          lambda: [bootstrap_ci(cosine[i::CATEGORIES], n_boot=2000) for i in range(CATEGORIES)])
    timed("mmd_permutation_test rbf, 5,000 vs 5,000 (2,000 each), 500 perms",
          lambda: mmd_permutation_test(teacher, suspect, n_perm=500), repeat=1)
    timed("mmd_permutation_test linear, same", lambda: mmd_permutation_test(teacher, control, kernel="linear"),
          repeat=1)
    timed("accuracy/rate-difference estimates + headline + Holm/BH", lambda: (
        headline_bound({"a": accuracy_advantage(3000, 5000), "b": rate_difference_advantage(3100, 5000, 2000, 5000)}),
        correct_pvalues(np.random.default_rng(1).random(40))))

    pilot = {i: float(verdict_vs_suspect[i]) for i in range(0, PROBES, 10)}
    evaluate = lambda sel: accuracy_advantage(int(verdict_vs_suspect[sel].sum()), len(sel))  # noqa: E731
    points = []
    timed("budget_curve, 6 budgets x 2 strategies x 20 repeats",
          lambda: points.extend(budget_curve(ids, cats, evaluate, pilot_scores=pilot, repeats=20)), repeat=1)
    print(f"{'  budget points':<58} {len(points) // 2:8d}")


if __name__ == "__main__":
    main()

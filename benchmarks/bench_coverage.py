"""Coverage of every interval the report states, on simulated audits run through the real adversary code.

Each case draws 1,000 audits (``--audits``) with a known ground truth
(`tests/helpers_adversaries.py`: sentence-embedding-like features with a
probe effect shared by every model's response to a probe, a suspect shifted
from the teacher along one direction, per-category shifts, log-likelihoods
under the teacher), fits the real discriminators (folds grouped by probe,
the permutation worlds), the real teacher-likelihood threshold and the real
judge outcomes, and states what the analysis states: overall rows, category
rows (plain and Holm), the headline (Bonferroni over adversaries) and the
provenance gaps (Bonferroni over adversaries). The truth of a learned
adversary is its own true advantage as trained in that audit (the average,
over folds, of each fold model's advantage on fresh responses), exactly
computable from the simulation's Gaussian model; 0 when the suspect is the
teacher.

It prints, per case, n (probes), the mean true advantage, the coverage of
the 95% interval where one is stated (at least 0.95 is the target; 1,000
audits give a standard error of about 0.007; "no CI": none is stated, e.g. no
bootstrap interval below 10 probes), the rejection rate (p < 0.05: the test's size when the
truth is 0, its power otherwise), and how many rows showed a p-value that
disagrees with their interval (must be 0). For contrast it also shows the
Clopper–Pearson interval that treats the paired discriminator's fold
verdicts as independent (the previous method).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_coverage.py [--audits 1000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from audit.stats import accuracy_advantage, bootstrap_ci, excludes  # noqa: E402
from helpers_adversaries import shift_for, simulated_claims, simulated_judge  # noqa: E402

CONFIDENCE = 0.95
NS = (10, 20, 50, 200)
CATEGORY_NS = (20, 50, 80)  # 4 categories: 5, 12-13 and 20 probes each


class Tally:
    """Coverage, rejections and p/interval disagreements per (case, n, row kind)."""

    def __init__(self):
        self.rows = defaultdict(lambda: {"covered": 0, "rejected": 0, "disagree": 0, "count": 0, "truth": 0.0,
                                         "stated": 0})

    def add(self, key: tuple, est, truth: float) -> None:
        row = self.rows[key]
        row["count"] += 1
        row["truth"] += truth
        if np.isfinite(est.ci_low) and np.isfinite(est.ci_high):
            row["stated"] += 1
            row["covered"] += int(est.ci_low - 1e-12 <= truth <= est.ci_high + 1e-12)
        if est.p_value is not None:
            rejected = est.p_value < 1.0 - CONFIDENCE
            row["rejected"] += int(rejected)
            row["disagree"] += int(rejected != excludes(est.ci_low, est.ci_high))

    def print(self) -> None:
        print(f"{'case':<58} {'n':>4} {'truth':>7} {'coverage':>9} {'p<0.05':>7} {'p/CI disagree':>14}")
        for (case, n, what), r in self.rows.items():
            c = r["count"]
            covered = f"{r['covered'] / r['stated']:>9.3f}" if r["stated"] else f"{'no CI':>9}"
            print(f"{case + ' | ' + what:<58} {n:>4} {r['truth'] / c:>+7.3f} {covered} "
                  f"{r['rejected'] / c:>7.3f} {r['disagree']:>14}")


def learned_cases(tally: Tally, audits: int, ns, category_ns, dims: dict[int, int]) -> None:
    """The discriminators, teacher-likelihood, categories, headline and provenance on simulated embeddings."""
    cases = {"suspect = teacher (truth 0)": (0.0, None),
             "suspect = teacher, control far: provenance": (0.0, shift_for(0.6)),
             "suspect close on 2 of 4 categories": ((0.0, 0.0, shift_for(0.5), shift_for(0.5)), None),
             "suspect distinct (Bayes paired adv 0.5)": (shift_for(0.5), None),
             "suspect as far as control: provenance null": (shift_for(0.4), shift_for(0.4))}
    for case, (suspect, control) in cases.items():
        for n in sorted(set(ns) | (set(category_ns) if control is None else set())):
            rng = np.random.default_rng([zlib.crc32(case.encode()), n])
            for i in range(audits):
                claims = simulated_claims(n, suspect, rng, control_shift=control, dim=dims.get(n, 16), seed=i,
                                          categories=n in category_ns)
                for what, est, truth in claims:
                    if control is not None and not what.startswith("provenance"):
                        continue
                    tally.add((case, n, what), est, truth)


def naive_paired(tally: Tally, audits: int, ns, dims: dict[int, int]) -> None:
    """The previous method for contrast: Clopper–Pearson on the paired discriminator's fold verdicts."""
    from helpers_adversaries import simulated_audit, simulated_outcomes, true_advantage

    for n in ns:
        rng = np.random.default_rng(n)
        for i in range(audits):
            comparisons, loglik, world = simulated_audit(n, {"suspect": 0.0}, rng, dim=dims.get(n, 16))
            paired = simulated_outcomes(comparisons, loglik, i)["teacher-vs-suspect"]["discriminator-paired"]
            right = int(np.round(paired.score).sum())  # ties (none here) would be a coin
            tally.add(("previous: Clopper–Pearson on fold verdicts (truth 0)", n, "discriminator-paired"),
                      accuracy_advantage(right, len(paired), CONFIDENCE), true_advantage(paired, world))


def judge_cases(tally: Tally, audits: int, ns) -> None:
    """Judge outcomes (no learning): Clopper–Pearson for 0/1 verdicts, sign-flip permutation with ties."""
    cases = {"judge, consistent pairs (truth 0)": (0.5, 0.0, 1), "judge, consistent pairs (acc 0.8)": (0.8, 0.0, 1),
             "judge-unfiltered, 40% ties (truth 0)": (0.3, 0.4, 1),
             "judge-unfiltered, skewed (truth 0.8)": (0.85, 0.1, 1),
             "judge, 2 samples per probe (truth 0)": (0.5, 0.0, 2)}
    for case, (right, tie, samples) in cases.items():
        for n in ns:
            rng = np.random.default_rng([zlib.crc32(case.encode()), n])
            for i in range(audits):
                outcome, truth = simulated_judge(n, right, tie, rng, samples=samples)
                tally.add((case, n, outcome.adversary), outcome.estimate(CONFIDENCE, i), truth)


def similarity_cases(tally: Tally, audits: int) -> None:
    """The similarity baseline's expanded-BCa interval on skewed per-probe cosines, at category sizes 5–20."""
    for n in (5, 10, 20, 50):
        rng = np.random.default_rng(n)
        for i in range(audits):
            tally.add(("similarity: mean of Beta(8, 2) cosines", n, "bootstrap (BCa)"),
                      bootstrap_ci(rng.beta(8, 2, n), n_boot=2000, seed=i), 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audits", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 audits, n = 10 and 50 only")
    args = parser.parse_args()
    audits, ns, category_ns = (100, (10, 50), (50,)) if args.quick else (args.audits, NS, CATEGORY_NS)
    dims = {50: 64}  # features comparable to the training probes, the regime where fold verdicts correlate most
    tally = Tally()
    started = time.perf_counter()
    naive_paired(tally, audits, ns, dims)
    learned_cases(tally, audits, ns, category_ns, dims)
    judge_cases(tally, audits, ns)
    similarity_cases(tally, audits)
    tally.print()
    print(f"{audits} simulated audits per case, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Coverage of the leakage run's fidelity intervals, simulated through the real code (``audit.fidelity.Fidelity``).

Per-token divergences are drawn skewed, as KL is: each probe has a level from a
lognormal (σ 0.6), its tokens (5 to 48 of them, or 30 each with ``--equal``) are
exponential around it. A second student is the first scaled per probe by a
lognormal factor around 0.85 (σ 0.2) plus token noise, read on the same tokens.
Each audit states what the fidelity stage states: the KL interval (pooled mean
over tokens, bootstrap over probes) and the paired difference's interval; the
script prints how often each covers the true value, per number of probes.

Run: .venv/bin/python benchmarks/bench_fidelity_coverage.py [--audits 1000] [--equal]
"""

from __future__ import annotations

import argparse

import numpy as np

from audit.fidelity import Fidelity

LEVEL_SIGMA, FACTOR, FACTOR_SIGMA = 0.6, 0.85, 0.2


def audit(n: int, rng: np.random.Generator, equal: bool) -> tuple[Fidelity, Fidelity]:
    lengths = np.full(n, 30) if equal else rng.integers(5, 49, n)
    levels = rng.lognormal(0.0, LEVEL_SIGMA, n)
    first = np.concatenate([rng.exponential(level, length) for level, length in zip(levels, lengths)])
    factor = np.repeat(rng.lognormal(np.log(FACTOR), FACTOR_SIGMA, n), lengths)
    second = first * factor + rng.normal(0.0, 0.05, len(first))
    probes, ends = [f"p{i}" for i in range(n)], np.cumsum(lengths)
    return (Fidelity(first, np.zeros_like(first), ends, probes),
            Fidelity(second, np.zeros_like(second), ends, probes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=1000)
    parser.add_argument("--equal", action="store_true", help="Every probe 30 tokens (no ragged groups).")
    args = parser.parse_args()
    true_kl = np.exp(LEVEL_SIGMA ** 2 / 2)
    true_difference = true_kl * (FACTOR * np.exp(FACTOR_SIGMA ** 2 / 2) - 1)
    print("| probes | KL interval covers | paired difference covers |\n|---|---|---|")
    for n in (10, 20, 32, 48):
        rng = np.random.default_rng(n)
        kl_hits = difference_hits = 0
        for seed in range(args.audits):
            first, second = audit(n, rng, args.equal)
            kl, _ = first.estimates(0.95, seed)
            difference = second.paired_difference(first, 0.95, seed)
            kl_hits += kl.ci_low <= true_kl <= kl.ci_high
            difference_hits += difference.ci_low <= true_difference <= difference.ci_high
        print(f"| {n} | {kl_hits / args.audits:.3f} | {difference_hits / args.audits:.3f} |", flush=True)


if __name__ == "__main__":
    main()

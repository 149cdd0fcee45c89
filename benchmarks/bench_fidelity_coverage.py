"""Coverage of the leakage run's fidelity intervals, simulated through the real code (``audit.fidelity.Fidelity``).

Per-token divergences are drawn skewed, as KL is: each probe has a level from a
lognormal (σ 0.6, or 0.9 with ``--heavy``), its tokens (5 to 48 of them, or 30
each with ``--equal``) are exponential around it. A second student is the first
scaled per probe by a lognormal factor around 0.85 (σ 0.2) plus token noise,
read on the same tokens; with ``--null`` it is the first plus symmetric token
noise instead (true difference 0). Top-1 agreement is Bernoulli per token
around a per-probe rate drawn from Beta(6, 2.5), or Beta(40, 1) with
``--near-one`` (mean 0.976: a student that mostly agrees). Each audit states what the
fidelity stage states (``Fidelity.estimates``, ``Fidelity.paired_difference``:
the shipped `pooled_mean_ci`) and, on the same probes, the expanded BCa interval
it replaced (`bootstrap_ci`); the script prints how often each covers the true
value and their mean and median widths, per number of probes.

Run (about 2 minutes a row set, 2,000 audits a row, on a quiet core):
    PYTHONPATH=. .venv/bin/python benchmarks/bench_fidelity_coverage.py [--audits 2000] [--equal] [--heavy] [--null]
        [--near-one]
"""

from __future__ import annotations

import argparse

import numpy as np

from audit.cmi import by_probe
from audit.fidelity import Fidelity
from audit.stats import bootstrap_ci

FACTOR, FACTOR_SIGMA, NULL_NOISE = 0.85, 0.2, 0.3
AGREEMENT, NEAR_ONE = (6.0, 2.5), (40.0, 1.0)  # Beta parameters of a probe's top-1 agreement rate


def audit(n: int, rng: np.random.Generator, args) -> tuple[Fidelity, Fidelity]:
    lengths = np.full(n, 30) if args.equal else rng.integers(5, 49, n)
    levels = np.repeat(rng.lognormal(0.0, args.sigma, n), lengths)
    first = rng.exponential(levels)
    if args.null:
        second = first + rng.normal(0.0, NULL_NOISE * levels)
    else:
        second = first * np.repeat(rng.lognormal(np.log(FACTOR), FACTOR_SIGMA, n), lengths)
        second += rng.normal(0.0, 0.05, len(first))
    agreement = (rng.random(len(first)) < np.repeat(rng.beta(*args.agreement, n), lengths)).astype(float)
    probes, ends = [f"p{i}" for i in range(n)], np.cumsum(lengths)
    return Fidelity(first, agreement, ends, probes), Fidelity(second, agreement, ends, probes)


def truths(args) -> dict[str, float]:
    kl = float(np.exp(args.sigma ** 2 / 2))
    difference = 0.0 if args.null else kl * (FACTOR * np.exp(FACTOR_SIGMA ** 2 / 2) - 1)
    return {"KL": kl, "difference": difference, "agreement": args.agreement[0] / sum(args.agreement)}


def intervals(first: Fidelity, second: Fidelity, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(metric, method) -> (low, high): the shipped intervals and the old BCa on the same per-probe groups."""
    kl, agreement = first.estimates(0.95, seed)
    difference = second.paired_difference(first, 0.95, seed)
    shipped = {"KL": kl, "difference": difference, "agreement": agreement}
    values = {"KL": first.divergence, "difference": second.divergence - first.divergence,
              "agreement": first.agreement}
    out = {}
    for metric, estimate in shipped.items():
        old = bootstrap_ci(by_probe(values[metric], first.ends, first.probes), "mean", 0.95, seed=seed)
        out[metric, "new"] = (estimate.ci_low, estimate.ci_high)
        out[metric, "BCa"] = (old.ci_low, old.ci_high)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=2000)
    parser.add_argument("--equal", action="store_true", help="Every probe 30 tokens (no ragged groups).")
    parser.add_argument("--heavy", action="store_true", help="Heavier tail: probe levels lognormal σ 0.9.")
    parser.add_argument("--null", action="store_true", help="Second student = first + symmetric noise.")
    parser.add_argument("--near-one", action="store_true", help="Agreement rates from Beta(40, 1), mean 0.976.")
    args = parser.parse_args()
    args.sigma = 0.9 if args.heavy else 0.6
    args.agreement = NEAR_ONE if args.near_one else AGREEMENT
    truth = truths(args)
    print(f"{args.audits} audits a row; equal={args.equal} heavy={args.heavy} null={args.null} "
          f"near_one={args.near_one}")
    print("| probes | metric | covers: shipped / old BCa | mean width | median width |\n|---|---|---|---|---|")
    for n in (10, 20, 32, 48):
        rng = np.random.default_rng(n)
        found = [intervals(*audit(n, rng, args), seed) for seed in range(args.audits)]
        for metric in truth:
            cover, mean_width, median_width = [], [], []
            for method in ("new", "BCa"):
                low, high = np.array([f[metric, method] for f in found]).T
                cover.append(f"{np.mean((low <= truth[metric]) & (truth[metric] <= high)):.3f}")
                mean_width.append(f"{np.mean(high - low):.3g}")
                median_width.append(f"{np.median(high - low):.3g}")
            print(f"| {n} | {metric} | {' / '.join(cover)} | {' / '.join(mean_width)} | "
                  f"{' / '.join(median_width)} |", flush=True)


if __name__ == "__main__":
    main()

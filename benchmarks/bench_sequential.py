"""How few probes decide, and how often wrongly: sequential vs fixed-budget audits on recorded transcripts.

Replays recorded audits (no model is run): for each of many random probe
orders, the real sequential code (`audit.sequential`: the paired
discriminator trained on earlier rounds, the teacher-likelihood sign, hedged
betting confidence sequences, Bonferroni per family) decides round by round,
and the real fixed-budget code (`audit.analyze`'s adversaries, permutation
intervals, provenance gaps with Bonferroni) decides on the first k probes of
the same order, side by side.

    python benchmarks/bench_sequential.py --demo DEMO.db --null SELF.db

DEMO.db: teacher smollm2-135m-instruct, suspect the demo's distilled adapter,
control gemma3-270m (a fixed-budget `run` with enough probes, analysed with
--teacher so the teacher's scores are cached). SELF.db: the teacher against
itself at temperature 0.8 (each role draws its own seeds), the same control.
Prints, for the demo pair, the share of orders with a correct provenance
decision by 10, 20 and 30 probes, the wrong-direction share and the median
probes to decide; for the teacher against itself, the share of orders that
ever declare "distinguished", round by round. Both for the teacher-likelihood
statistic a sequential audit pre-registers now (the opening window most
decisive on the earlier probes) and for the whole-response one it used
before, side by side on the same orders.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from audit import sequential  # noqa: E402
from audit.adversaries import discriminator, likelihood  # noqa: E402
from audit.adversaries.comparison import load_comparisons  # noqa: E402
from audit.adversaries.embeddings import Embedder, attach_features  # noqa: E402
from audit.adversaries.likelihood import OPENING_WINDOWS  # noqa: E402
from audit.adversaries.outcome import provenance_gap  # noqa: E402
from audit.stats import bonferroni  # noqa: E402
from audit.store import Store  # noqa: E402

BUDGETS = (10, 20, 30)


def load(db: Path, teacher_spec: str | None):
    """Comparisons with features attached and every response's teacher log-likelihood; what the database's caches
    lack is computed and cached (a recording of the benchmark's own, so it is opened for writing)."""
    store = Store.open(db, create=False)
    comparisons, _ = load_comparisons(store)
    attach_features(store, comparisons, Embedder())
    teacher = store.model("teacher")
    model = None
    if teacher_spec:
        from audit.models import load_model

        model = load_model(teacher_spec)
    scorer = likelihood.TeacherScorer(store, model, teacher["fingerprint"] or "unknown", None)
    return comparisons, sequential.teacher_logliks(scorer, comparisons, windows=True)


# The teacher-likelihood statistic: each probe over the whole response (before 2026-12-05), or over the opening
# window most decisive on the earlier probes (what a sequential audit pre-registers now).
STATISTICS = {"whole response": (), "opening windows": OPENING_WINDOWS}


def sequential_run(comparisons, loglik, seed: int, rule: str, round_size: int, budget: int, windows=OPENING_WINDOWS):
    """The decision after each round of one random order: list of (probes asked, Decision)."""
    ids = sorted(set(comparisons[0].probe_ids.tolist()))
    plan = sequential.preregister(ids, seed=seed, round_size=round_size, rule=rule, threshold=None,
                                  adversaries=sequential.ADVERSARIES, windows=windows)
    asked = set(plan.order[:budget])
    part = [c.subset(c.mask_of(asked)) for c in comparisons]
    logs = {k: v[comparisons[0].mask_of(asked)] for k, v in loglik.items()}
    schedule = plan.schedule(sequential.units_of(part[0]))
    streams = (sequential.discriminator_streams(part, schedule)
               + sequential.likelihood_streams(part, logs, schedule, plan.windows))
    tracked = sequential.track(streams, 0.95)
    rounds = sorted(set(sequential.unit_rounds(part[0], schedule).tolist()))
    return [(min((r + 1) * round_size, budget), sequential.decide(tracked, plan, r)) for r in rounds]


def fixed_outcomes(comparisons, loglik, seed: int, k: int) -> dict:
    """The fixed-budget adversaries' outcomes on the first k probes of the order, per comparison."""
    ids = sorted(set(comparisons[0].probe_ids.tolist()))
    order = sequential.preregister(ids, seed=seed, round_size=k, rule="provenance", threshold=None,
                                   adversaries=()).order
    chosen = set(order[:k])
    part = [c.subset(c.mask_of(chosen)) for c in comparisons]
    mask = comparisons[0].mask_of(chosen)
    design = discriminator.Design.of("paired", part)
    logs = {name: values[mask, 0] for name, values in loglik.items()}  # the fixed-budget adversary: whole responses
    like = likelihood.LikelihoodDesign(logs, part[0].probe_ids, seed)
    return {c.name: {"discriminator-paired": discriminator.paired_outcome(design, c),
                     "teacher-likelihood": likelihood.likelihood_outcome(like, c)} for c in part}


def fixed_distinguished(comparisons, loglik, seed: int, k: int) -> bool:
    """Does the fixed-budget audit on the first k probes show ε(teacher, suspect) above 0 (Bonferroni over the same
    two adversaries)?"""
    outcomes = fixed_outcomes(comparisons, loglik, seed, k)[comparisons[0].name]
    family = bonferroni({a: o.estimate(0.95, seed) for a, o in outcomes.items()}, 0.95)
    return any(e.ci_low > 0 for e in family.values())


def fixed_decision(comparisons, loglik, seed: int, k: int) -> str:
    """The fixed-budget provenance finding on the first k probes of the order: 'above', 'below' or 'none'."""
    outcomes = fixed_outcomes(comparisons, loglik, seed, k)
    main, control = comparisons[0].name, comparisons[1].name
    gaps = {a: provenance_gap(outcomes[main][a], outcomes[control][a], 0.95, seed) for a in outcomes[main]}
    family = bonferroni(gaps, 0.95)
    strongest = min(family.values(), key=lambda e: (e.p_value, -abs(e.estimate)))
    if strongest.ci_low > 0:
        return "above"
    return "below" if strongest.ci_high < 0 else "none"


def demo_figures(comparisons, loglik, orders: int, round_size: int, fixed_orders: int) -> None:
    control = comparisons[1].other
    prefer = np.sign(loglik["suspect"] - loglik[control])
    names = ["whole response"] + [f"first {w} tokens" for w in OPENING_WINDOWS]
    print(f"the teacher finds the suspect's response more likely than the control's, of {len(prefer)} probes: "
          + ", ".join(f"{name} {np.mean(prefer[:, i] > 0):.1%}" for i, name in enumerate(names)))
    for statistic, windows in STATISTICS.items():
        sequential_figures(comparisons, loglik, orders, round_size, statistic, windows)
    fixed_figures(comparisons, loglik, fixed_orders)


def sequential_figures(comparisons, loglik, orders: int, round_size: int, statistic: str, windows) -> None:
    stops, wrong = [], 0
    correct_by = {k: 0 for k in BUDGETS}
    started = time.perf_counter()
    for seed in range(orders):
        decided = next(((n, d) for n, d in sequential_run(comparisons, loglik, seed, "provenance", round_size,
                                                            len(set(comparisons[0].probe_ids.tolist())), windows)
                        if d.settled), None)
        if decided is None:
            continue
        n, d = decided
        side = next(iter(d.findings.values()))
        if side != "above":
            wrong += 1
            continue
        stops.append(n)
        for k in BUDGETS:
            correct_by[k] += n <= k
    seconds = time.perf_counter() - started
    print(f"sequential, provenance rule, teacher-likelihood over the {statistic}, rounds of {round_size}, "
          f"{orders} random orders ({seconds / orders:.2f} s each):")
    for k in BUDGETS:
        print(f"  correct provenance decision by {k} probes: {correct_by[k] / orders:.1%}")
    print(f"  wrong-direction decisions: {wrong / orders:.1%}; median probes to decide (correct ones): "
          f"{np.median(stops) if stops else float('nan'):.0f}; undecided within the pool: "
          f"{(orders - len(stops) - wrong) / orders:.1%}")


def fixed_figures(comparisons, loglik, fixed_orders: int) -> None:
    started = time.perf_counter()
    fixed = {k: [fixed_decision(comparisons, loglik, seed, k) for seed in range(fixed_orders)] for k in BUDGETS}
    seconds = time.perf_counter() - started
    print(f"fixed budget (permutation intervals, Bonferroni over 2 adversaries), {fixed_orders} orders "
          f"({seconds / (fixed_orders * len(BUDGETS)):.2f} s each):")
    for k in BUDGETS:
        right = sum(d == "above" for d in fixed[k]) / fixed_orders
        wrong_k = sum(d == "below" for d in fixed[k]) / fixed_orders
        print(f"  {k} probes: correct {right:.1%}, wrong direction {wrong_k:.1%}")


def ceiling_figures(comparisons, loglik, orders: int) -> None:
    """What the strongest per-probe evidence allows at all: an exact sign test fixed in advance at k probes.

    The teacher-likelihood preference (is the suspect's response the more
    likely under the teacher, or the control's?) on the first k probes of
    each order, tested by the two-sided exact binomial sign test (ties
    dropped), once, at k. No test of this evidence decides more often at k
    with the same error: a sequential one pays for looking every round.
    Shown at α/2 per side (Bonferroni over the same two adversaries as the
    sequential family) and at α (as if the likelihood were the only one).
    """
    from scipy.stats import binomtest

    ids = sorted(set(comparisons[0].probe_ids.tolist()))
    control = comparisons[1]
    plan = sequential.preregister(ids, seed=0, round_size=1, rule="provenance", threshold=None, adversaries=())
    whole = {role: values[:, :1] for role, values in loglik.items()}
    preference = sequential.likelihood_streams(comparisons, whole, plan.schedule(sequential.units_of(comparisons[0])))[-1]
    sign = dict(zip(preference.probe_ids, preference.values))
    assert preference.comparison == "provenance:" + control.other.removeprefix("control:")
    print(f"ceiling: exact sign test of the whole-response teacher-likelihood preference fixed at k probes, {orders} orders "
          f"(share of probes for the suspect: {np.mean([v > 0 for v in sign.values()]):.1%})")
    for k in BUDGETS:
        decided = {0.025: 0, 0.05: 0}
        for seed in range(orders):
            order = sequential.preregister(ids, seed=seed, round_size=k, rule="provenance", threshold=None,
                                           adversaries=()).order[:k]
            values = np.array([sign[p] for p in order])
            ahead, behind = int(np.sum(values > 0)), int(np.sum(values < 0))
            p = binomtest(ahead, ahead + behind, 0.5, alternative="greater").pvalue if ahead + behind else 1.0
            for alpha in decided:
                decided[alpha] += 2 * p <= alpha
        print(f"  {k} probes: correct at alpha/2 {decided[0.025] / orders:.1%}, "
              f"at alpha {decided[0.05] / orders:.1%}")


def null_figures(comparisons, loglik, audits: int, round_size: int, fixed_audits: int) -> None:
    for statistic, windows in STATISTICS.items():
        null_figure(comparisons, loglik, audits, round_size, statistic, windows)
    started = time.perf_counter()
    shares = {k: np.mean([fixed_distinguished(comparisons, loglik, seed, k) for seed in range(fixed_audits)])
              for k in BUDGETS}
    seconds = time.perf_counter() - started
    print(f"teacher vs itself, fixed budget (permutation intervals, Bonferroni over 2 adversaries), {fixed_audits} "
          f"orders ({seconds / (fixed_audits * len(BUDGETS)):.2f} s each): share declared 'distinguished' at "
          + ", ".join(f"{k} probes {share:.1%}" for k, share in shares.items()))


def null_figure(comparisons, loglik, audits: int, round_size: int, statistic: str, windows) -> None:
    pool = len(set(comparisons[0].probe_ids.tolist()))
    ever = np.zeros(-(-pool // round_size))
    started = time.perf_counter()
    for seed in range(audits):
        settled = [d.settled for _, d in sequential_run(comparisons, loglik, seed, "distinguished", round_size, pool,
                                                        windows)]
        ever[:len(settled)] += np.logical_or.accumulate(settled)
    seconds = time.perf_counter() - started
    print(f"teacher vs itself (temperature 0.8), distinguished rule, teacher-likelihood over the {statistic}, "
          f"{audits} random orders of {pool} probes ({seconds / audits:.2f} s each): share that ever declared "
          "'distinguished' by round")
    print("  " + ", ".join(f"{(r + 1) * round_size}: {share / audits:.1%}" for r, share in enumerate(ever)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="recorded demo audit (teacher, distilled suspect, base control)")
    parser.add_argument("--null", type=Path, help="recorded teacher-vs-itself audit at temperature > 0")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--fixed-orders", type=int, default=100)
    parser.add_argument("--null-audits", type=int, default=1000)
    parser.add_argument("--round-size", type=int, default=5)
    parser.add_argument("--teacher", default=None, help="the teacher's spec, to score responses the cache lacks")
    args = parser.parse_args()
    from audit import threads

    threads.apply(threads.choose(None))
    if args.demo:
        loaded = load(args.demo, args.teacher)
        demo_figures(*loaded, args.orders, args.round_size, args.fixed_orders)
        ceiling_figures(*loaded, args.orders)
    if args.null:
        null_figures(*load(args.null, args.teacher), args.null_audits, args.round_size, args.fixed_orders)


if __name__ == "__main__":
    main()

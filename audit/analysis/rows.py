"""The results rows: per comparison and adversary, overall, per category, per split, headline and provenance.

Kept apart from the inputs so the statistics over outcomes (corrections,
gaps, the headline's Bonferroni) read in one place, and from the stage entry
so it stays a short list of steps.
"""

from __future__ import annotations

import math

import numpy as np

from audit.adversaries import similarity
from audit.adversaries.comparison import Comparison
from audit.adversaries.mmd import mmd_estimate
from audit.adversaries.outcome import Outcome, provenance_gap
from audit.analysis.compute import T_KEYS, adversary_compute_of, q_t
from audit.analysis.context import Context
from audit.results import ResultRow
from audit.stats import (Estimate, bonferroni, correct_pvalues, estimate_gap, headline_bound, holm_interval,
                         rank_by_evidence)
from audit.vocabulary import MAIN_COMPARISON as MAIN
from audit.vocabulary import PROVENANCE, control_of


def result_row(adversary: str, comp_name: str, category: str, split: str, metric: str, est: Estimate, q: int,
               t: dict, **extra) -> ResultRow:
    return ResultRow.of(est, adversary=adversary, comparison=comp_name, category=category, split=split,
                        metric=metric, q=q, t=t, **extra)


def finite(values: dict) -> dict:
    """NaN (no estimate, no interval) is stored as NULL: absent, never a number."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


def _categories(comp: Comparison) -> list[str]:
    return sorted(set(comp.categories.tolist()))


def _with_corrections(rows: list[ResultRow], estimates: list[Estimate] | None = None) -> list[ResultRow]:
    """Holm and BH over the category rows of one adversary and comparison; their evidence rank in details.

    With the rows' estimates, each row also gets (details ``holm_interval``)
    the interval that agrees with its Holm p-value (`audit.stats.holm_interval`).
    """
    holm, bh = correct_pvalues([r.p_value for r in rows])
    for i, (r, h, b) in enumerate(zip(rows, holm, bh)):
        r.p_holm, r.p_bh = h, b
        corrected = holm_interval(estimates[i], h) if estimates else None
        if corrected is not None:
            r.details["holm_interval"] = finite({"ci_low": corrected.ci_low, "ci_high": corrected.ci_high,
                                                    "confidence": corrected.confidence})
    for rank, r in enumerate(rank_by_evidence(rows), start=1):
        r.details["evidence_rank"] = rank
    return rows


def baseline_rows(ctx: Context, comp: Comparison) -> list[ResultRow]:
    """Similarity (cosine) and the MMD two-sample test, overall and per category."""
    compute = adversary_compute_of(ctx, {}, uses_embedder=True)
    rows, sim_cats, mmd_cats = [], [], []
    everything = np.ones(len(comp), dtype=bool)
    for category in ["all"] + _categories(comp):
        mask = everything if category == "all" else comp.categories == category
        probes = None if category == "all" else set(comp.probe_ids[mask].tolist())
        q, t = q_t(ctx, comp, probes, compute)
        sim = result_row("similarity", comp.name, category, "all", "cosine",
                         similarity.cosine_estimate(comp, mask, ctx.confidence, ctx.seed), q, t)
        mmd = result_row("mmd", comp.name, category, "all", "mmd",
                         mmd_estimate(comp, mask, ctx.confidence, ctx.seed), q, t)
        rows += [sim, mmd]
        if category != "all":
            sim_cats.append(sim)
            mmd_cats.append(mmd)
    _with_corrections(mmd_cats)
    return rows


def advantage_rows(ctx: Context, comp: Comparison, outcome: Outcome) -> list[ResultRow]:
    """One adversary on one comparison: overall, per category (corrected), per split with the gap."""
    compute = adversary_compute_of(ctx, outcome.compute,
                                   uses_embedder=outcome.adversary.startswith("discriminator"))
    overall = outcome.estimate(ctx.confidence, ctx.seed)
    q, t = q_t(ctx, comp, None, compute)
    main = result_row(outcome.adversary, comp.name, "all", "all", "advantage", overall, q, t,
                      details={**outcome.details, "kind": outcome.kind})
    rows, category_rows, category_estimates = [main], [], []
    for category in _categories(comp):
        part = outcome.subset(outcome.categories == category)
        probes = set(comp.probe_ids[comp.categories == category].tolist())
        q, t = q_t(ctx, comp, probes, compute)
        category_estimates.append(part.estimate(ctx.confidence, ctx.seed))
        category_rows.append(result_row(outcome.adversary, comp.name, category, "all", "advantage",
                                        category_estimates[-1], q, t))
    rows += _with_corrections(category_rows, category_estimates)
    rows += _split_rows(ctx, comp, outcome, main, compute)
    return rows


def _split_rows(ctx: Context, comp: Comparison, outcome: Outcome, main: ResultRow, compute: dict) -> list[ResultRow]:
    """Public and private rows where the audit has both, and their gap in the overall row's details."""
    splits = sorted(set(comp.splits.tolist()))
    if splits != ["private", "public"]:
        return []
    rows, estimates = [], {}
    for split in ("public", "private"):
        est = outcome.subset(outcome.splits == split).estimate(ctx.confidence, ctx.seed)
        estimates[split] = est
        q, t = q_t(ctx, comp, set(comp.probe_ids[comp.splits == split].tolist()), compute)
        rows.append(result_row(outcome.adversary, comp.name, "all", split, "advantage", est, q, t))
    gap = estimate_gap(estimates["public"], estimates["private"], ctx.confidence)
    main.details["split_gap"] = finite({"public_minus_private": gap.estimate, "ci_low": gap.ci_low,
                                           "ci_high": gap.ci_high, "method": gap.method,
                                           "p_value": gap.p_value, "confidence": gap.confidence})
    return rows


def headline_rows(ctx: Context, comp: Comparison, outcomes: dict[str, Outcome]) -> list[ResultRow]:
    """The best adversary on this comparison, its interval widened by Bonferroni over the adversaries tried.

    The adversaries that could not be run (``ctx.not_run``) are named in the
    row, so the headline's scope says which adversary class it covers.
    """
    estimates = {name: o.estimate(ctx.confidence, ctx.seed) for name, o in outcomes.items()}
    valid = {n: e for n, e in estimates.items() if not math.isnan(e.estimate)}
    if not valid:
        return []
    head = headline_bound(valid, ctx.confidence, "bonferroni")
    chosen = head.details.pop("selected")
    compute = adversary_compute_of(ctx, outcomes[chosen].compute, uses_embedder=chosen.startswith("discriminator"))
    q, t = q_t(ctx, comp, None, compute)
    details = {"candidates": sorted(valid), "rule": "largest point estimate",
               "selection": "Bonferroni over adversaries",
               "correction": (f"each of the {len(valid)} candidates' intervals at level "
                              f"1 − α/{len(valid)} = {head.details['per_test_confidence']:.4f}, so the selected "
                              "one's interval holds whatever the choice"),
               "not_run": dict(sorted(ctx.not_run.items()))}
    return [result_row(chosen, comp.name, "all", "all", "advantage", head, q, t, details=details, headline=True)]


def provenance_rows(ctx: Context, comparisons: list[Comparison], outcomes: dict) -> list[ResultRow]:
    """Adv(teacher, control) − Adv(teacher, suspect) per adversary and control, Bonferroni over the adversaries.

    Each control's gaps are a family: every interval is at 1 − α/m (m gaps
    for that control) and every p-value is Bonferroni's, so any one of them
    may be quoted alone. The row page 1 shows for a control (details
    ``page_one``) is the one with the strongest evidence, which the
    correction has already paid for; never one chosen on Adv(teacher,
    suspect), a term of the gap.
    """
    main = next(c for c in comparisons if c.name == MAIN)
    rows = []
    for comp in comparisons:
        if comp.name == MAIN:
            continue
        control = control_of(comp.name)
        gaps = {}
        for adversary, outcome in outcomes[comp.name].items():
            if adversary not in outcomes[MAIN]:
                continue
            gap = provenance_gap(outcomes[MAIN][adversary], outcome, ctx.confidence, ctx.seed)
            if gap.n < 2:
                ctx.notes.append(f"provenance {control} {adversary}: skipped, fewer than 2 probes judged in both")
                continue
            gaps[adversary] = gap
        family = []
        for adversary, est in (bonferroni(gaps, ctx.confidence) if gaps else {}).items():
            q_c, t_c = q_t(ctx, comp, None, adversary_compute_of(ctx, outcomes[comp.name][adversary].compute, False))
            q_m, t_m = q_t(ctx, main, None, adversary_compute_of(ctx, outcomes[MAIN][adversary].compute, False))
            t = {k: t_c[k] + t_m[k] for k in T_KEYS}
            t["adversary"] = {"control_comparison": t_c["adversary"], "suspect_comparison": t_m["adversary"]}
            details = {"adv_teacher_control": est.details.pop("mean_a"),
                       "adv_teacher_suspect": est.details.pop("mean_b"), "shared_probes": est.n,
                       "correction": f"Bonferroni over the {len(gaps)} adversaries' gaps against this control",
                       "uncorrected": finite(est.details.pop("uncorrected")),
                       "meaning": "positive: the suspect is harder to tell from the teacher than the control is"}
            family.append(result_row(adversary, PROVENANCE, "all", "all", "advantage-gap", est,
                                     max(q_c, q_m), t, details=details, control=control))
        if family:
            strongest = min(family, key=lambda r: (r.p_value, -abs(r.estimate), r.adversary))
            strongest.details["page_one"] = "the strongest evidence among this control's Bonferroni-corrected gaps"
        rows += family
    return rows

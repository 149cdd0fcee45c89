"""The confidence sequences of a sequential audit, as result rows (split ``sequential``).

Separate from the fixed-sample rows because these claims are anytime-valid
and corrected within their own family, with their own headline and page-1
choice.
"""

from __future__ import annotations

import math
from dataclasses import replace

from audit import sequential
from audit.adversaries.comparison import Comparison
from audit.analysis.compute import T_KEYS, q_t
from audit.analysis.context import Context
from audit.analysis.rows import result_row
from audit.results import ResultRow
from audit.stats import Estimate
from audit.vocabulary import MAIN_COMPARISON as MAIN
from audit.vocabulary import PROVENANCE, SEQUENTIAL, control_comparison, control_of, provenance_key


def sequential_rows(ctx: Context, comparisons: list[Comparison], evaluation) -> list[ResultRow]:
    """The confidence sequences at the audit's last round, as claims (split ``sequential``): each at 1 − α/m
    within its family, its p-value the anytime-valid one times m, so p ≤ α exactly when it excludes 0."""
    by_name = {c.name: c for c in comparisons}
    last = evaluation.last
    stop = evaluation.stop
    rows, main = [], []
    for t in evaluation.tracked:
        s = t.stream
        estimate, low, high, n = sequential.bounds_at(t, last.round)
        p = t.p_value(last.round)
        est = Estimate(estimate, low, high, n, evaluation.plan.confidence, sequential.METHOD, p,
                       {"per_test_confidence": t.sequence.confidence, "m": t.family_size,
                        "rounds": last.round + 1, "round_size": evaluation.plan.round_size,
                        "rule": evaluation.plan.rule, "stopped_by_rule": stop is not None,
                        "stop_round": None if stop is None else stop.round + 1, "stop_outcome": last.outcome,
                        "order_hash": evaluation.plan.order_hash,
                        "validity": "anytime-valid: holds at every round at once, so under optional stopping"})
        probes = set(s.probe_ids)
        control = control_of(s.comparison)
        if s.comparison == provenance_key(control or ""):
            q_c, t_c = q_t(ctx, by_name[control_comparison(control)], probes, {})
            q_m, t_m = q_t(ctx, by_name[MAIN], probes, {})
            q, spent = max(q_c, q_m), {k: t_c[k] + t_m[k] for k in T_KEYS}
            metric, comparison = "preference", PROVENANCE
            est.details["meaning"] = ("P[the adversary finds the suspect's response more teacher-like than the "
                                      "control's] − P[the reverse]; positive: the suspect imitates the teacher more")
        else:
            q, spent = q_t(ctx, by_name[s.comparison], probes, {})
            metric, comparison = "advantage", s.comparison
        row = result_row(s.adversary, comparison, "all", SEQUENTIAL, metric, est, q, spent, control=control)
        rows.append(row)
        if s.comparison == MAIN:
            main.append(row)
    _mark_page_one(rows)
    if main:
        best = max(main, key=lambda r: (r.ci_low if r.ci_low is not None else -math.inf, r.adversary))
        head = replace(best, headline=True, details={
            **best.details, "candidates": sorted(r.adversary for r in main),
            "selection": "the largest lower bound among the family's sequences, each already at 1 − α/m "
                         "(Bonferroni), so the choice costs nothing more",
            "not_run": dict(sorted(ctx.not_run.items()))})
        rows.append(head)
    return rows


def _mark_page_one(rows: list[ResultRow]) -> None:
    """Per control, the sequential gap with the strongest evidence (the family is corrected already)."""
    by_control: dict[str, list[ResultRow]] = {}
    for r in rows:
        if r.comparison == PROVENANCE:
            by_control.setdefault(r.control, []).append(r)
    for family in by_control.values():
        strongest = min(family, key=lambda r: (r.p_value, -abs(r.estimate or 0.0), r.adversary))
        strongest.details["page_one"] = "the strongest evidence among this control's corrected sequences"

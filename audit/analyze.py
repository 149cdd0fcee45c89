"""The analyze stage: from the recorded transcripts to (ε, q, t, A) claims with honest intervals.

Reads the responses in the audit database, runs every adversary on teacher
vs suspect and teacher vs each control, and writes the ``results``,
``budget_points`` and ``exhibits`` tables (old rows cleared just before the
new ones are written, so a rerun never mixes stale rows with new ones, and a
run that fails midway leaves the previous results whole). It touches no model except
the embedder, the judge and the teacher (to score responses for the
teacher-likelihood adversary), and those only from specs the user named: a
spec stored in the database is shown, never run. Embeddings, judge verdicts
and teacher scores are cached in the database, so a rerun costs only the
statistics.

Rows, per comparison and adversary: ``category='all'`` and one per category
(p-values corrected over categories with Holm and Benjamini–Hochberg, ranked
by evidence in details, with the interval that agrees with the Holm p-value),
``split='public'``/``'private'`` where both exist (the gap in the ``all``
row's details), the ``headline`` (best adversary, Bonferroni over
adversaries, and the adversaries that could not be run), and the provenance
rows (Adv(teacher, control) − Adv(teacher, suspect) by a permutation test over
probes, Bonferroni over adversaries, one row per control marked for page 1).
Every row's p-value is the inversion of its own interval (see
``audit.stats``): p < α exactly when the interval excludes 0.

Every comparison rests on one probe set, the probes every model answered
(see ``audit.adversaries.comparison``), and every row carries that set's
coverage in ``details['coverage']``: probes selected, probes common, and per
model how many it answered, left empty, failed or was never asked.

This module is the stage's entry and its order of steps; the steps live in
`audit.analysis` (see its docstring).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from audit import sequential
from audit.adversaries.comparison import load_comparisons, probe_coverage
from audit.adversaries.embeddings import Embedder, attach_features
# Context, NEVER_RUN and budget_ladder stay importable from here: the stage's public names before the split.
from audit.analysis.budget_points import BUDGET_REPEATS, budget_ladder, budget_points
from audit.analysis.context import NEVER_RUN, Context
from audit.analysis.exhibits import record_exhibits
from audit.analysis.inputs import (add_judge, add_likelihood, cached_scorer, discriminators, judged_comparisons,
                                   named_teacher)
from audit.analysis.rows import advantage_rows, baseline_rows, headline_rows, provenance_rows
from audit.analysis.sequential_rows import sequential_rows
from audit.models import check_spec
from audit.results import ResultRow
from audit.settings import analysis_settings
from audit.store import Store
from audit.vocabulary import PROVENANCE, SEQUENTIAL, provenance_key


def run_analysis(db_path: Path, *, teacher_spec: str | None = None, judge_spec: str | None = None,
                 named_specs: tuple[str, ...] = (), use_judge: bool = True, judge_probes: int | None = None,
                 confidence: float = 0.95, seed: int = 0, quiet: bool = False) -> str:
    """The `analyze` command: returns a short summary of the claims written."""
    store = Store.open(db_path, create=False)
    try:
        return analyze_store(store, teacher_spec=teacher_spec, judge_spec=judge_spec, named_specs=named_specs,
                             use_judge=use_judge, judge_probes=judge_probes, confidence=confidence, seed=seed,
                             quiet=quiet)
    finally:
        store.close()


def analyze_store(store: Store, *, teacher_spec: str | None = None, judge_spec: str | None = None,
                  named_specs: tuple[str, ...] = (), use_judge: bool = True, judge_probes: int | None = None,
                  confidence: float = 0.95, seed: int = 0, quiet: bool = False, embedder=None,
                  judge_model=None, teacher_model=None, budget_repeats: int = BUDGET_REPEATS) -> str:
    """Analyze an open store. ``embedder``, ``judge_model`` and ``teacher_model`` replace the loaded ones (tests).

    Models are loaded only from specs the user named: ``teacher_spec`` (the
    teacher-likelihood adversary; it must be the model that answered),
    ``judge_spec``, and ``named_specs`` (`run`'s suspect and controls), among
    which a default judge may be chosen. A spec read from the database is
    shown, never run: without a named teacher or judge, those adversaries are
    skipped and the notes say so.
    """
    from audit.progress import progress

    started = time.perf_counter()
    comparisons, by_model = load_comparisons(store)
    coverage = probe_coverage(store, by_model)
    # A wrong --judge fails now, not after minutes of embeddings and teacher scores; loading it checks it no more.
    checked = {judge_spec: check_spec(judge_spec)} if use_judge and judge_spec and judge_model is None else {}
    ctx = Context(store, confidence, seed, by_model,
                  {m["name"]: m for m in store.models()},
                  {c["name"]: c for c in store.model_costs()},
                  named=frozenset(s for s in (teacher_spec, judge_spec, *named_specs) if s), checked=checked)
    ctx.notes.append(_coverage_note(coverage))
    teacher_model = teacher_model or named_teacher(ctx, teacher_spec)  # a wrong --teacher fails before the stages
    plan = sequential.recorded_plan(store, store.require_audit())
    embedder = embedder or Embedder()
    stages = _StageClock()
    with progress(quiet) as bar:
        with stages("embeddings and style features"):
            attach_features(ctx.store, comparisons, embedder, bar)
        with stages("discriminators"):
            outcomes = discriminators(comparisons)
        with stages("teacher-likelihood"):
            add_likelihood(ctx, comparisons, outcomes, teacher_model, bar)
        with stages("judge"):
            if use_judge:
                judged = judged_comparisons(comparisons, judge_probes, plan)
                add_judge(ctx, judged, outcomes, judge_spec, judge_model, bar, whole=comparisons)
            else:
                ctx.notes.append("judge: skipped (--no-judge)")
                ctx.not_run["judge"] = "the analysis was run with --no-judge"
        with stages("statistics"):
            rows = []
            for comp in comparisons:
                rows += baseline_rows(ctx, comp)
                for outcome in outcomes[comp.name].values():
                    rows += advantage_rows(ctx, comp, outcome)
                rows += headline_rows(ctx, comp, outcomes[comp.name])
            rows += provenance_rows(ctx, comparisons, outcomes)
        if plan is not None:
            with stages("confidence sequences"):
                evaluation = sequential.evaluate(store, plan, embedder=embedder,
                                                 scorer=cached_scorer(ctx, teacher_model), bar=bar)
                rows += sequential_rows(ctx, comparisons, evaluation)
        for row in rows:  # every claim carries the probe set it rests on, so the report and signature state it
            row.details["coverage"] = coverage
        with stages("budget curves"):
            points = [p for comp in comparisons for p in budget_points(ctx, comparisons, comp, budget_repeats)]
        store.clear_results()  # only now: a run that fails midway leaves the previous results whole
        store.record_results(rows)
        store.record_budget_points(points)
        record_exhibits(store)  # after the results: category exhibits follow their recorded evidence rank
        if plan is not None:
            store.record_sequence_points(evaluation.points())
    wall = time.perf_counter() - started
    store.record_cost(subject="analysis", stage="analyze", wall_s=wall,
                      details={"rows": len(rows), "budget_points": len(points), "notes": ctx.notes,
                               "unnamed": ctx.unnamed, "stage_seconds": stages.seconds,
                               "settings": analysis_settings(judge=judge_spec, use_judge=use_judge,
                                                             judge_probes=judge_probes, confidence=confidence)})
    return _summary(ctx, rows, wall, stages.seconds)


def _coverage_note(coverage: dict) -> str:
    """One line for the summary: the common probe set and who left probes unanswered."""
    selected = coverage["probes_selected"]
    short = [f"{m['model']} left {selected - m['answered']} unanswered" for m in coverage["models"]
             if m["answered"] < selected]
    return (f"probes: every claim rests on the {coverage['probes_common']} of {selected} selected probes that every "
            "model answered" + (f" ({'; '.join(short)})" if short else ""))


class _StageClock:
    """Wall seconds per stage of the analysis, for the cost record and the summary."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 2)


# ---- summary --------------------------------------------------------------------


def _summary(ctx: Context, rows: list[ResultRow], wall: float, stage_seconds: dict[str, float]) -> str:
    lines = []
    for r in rows:
        if (r.category != "all" or r.split not in ("all", SEQUENTIAL)
                or r.metric not in ("advantage", "advantage-gap", "preference")):
            continue
        name = f"headline ({r.adversary})" if r.headline else r.adversary
        name += " [sequence]" if r.split == SEQUENTIAL else ""
        interval = (f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]" if r.ci_low is not None and r.ci_high is not None
                    else "[no interval]")
        estimate = f"{r.estimate:+.3f}" if r.estimate is not None else "n/a"
        comparison = provenance_key(r.control) if r.comparison == PROVENANCE else r.comparison
        lines.append(f"{comparison:<28} {name:<44} {estimate} {interval} n={r.n} q={r.q}")
    lines += ctx.notes
    lines.append(f"{len(rows)} result rows written in {wall:.1f} s ({int(ctx.confidence * 100)}% intervals): "
                 + ", ".join(f"{name} {sec:.1f} s" for name, sec in stage_seconds.items()))
    return "\n".join(lines)

"""The analyze stage: from the recorded transcripts to (ε, q, t, A) claims with honest intervals.

Reads the responses in the audit database, runs every adversary on teacher
vs suspect and teacher vs each control, and writes the ``results`` and
``budget_points`` tables (old rows cleared just before the new ones are
written, so a rerun never mixes stale rows with new ones, and a run that
fails midway leaves the previous results whole). It touches no model except
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
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from audit import sequential
from audit.adversaries import discriminator, judge, likelihood, similarity
from audit.adversaries.comparison import Comparison, load_comparisons, probe_coverage
from audit.adversaries.embeddings import Embedder, attach_features, embedder_cost
from audit.adversaries.mmd import mmd_estimate
from audit.adversaries.outcome import Outcome, provenance_gap
from audit.errors import AuditError, ScoringUnsupported
from audit.models import check_spec
from audit.settings import analysis_settings
from audit.stats import (Estimate, bonferroni, correct_pvalues, estimate_gap, headline_bound,
                         holm_interval, rank_by_evidence)
from audit.results import ResultRow
from audit.store import Store
from audit.vocabulary import MAIN_COMPARISON as MAIN
from audit.vocabulary import PROVENANCE, SEQUENTIAL, control_comparison, control_of, provenance_key

BUDGET_QS = (50, 100, 250, 500, 1000, None)
MIN_BUDGET_Q = 8  # a paired discriminator needs a few probes per fold
BUDGET_REPEATS = 10
PILOT_SHARE = 0.1  # probes set aside as the guided strategy's pilot
NEVER_RUN = "the database's spec is never run"  # specs read from a database are shown, never executed


@dataclass
class Context:
    """What every row builder needs: the store, the audit, and the compute already on record."""

    store: Store
    audit_id: str
    confidence: float
    seed: int
    by_model: dict[str, list[dict]]
    model_rows: dict[str, dict]
    model_costs: dict[str, dict]
    notes: list[str] = field(default_factory=list)
    loaded: dict[str, object] = field(default_factory=dict)
    per_probe: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> probe -> compute  # spec -> model: a teacher that also judges loads once
    named: frozenset[str] = frozenset()  # the specs the user gave (command line, config): the only ones ever loaded
    unnamed: list[str] = field(default_factory=list)  # adversaries skipped because the user named no model for them
    not_run: dict[str, str] = field(default_factory=dict)  # adversary -> why it could not be run (the headline says)
    checked: dict[str, object] = field(default_factory=dict)  # spec -> its check_spec, which loading does not repeat

    def load(self, spec: str):
        """The model ``spec`` names, loaded once; never a spec the user did not name (one read from the database)."""
        if spec not in self.named:
            raise AuditError(f"model spec {spec!r}: not named on the command line; {NEVER_RUN}")
        if spec not in self.loaded:
            from audit.models import load_model

            self.loaded[spec] = load_model(self.checked.get(spec, spec))
        return self.loaded[spec]


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
    audit_id = store.require_audit()["id"]
    comparisons, by_model = load_comparisons(store, audit_id)
    coverage = probe_coverage(store, audit_id, by_model)
    # A wrong --judge fails now, not after minutes of embeddings and teacher scores; loading it checks it no more.
    checked = {judge_spec: check_spec(judge_spec)} if use_judge and judge_spec and judge_model is None else {}
    ctx = Context(store, audit_id, confidence, seed, by_model,
                  {m["name"]: m for m in store.models(audit_id)},
                  {c["name"]: c for c in store.model_costs(audit_id)},
                  named=frozenset(s for s in (teacher_spec, judge_spec, *named_specs) if s), checked=checked)
    ctx.notes.append(_coverage_note(coverage))
    teacher_model = teacher_model or _named_teacher(ctx, teacher_spec)  # a wrong --teacher fails before the stages
    plan = sequential.recorded_plan(store, store.require_audit())
    embedder = embedder or Embedder()
    stages = _StageClock()
    with progress(quiet) as bar:
        with stages("embeddings and style features"):
            attach_features(ctx.store, ctx.audit_id, comparisons, embedder, bar)
        with stages("discriminators"):
            outcomes = _discriminators(comparisons)
        with stages("teacher-likelihood"):
            _add_likelihood(ctx, comparisons, outcomes, teacher_model, bar)
        with stages("judge"):
            if use_judge:
                judged = _judged_comparisons(comparisons, judge_probes, plan)
                _add_judge(ctx, judged, outcomes, judge_spec, judge_model, bar, whole=comparisons)
            else:
                ctx.notes.append("judge: skipped (--no-judge)")
                ctx.not_run["judge"] = "the analysis was run with --no-judge"
        with stages("statistics"):
            rows = []
            for comp in comparisons:
                rows += _baseline_rows(ctx, comp)
                for outcome in outcomes[comp.name].values():
                    rows += _advantage_rows(ctx, comp, outcome)
                rows += _headline_rows(ctx, comp, outcomes[comp.name])
            rows += _provenance_rows(ctx, comparisons, outcomes)
        if plan is not None:
            with stages("confidence sequences"):
                evaluation = sequential.evaluate(store, audit_id, plan, embedder=embedder,
                                                 scorer=_cached_scorer(ctx, teacher_model), bar=bar)
                rows += _sequential_rows(ctx, comparisons, evaluation)
        for row in rows:  # every claim carries the probe set it rests on, so the report and signature state it
            row.details["coverage"] = coverage
        with stages("budget curves"):
            points = [p for comp in comparisons for p in _budget_points(ctx, comparisons, comp, budget_repeats)]
        store.clear_results(audit_id)  # only now: a run that fails midway leaves the previous results whole
        store.record_results(audit_id, rows)
        store.record_budget_points(audit_id, points)
        if plan is not None:
            store.record_sequence_points(audit_id, evaluation.points())
    wall = time.perf_counter() - started
    store.record_cost(audit_id, subject="analysis", stage="analyze", wall_s=wall,
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


# ---- inputs ----------------------------------------------------------------


def _discriminators(comparisons: list[Comparison]) -> dict[str, dict[str, Outcome]]:
    """Both discriminators on every comparison; each variant's folds and covariance fitted once for all of them."""
    started = time.perf_counter()
    single, paired = (discriminator.Design.of(kind, comparisons) for kind in ("single", "paired"))
    shared = (time.perf_counter() - started) / len(comparisons)
    outcomes = {}
    for comp in comparisons:
        outcomes[comp.name] = {"discriminator-single": discriminator.single_outcome(single, comp),
                               "discriminator-paired": discriminator.paired_outcome(paired, comp)}
        for o in outcomes[comp.name].values():
            o.compute["wall_s"] += shared
            o.compute["embedder"] = "all-MiniLM-L6-v2 (shared by every embedding-based adversary)"
    return outcomes


def _named_teacher(ctx: Context, teacher_spec: str | None):
    """The teacher the user named, loaded and checked to be the model that answered; None (and a note) if none."""
    if teacher_spec is None:
        ctx.notes.append(f"teacher-likelihood: skipped (no --teacher given; {NEVER_RUN})")
        ctx.unnamed.append("teacher-likelihood")
        ctx.not_run["teacher-likelihood"] = "no --teacher was given to score responses under"
        return None
    model = ctx.load(teacher_spec)
    recorded = ctx.model_rows["teacher"]
    fingerprint = model.describe().fingerprint
    same = fingerprint == recorded["fingerprint"] if recorded["fingerprint"] else teacher_spec == recorded["spec"]
    if not same:
        raise AuditError(f"--teacher {teacher_spec!r} is not the teacher that answered in {ctx.store.path} "
                         f"(fingerprint {fingerprint!r}; recorded {recorded['fingerprint']!r}, spec "
                         f"{recorded['spec']!r}): the likelihood test must score under the model that answered")
    return model


def _add_likelihood(ctx: Context, comparisons: list[Comparison], outcomes: dict, model, bar) -> None:
    """The teacher-likelihood adversary, where the named teacher scores text."""
    if model is None:
        return
    teacher_row = ctx.model_rows["teacher"]
    try:
        scorer = likelihood.TeacherScorer(ctx.store, ctx.audit_id, model, teacher_row["fingerprint"] or "unknown",
                                          teacher_row["param_count"])
        loglik, spent = {}, {}
        for comp in comparisons:
            both = scorer.mean_logprobs(comp.probe_texts * 2, comp.teacher_texts + comp.other_texts, bar)
            loglik["teacher"], loglik[comp.other] = both[:len(comp)], both[len(comp):]
            spent[comp.name] = dict(scorer.spent)
        design = likelihood.LikelihoodDesign(loglik, comparisons[0].probe_ids, ctx.seed)
        for comp in comparisons:
            outcome = likelihood.likelihood_outcome(design, comp)
            outcome.compute.update(spent[comp.name])
            outcomes[comp.name]["teacher-likelihood"] = outcome
        scorer.record_cost()
    except ScoringUnsupported as exc:
        ctx.notes.append(f"teacher-likelihood: skipped, the teacher's backend gives no log-probabilities ({exc})")
        ctx.not_run["teacher-likelihood"] = ("the claimed teacher cannot score text (no log-probabilities: a "
                                             "replayed or HTTP teacher)")


def _add_judge(ctx: Context, comparisons: list[Comparison], outcomes: dict, judge_spec: str | None,
               judge_model, bar, whole: list[Comparison]) -> None:
    """Ask the judge (resuming) the pairs of ``comparisons`` (a subsample of ``whole``'s where --judge-probes is
    given), then turn its verdicts into the judge and judge-unfiltered outcomes."""
    if judge_spec:
        spec, why = judge_spec, "given with --judge"
    else:
        spec, why = judge.default_judge(list(ctx.model_rows.values()))
        if spec is None:
            ctx.notes.append(f"judge: skipped, {why}")
            ctx.not_run["judge"] = why
            return
        if spec not in ctx.named:
            ctx.notes.append(f"judge: skipped (no --judge given; {NEVER_RUN}: the default choice would be "
                             f"{spec!r}, {why})")
            ctx.unnamed.append("judge")
            ctx.not_run["judge"] = "no --judge was given"
            return
    try:
        model = judge_model or ctx.load(spec)
    except AuditError as exc:
        if judge_spec:
            raise
        ctx.notes.append(f"judge: skipped, the default judge {spec!r} could not be loaded ({exc})")
        ctx.not_run["judge"] = "the default judge could not be loaded"
        return
    judge_id = ctx.store.add_model(ctx.audit_id, name="judge", role="judge", spec=spec,
                                   description=model.describe().as_dict())
    reader = judge.VerdictReader(model)
    teacher_by_probe = {r["probe_id"]: (r["category"], r["text"] or "")
                        for r in ctx.by_model["teacher"] if r["sample"] == 0}
    for comp, full in zip(comparisons, whole):
        judge.judge_comparison(ctx.store, ctx.audit_id, judge_id, reader, comp, teacher_by_probe,
                               seed=ctx.seed, bar=bar)
        filtered, unfiltered = judge.judge_outcomes(ctx.store, ctx.audit_id, full, only=set(comp.probe_ids.tolist()))
        for o in (filtered, unfiltered):
            o.details.update(judge_spec=spec, judge_choice=why)
            if len(comp) < len(full):
                o.details["subsample"] = (f"the judge read {len(set(comp.probe_ids.tolist()))} of the "
                                          f"{len(set(full.probe_ids.tolist()))} probes, chosen before any verdict "
                                          "(--judge-probes)")
        outcomes[comp.name]["judge"] = filtered
        outcomes[comp.name]["judge-unfiltered"] = unfiltered
    _record_judge_cost(ctx, judge_id)
    ctx.notes.append(f"judge: {spec} ({why})" + (f"; on the first {len(set(comparisons[0].probe_ids.tolist()))} "
                                                 "probes only (--judge-probes)" if len(comparisons[0]) < len(whole[0])
                                                 else ""))


def _judged_comparisons(comparisons: list[Comparison], judge_probes: int | None, plan) -> list[Comparison]:
    """The pairs the judge reads: all, or the first ``judge_probes`` probes (in the sequential order where the
    audit has one, else in sorted id order), chosen before any verdict so the subsample cannot favour a side."""
    if judge_probes is None:
        return comparisons
    ids = sorted(set(comparisons[0].probe_ids.tolist()))
    if plan is not None:
        position = {p: i for i, p in enumerate(plan.order)}
        ids.sort(key=position.__getitem__)
    chosen = ids[:judge_probes]
    return [c.subset(c.mask_of(chosen)) for c in comparisons]


def _cached_scorer(ctx: Context, teacher_model):
    """The teacher's scorer for the sequences: the named teacher scores what the cache lacks; without one, the
    scores cached during collection are read and a missing one is an error naming --teacher."""
    row = ctx.model_rows["teacher"]
    return likelihood.TeacherScorer(ctx.store, ctx.audit_id, teacher_model, row["fingerprint"] or "unknown",
                                    row["param_count"])


def _sequential_rows(ctx: Context, comparisons: list[Comparison], evaluation) -> list[ResultRow]:
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
            q_c, t_c = _q_t(ctx, by_name[control_comparison(control)], probes, {})
            q_m, t_m = _q_t(ctx, by_name[MAIN], probes, {})
            q, spent = max(q_c, q_m), {k: t_c[k] + t_m[k] for k in _T_KEYS}
            metric, comparison = "preference", PROVENANCE
            est.details["meaning"] = ("P[the adversary finds the suspect's response more teacher-like than the "
                                      "control's] − P[the reverse]; positive: the suspect imitates the teacher more")
        else:
            q, spent = _q_t(ctx, by_name[s.comparison], probes, {})
            metric, comparison = "advantage", s.comparison
        row = _row(s.adversary, comparison, "all", SEQUENTIAL, metric, est, q, spent, control=control)
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


def _record_judge_cost(ctx: Context, judge_id: str) -> None:
    rows = [j for j in ctx.store.judgements(ctx.audit_id) if j["judge_id"] == judge_id]
    ctx.store.record_cost(ctx.audit_id, subject="judge", stage="analyze-judge", queries=len(rows),
                          tokens_in=sum(j["tokens_in"] or 0 for j in rows),
                          tokens_out=sum(j["tokens_out"] or 0 for j in rows),
                          wall_s=sum(j["latency_s"] or 0.0 for j in rows),
                          details={"what": "pairwise judge verdicts, both A/B orders"})


# ---- q and t -------------------------------------------------------------------


_T_KEYS = ("tokens_in", "tokens_out", "wall_s", "device_s", "flops")


def _per_probe_compute(ctx: Context, name: str) -> dict[str, np.ndarray]:
    """One model's recorded compute per probe (tokens and wall exact; device seconds and FLOPs by token share)."""
    if name not in ctx.per_probe:
        rows = ctx.by_model.get(name, [])
        total = ctx.model_costs.get(name, {})
        all_tokens = (total.get("tokens_in") or 0) + (total.get("tokens_out") or 0)
        sums: dict[str, np.ndarray] = {}
        for r in rows:
            tokens = (r["tokens_in"] or 0) + (r["tokens_out"] or 0)
            share = tokens / all_tokens if all_tokens else 0.0
            add = np.array([r["tokens_in"] or 0, r["tokens_out"] or 0, r["latency_s"] or 0.0,
                            share * (total.get("device_s") or 0.0), share * (total.get("flops") or 0.0)])
            sums[r["probe_id"]] = sums.get(r["probe_id"], 0.0) + add
        ctx.per_probe[name] = sums
    return ctx.per_probe[name]


def _q_t(ctx: Context, comp: Comparison, probe_ids: set[str] | None, adversary_compute: dict) -> tuple[int, dict]:
    """Queries per model and compute for the probes of a row (all probes when ``probe_ids`` is None)."""
    names = ("teacher", comp.other)
    if probe_ids is None:
        costs = [ctx.model_costs.get(n, {}) for n in names]
        q = max((c.get("queries") or 0) for c in costs)
        t = {k: float(sum((c.get(k) or 0) for c in costs)) for k in _T_KEYS}
    else:
        q = int(comp.mask_of(probe_ids).sum())
        total = np.zeros(len(_T_KEYS))
        for name in names:
            per_probe = _per_probe_compute(ctx, name)
            total += sum((per_probe[p] for p in probe_ids if p in per_probe), np.zeros(len(_T_KEYS)))
        t = {k: float(v) for k, v in zip(_T_KEYS, total)}
    t["adversary"] = adversary_compute
    return q, t


def _adversary_compute(ctx: Context, outcome_compute: dict, uses_embedder: bool) -> dict:
    compute = {k: v for k, v in outcome_compute.items() if isinstance(v, (int, float))}
    if uses_embedder:
        compute.update({f"embedder_{k}": v for k, v in embedder_cost(ctx.store, ctx.audit_id).items()})
    return compute


# ---- rows ------------------------------------------------------------------------


def _row(adversary: str, comp_name: str, category: str, split: str, metric: str, est: Estimate, q: int,
         t: dict, **extra) -> ResultRow:
    return ResultRow.of(est, adversary=adversary, comparison=comp_name, category=category, split=split,
                        metric=metric, q=q, t=t, **extra)


def _finite(values: dict) -> dict:
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
            r.details["holm_interval"] = _finite({"ci_low": corrected.ci_low, "ci_high": corrected.ci_high,
                                                     "confidence": corrected.confidence})
    for rank, r in enumerate(rank_by_evidence(rows), start=1):
        r.details["evidence_rank"] = rank
    return rows


def _baseline_rows(ctx: Context, comp: Comparison) -> list[ResultRow]:
    """Similarity (cosine) and the MMD two-sample test, overall and per category."""
    compute = _adversary_compute(ctx, {}, uses_embedder=True)
    rows, sim_cats, mmd_cats = [], [], []
    everything = np.ones(len(comp), dtype=bool)
    for category in ["all"] + _categories(comp):
        mask = everything if category == "all" else comp.categories == category
        probes = None if category == "all" else set(comp.probe_ids[mask].tolist())
        q, t = _q_t(ctx, comp, probes, compute)
        sim = _row("similarity", comp.name, category, "all", "cosine",
                   similarity.cosine_estimate(comp, mask, ctx.confidence, ctx.seed), q, t)
        mmd = _row("mmd", comp.name, category, "all", "mmd", mmd_estimate(comp, mask, ctx.confidence, ctx.seed), q, t)
        rows += [sim, mmd]
        if category != "all":
            sim_cats.append(sim)
            mmd_cats.append(mmd)
    _with_corrections(mmd_cats)
    return rows


def _advantage_rows(ctx: Context, comp: Comparison, outcome: Outcome) -> list[ResultRow]:
    """One adversary on one comparison: overall, per category (corrected), per split with the gap."""
    compute = _adversary_compute(ctx, outcome.compute, uses_embedder=outcome.adversary.startswith("discriminator"))
    overall = outcome.estimate(ctx.confidence, ctx.seed)
    q, t = _q_t(ctx, comp, None, compute)
    main = _row(outcome.adversary, comp.name, "all", "all", "advantage", overall, q, t,
                details={**outcome.details, "kind": outcome.kind})
    rows, category_rows, category_estimates = [main], [], []
    for category in _categories(comp):
        part = outcome.subset(outcome.categories == category)
        probes = set(comp.probe_ids[comp.categories == category].tolist())
        q, t = _q_t(ctx, comp, probes, compute)
        category_estimates.append(part.estimate(ctx.confidence, ctx.seed))
        category_rows.append(_row(outcome.adversary, comp.name, category, "all", "advantage",
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
        q, t = _q_t(ctx, comp, set(comp.probe_ids[comp.splits == split].tolist()), compute)
        rows.append(_row(outcome.adversary, comp.name, "all", split, "advantage", est, q, t))
    gap = estimate_gap(estimates["public"], estimates["private"], ctx.confidence)
    main.details["split_gap"] = _finite({"public_minus_private": gap.estimate, "ci_low": gap.ci_low,
                                            "ci_high": gap.ci_high, "method": gap.method,
                                            "p_value": gap.p_value, "confidence": gap.confidence})
    return rows


def _headline_rows(ctx: Context, comp: Comparison, outcomes: dict[str, Outcome]) -> list[ResultRow]:
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
    compute = _adversary_compute(ctx, outcomes[chosen].compute, uses_embedder=chosen.startswith("discriminator"))
    q, t = _q_t(ctx, comp, None, compute)
    details = {"candidates": sorted(valid), "rule": "largest point estimate",
               "selection": "Bonferroni over adversaries",
               "correction": (f"each of the {len(valid)} candidates' intervals at level "
                              f"1 − α/{len(valid)} = {head.details['per_test_confidence']:.4f}, so the selected "
                              "one's interval holds whatever the choice"),
               "not_run": dict(sorted(ctx.not_run.items()))}
    return [_row(chosen, comp.name, "all", "all", "advantage", head, q, t, details=details, headline=True)]


def _provenance_rows(ctx: Context, comparisons: list[Comparison], outcomes: dict) -> list[ResultRow]:
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
            q_c, t_c = _q_t(ctx, comp, None, _adversary_compute(ctx, outcomes[comp.name][adversary].compute, False))
            q_m, t_m = _q_t(ctx, main, None, _adversary_compute(ctx, outcomes[MAIN][adversary].compute, False))
            t = {k: t_c[k] + t_m[k] for k in _T_KEYS}
            t["adversary"] = {"control_comparison": t_c["adversary"], "suspect_comparison": t_m["adversary"]}
            details = {"adv_teacher_control": est.details.pop("mean_a"),
                       "adv_teacher_suspect": est.details.pop("mean_b"), "shared_probes": est.n,
                       "correction": f"Bonferroni over the {len(gaps)} adversaries' gaps against this control",
                       "uncorrected": _finite(est.details.pop("uncorrected")),
                       "meaning": "positive: the suspect is harder to tell from the teacher than the control is"}
            family.append(_row(adversary, PROVENANCE, "all", "all", "advantage-gap", est,
                               max(q_c, q_m), t, details=details, control=control))
        if family:
            strongest = min(family, key=lambda r: (r.p_value, -abs(r.estimate), r.adversary))
            strongest.details["page_one"] = "the strongest evidence among this control's Bonferroni-corrected gaps"
        rows += family
    return rows


# ---- budget curves ------------------------------------------------------------


def _budget_points(ctx: Context, comparisons: list[Comparison], comp: Comparison, repeats: int) -> list[dict]:
    """Paired-discriminator advantage against q: stratified random vs disagreement-guided acquisition.

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

    points = budget_curve(probes, categories, evaluate, qs=budget_ladder(len(probes) - n_pilot), pilot_scores=pilot_scores,
                          repeats=repeats,
                          seed=ctx.seed, confidence=ctx.confidence)
    for p in points:
        p.update(comparison=comp.name, adversary="discriminator-paired")
        p["details"]["pilot"] = "1 − cosine of teacher and other responses on the pilot probes"
    return [_finite(p) for p in points]


def budget_ladder(pool: int) -> tuple:
    """The budgets of the curve: the standard ladder, plus halvings of the pool when the audit is small.

    A 40-probe audit would otherwise get one point (all of it) and no curve.
    """
    halvings = {pool // 2**k for k in range(1, 4) if pool // 2**k >= MIN_BUDGET_Q} if pool < 2 * BUDGET_QS[1] else set()
    standard = {q for q in BUDGET_QS if q is not None and q < pool}
    return tuple(sorted(halvings | standard)) + (None,)


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

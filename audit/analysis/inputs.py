"""The adversaries' inputs: the outcomes of every adversary that can run, and the notes on those that cannot.

Separate from the row builders because this is the part that touches models
(the named teacher, the judge) and caches what they spend, while the rows
are statistics over what it returns.
"""

from __future__ import annotations

import time

from audit.adversaries import discriminator, judge, likelihood
from audit.adversaries.comparison import Comparison
from audit.adversaries.outcome import Outcome
from audit.analysis.context import NEVER_RUN, Context
from audit.errors import AuditError, ScoringUnsupported


def discriminators(comparisons: list[Comparison]) -> dict[str, dict[str, Outcome]]:
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


def named_teacher(ctx: Context, teacher_spec: str | None):
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


def add_likelihood(ctx: Context, comparisons: list[Comparison], outcomes: dict, model, bar) -> None:
    """The teacher-likelihood adversary, where the named teacher scores text."""
    if model is None:
        return
    teacher_row = ctx.model_rows["teacher"]
    try:
        scorer = likelihood.TeacherScorer(ctx.store, model, teacher_row["fingerprint"] or "unknown",
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


def add_judge(ctx: Context, comparisons: list[Comparison], outcomes: dict, judge_spec: str | None,
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
    judge_id = ctx.store.add_model(name="judge", role="judge", spec=spec,
                                   description=model.describe().as_dict())
    reader = judge.VerdictReader(model)
    teacher_by_probe = {r["probe_id"]: (r["category"], r["text"] or "")
                        for r in ctx.by_model["teacher"] if r["sample"] == 0}
    for comp, full in zip(comparisons, whole):
        judge.judge_comparison(ctx.store, judge_id, reader, comp, teacher_by_probe,
                               seed=ctx.seed, bar=bar)
        filtered, unfiltered = judge.judge_outcomes(ctx.store, full, only=set(comp.probe_ids.tolist()))
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


def judged_comparisons(comparisons: list[Comparison], judge_probes: int | None, plan) -> list[Comparison]:
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


def cached_scorer(ctx: Context, teacher_model):
    """The teacher's scorer for the sequences: the named teacher scores what the cache lacks; without one, the
    scores cached during collection are read and a missing one is an error naming --teacher."""
    row = ctx.model_rows["teacher"]
    return likelihood.TeacherScorer(ctx.store, teacher_model, row["fingerprint"] or "unknown",
                                    row["param_count"])


def _record_judge_cost(ctx: Context, judge_id: str) -> None:
    rows = [j for j in ctx.store.judgements() if j["judge_id"] == judge_id]
    ctx.store.record_cost(subject="judge", stage="analyze-judge", queries=len(rows),
                          tokens_in=sum(j["tokens_in"] or 0 for j in rows),
                          tokens_out=sum(j["tokens_out"] or 0 for j in rows),
                          wall_s=sum(j["latency_s"] or 0.0 for j in rows),
                          details={"what": "pairwise judge verdicts, both A/B orders"})

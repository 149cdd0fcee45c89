"""A sequential collection: ask in pre-registered rounds, update the confidence sequences, stop when settled.

The order of the whole usable suite is fixed by the seed and recorded (with
its hash, the round size, the stopping rule and the adversaries of the
family) before the first query; then each round asks every model the next
``round_size`` probes, and `audit.sequential.evaluate` rebuilds the
streams from the database and extends each sequence by the round. Collection stops at the first round where the
rule is settled, or at the budget (``--probes``, ``--max-seconds``,
``--max-cost``). The stop is recorded in the audit's config. Every model,
the embedder and the teacher's scorer stay loaded across rounds.

A query that failed is asked again with the next round, and its answer joins
the sequences at that round (recorded in ``sequential_rounds`` as each round
is evaluated), never at its own round, which was already decided on; one
that failed in the budget's last round is retried by a rerun, in one more
round of no new probes. Once the rule is settled nothing more is asked. A run
killed anywhere resumes at the first round not evaluated: earlier rounds are
recomputed from the database and their recorded membership, so the sequences
are the same as if it had never stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from audit import sequential
from audit.collect import (CollectOptions, RoleTally, adapter_training_probes, check_resumable, check_specs,
                           choose_probes, collect_role, collection_environment, model_names, summarize)
from audit.errors import AuditError, ScoringUnsupported
from audit.store import Store, set_aside


def run_sequential(options: CollectOptions) -> str:
    from audit.adversaries import embeddings
    from audit.models import load_model
    from audit.progress import progress

    deadline = time.monotonic() + options.max_seconds if options.max_seconds is not None else None
    named = model_names(options.teacher, options.suspect, options.controls)
    store = Store.open(options.db_path)
    audit = store.audit()
    if audit is not None and not options.new_run:
        check_resumable(store, audit, options, None)
    checked = check_specs(named, deadline)
    started_over = None
    if audit is not None and options.new_run:
        store.close()
        started_over = f"started over: the earlier audit is kept as {set_aside(options.db_path)}"
        store, audit = Store.open(options.db_path), None
    models = {name: load_model(checked[spec], device=options.device, dtype=options.dtype,
                               concurrency=options.concurrency, deadline=deadline) for name, _role, spec in named}
    suites, pool = _pool(store, audit, options, models)
    family = _family(models["teacher"])
    plan = sequential.preregister([p.id for p in pool], seed=options.seed, round_size=options.round_size,
                                  rule=options.stop_rule, threshold=options.epsilon_threshold,
                                  adversaries=family, confidence=options.confidence, windows=_windows(audit, family))
    _start(store, audit, options, suites, plan)
    ids = {name: store.add_model(name=name, role=role, spec=spec,
                                 description=models[name].describe().as_dict()) for name, role, spec in named}
    scorer = _scorer(store, models["teacher"], plan)
    embedder = embeddings.Embedder()
    by_id = {p.id: p for p in pool}
    rounds = plan.rounds(options.queries)
    tallies = {name: RoleTally(name=name, already=len(store.completed_queries(ids[name]))) for name, _, _ in named}
    first = max(store.sequential_rounds().values(), default=-1) + 1  # the rounds before it were evaluated
    evaluation = sequential.evaluate(store, plan, embedder=embedder, scorer=scorer) if first else None
    stop = evaluation.stop if evaluation else None
    why = "rule" if stop is not None else "budget"
    todo = _rounds_to_ask(store, ids, rounds, first, options.samples, by_id) if stop is None else []
    reached = first  # the rounds asked so far
    with progress(options.quiet) as bar:
        total = max(len(rounds), first + len(todo))
        task = bar.add_task("rounds            ", total=total, completed=min(first, total),
                            status="") if bar is not None else None
        for index, new in todo:
            if new:
                store.select_probes(new, purpose="eval", first_rank=index * plan.round_size)
            asked = {name: _unfinished(store, ids[name], rounds[:index], options.samples, by_id)
                     + [by_id[p] for p in new] for name in models}
            if not _ask_round(store, ids, models, asked, options, deadline, tallies, bar):
                why = "deadline"
                break
            reached = index + 1
            evaluation = sequential.evaluate(store, plan, current=index, previous=evaluation, embedder=embedder,
                                             scorer=scorer, bar=bar)
            store.record_round(index, evaluation.schedule.joined(index))
            if task is not None:
                bar.update(task, advance=1, status=evaluation.last.outcome if evaluation.last else "")
            stop = evaluation.stop
            if stop is not None:
                why = "rule"
                break
            if _over_cost(store, options):
                why = "cost"
                break
    if scorer is not None:
        scorer.record_cost()
    # settled: nothing more is asked (a query that failed stays failed, shown in the coverage); else a rerun retries
    unanswered = stop is None and any(_unfinished(store, ids[name], rounds[:reached], options.samples, by_id)
                                      for name in models)
    complete = why in ("rule", "budget", "cost") and not unanswered
    config = {**options.recorded(), "sequential_plan": plan.recorded(), **collection_environment()}
    if why != "deadline":
        config["sequential_stop"] = _stop_record(stop, why, options)
    store.update_audit(status="collected" if complete else "collecting", config=config)
    summary = summarize(options.db_path, list(tallies.values()), complete)
    lines = [summary, _stop_line(stop, why, plan)]
    return "\n".join(([started_over] if started_over else []) + lines)


def _pool(store: Store, audit: dict | None, options: CollectOptions, models: dict):
    """The usable probes: the whole suite (and private split), less training probes and prompts a replay lacks."""
    training = {p["id"] for p in store.selected_probes("train")} if audit else set()
    training |= set(adapter_training_probes(options))
    suites, pool, _ = choose_probes(replace(options, queries=None), training)
    for name, model in models.items():
        recorded = getattr(model, "recorded_prompts", None)
        if recorded is not None:
            known = recorded()
            pool = [p for p in pool if p.text in known]
            if len(pool) < options.round_size:
                raise AuditError(f"--sequential: the replayed {name} answered {len(pool)} of the suite's probes, "
                                 f"fewer than one round (--round-size {options.round_size})")
    return suites, pool


def _family(teacher) -> tuple[str, ...]:
    """The adversaries of the stopping family, fixed before any query: teacher-likelihood where the teacher scores."""
    try:
        teacher.score("Say yes.", ["yes"])
    except ScoringUnsupported:
        return ("discriminator-paired",)
    return sequential.ADVERSARIES


def _windows(audit: dict | None, family: tuple[str, ...]) -> tuple[int, ...]:
    """The teacher-likelihood's opening windows (`sequential.likelihood_streams`); an audit planned before they
    existed resumes with the whole response only, the statistic it pre-registered."""
    from audit.adversaries.likelihood import OPENING_WINDOWS

    if "teacher-likelihood" not in family:
        return ()
    recorded = sequential.recorded_settings(audit)
    if isinstance(recorded, dict) and "likelihood_windows" not in recorded:
        return ()
    return OPENING_WINDOWS


def _start(store: Store, audit: dict | None, options: CollectOptions, suites: list, plan) -> None:
    """The audit row with the plan recorded before the first query; a resume must find the same plan."""
    if audit is not None:
        recorded = sequential.recorded_settings(audit)
        if recorded is not None and recorded != plan.recorded():
            differs = next(k for k in plan.recorded() if recorded.get(k) != plan.recorded()[k])
            raise AuditError(f"{options.db_path}: its pre-registered plan has another {differs} "
                             f"({recorded.get(differs)!r}, now {plan.recorded()[differs]!r}): resume with the same "
                             "settings, or --new-run")
    store.ensure_audit(options.recorded(), suite_name=suites[0].name, suite_version=suites[0].version,
                       suite_hash=suites[0].hash, seed=options.seed,
                       private_seed_hash=suites[-1].private_seed_hash if len(suites) > 1 else None)
    config = {**options.recorded(), "sequential_plan": plan.recorded()}
    if audit is not None:
        config = {**json.loads(audit["config_json"] or "{}"), **config}
    store.update_audit(config=config, status="collecting")
    for suite in suites:
        store.add_suite(suite)
    store.select_probes(list(plan.order), purpose=sequential.ORDER)


def _scorer(store: Store, teacher, plan):
    if "teacher-likelihood" not in plan.adversaries:
        return None
    from audit.adversaries.likelihood import TeacherScorer

    row = store.model("teacher")
    return TeacherScorer(store, teacher, row["fingerprint"] or "unknown", row["param_count"])


def _rounds_to_ask(store: Store, ids: dict, rounds: list[list[str]], first: int, samples: int,
                   by_id: dict) -> list[tuple[int, list[str]]]:
    """(round index, its new probes) still to ask from round ``first``; once every round of the budget was asked,
    one more round of no new probes if a query failed: a rerun retries it there, and the answer joins that round."""
    if first < len(rounds):
        return [(index, rounds[index]) for index in range(first, len(rounds))]
    if any(_unfinished(store, model_id, rounds, samples, by_id) for model_id in ids.values()):
        return [(first, [])]
    return []


def _unfinished(store: Store, model_id: str, earlier: list[list[str]], samples: int, by_id: dict) -> list:
    """The probes of the ``earlier`` rounds that the model has not answered yet (a failed query): asked again with
    the next round, an answer then joins the sequences at that round, never at its own, already decided."""
    done = store.completed_queries(model_id)
    return [by_id[p] for round_ids in earlier for p in round_ids if any((p, s) not in done for s in range(samples))]


def _ask_round(store, ids, models, asked: dict[str, list], options, deadline, tallies, bar) -> bool:
    """Every model answers its ``asked`` probes; False if the deadline stopped it (resume asks the rest)."""
    for name, model in models.items():
        tally = collect_role(store, ids[name], name, model, asked[name], options.gen_params(),
                             samples=options.samples, deadline=deadline)
        total = tallies[name]
        total.answered += tally.answered
        total.errors += tally.errors
        total.seconds += tally.seconds
        total.error_samples += tally.error_samples[:3 - len(total.error_samples)]
        if tally.stopped:
            total.stopped = True
            return False
    return True


def _over_cost(store: Store, options: CollectOptions) -> bool:
    """Whether the prices the endpoints reported reach --max-cost; an endpoint that reports none cannot be capped."""
    if options.max_cost is None:
        return False
    spent, priced = store.reported_cost()
    if priced == 0:
        raise AuditError("--max-cost: no endpoint of this audit reported a price (usage.cost) in its replies, so the "
                         "cost cannot be capped; use --probes or --max-seconds instead (the responses so far are "
                         "kept)")
    return spent >= options.max_cost


def _stop_record(stop, why: str, options: CollectOptions) -> dict:
    if stop is not None:
        return {"round": stop.round, "reason": "rule", "rule": options.stop_rule, "outcome": stop.outcome}
    return {"round": None, "reason": why, "rule": options.stop_rule,
            "outcome": {"budget": "the budget of probes ran out first", "cost": "--max-cost was reached first"}[why]}


def _stop_line(stop, why: str, plan) -> str:
    if why == "deadline":
        return "sequential: stopped at the --max-seconds deadline mid-round; run the same command again to resume"
    if stop is not None:
        return f"sequential: stopped after round {stop.round + 1} by the {plan.rule} rule: {stop.outcome}"
    return f"sequential: the {plan.rule} rule was not settled before the {why} ran out; claims are stated as they stand"

"""The teacher's responses to training probes (purpose train): what every objective trains the student on.

The training probes are chosen disjoint from the audit's evaluation probes
(or from a private, secret-seeded suite no public audit can evaluate on), and
the teacher's responses are recorded in the audit database with
``purpose="train"``; a rerun finds them there and asks the teacher nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from audit.distill.options import DistillOptions
from audit.errors import AuditError
from audit.store import Store


def teacher_training_responses(store: Store, options: DistillOptions) -> list[dict]:
    """The teacher's recorded responses to training probes, first asking for them when --train-probes is given."""
    audit = store.audit()
    wanted: set[str] | None = None
    if options.train_queries:
        probes = _ask_teacher_training_probes(store, audit, options)
        wanted = {p.id for p in probes}
    elif audit is None:
        raise AuditError(_no_responses_message(store.path))
    teacher = store.model("teacher")
    if teacher is None:
        raise AuditError(_no_responses_message(store.path))
    if teacher["spec"] != options.teacher:
        raise AuditError(f"{store.path}: its teacher is {teacher['spec']!r}, not {options.teacher!r}; "
                         "use the same --teacher or another --db")
    rows = [r for r in store.responses(teacher["id"], purpose="train")
            if r["text"].strip() and (wanted is None or r["probe_id"] in wanted)]
    if not rows:
        raise AuditError(_no_responses_message(store.path))
    return rows


def _no_responses_message(db_path: Path) -> str:
    return (f"{db_path}: holds no teacher responses to training probes; pass --train-probes N "
            "to have the teacher answer N training probes first")


def _ask_teacher_training_probes(store: Store, audit: dict | None, options: DistillOptions) -> list:
    """Select training probes disjoint from the audit's evaluation probes and record the teacher's responses."""
    from audit.collect import collect_role
    from audit.models import load_model
    from audit.models.base import GenParams
    from audit.progress import progress

    suite = _training_suite(audit, options)
    if audit is None:
        config = {"teacher": options.teacher, "suite": options.suite, "private_seed_env": options.private_seed_env,
                  "seed": options.seed}
        store.ensure_audit(config, suite_name=suite.name, suite_version=suite.version, suite_hash=suite.hash,
                           seed=options.seed, private_seed_hash=suite.private_seed_hash)
    store.add_suite(suite)
    probes = _training_probes(store, suite, options.train_queries, options.seed)
    known = store.model("teacher")
    if known is not None and known["spec"] == options.teacher:
        done = store.completed_queries(known["id"], purpose="train")
        if all((p.id, 0) in done for p in probes):
            return probes  # a rerun: the teacher already answered every training probe
    teacher = load_model(options.teacher, device=options.device, dtype=options.dtype,
                         concurrency=options.concurrency)
    teacher_id = store.add_model(name="teacher", role="teacher", spec=options.teacher,
                                 description=teacher.describe().as_dict())
    params = GenParams(max_new_tokens=options.max_new_tokens, seed=options.seed, batch_size=options.batch_size,
                       top_logprobs=options.top_logprobs or 0)
    with progress(options.quiet) as bar:
        tally = collect_role(store, teacher_id, "teacher", teacher, probes, params, purpose="train",
                             bar=bar)
    if tally.errors:
        raise AuditError(f"{options.teacher}: {tally.errors} of {len(probes)} training queries failed "
                         f"(first: {tally.error_samples[0]}); run the same command again to retry them")
    return probes


def _training_suite(audit: dict | None, options: DistillOptions):
    """Where training probes come from: a private split when asked (no public-suite audit can ever evaluate
    on it), else the suite the audit in the database was collected on, else ``--suite``."""
    from audit.probes import build_private_suite, load_suite

    if options.private_seed_env:
        secret = os.environ.get(options.private_seed_env, "")
        if not secret:
            raise AuditError(f"--private-seed-env {options.private_seed_env}: that environment variable is unset "
                             "or empty")
        return build_private_suite(secret)
    return load_suite(json.loads(audit["config_json"]).get("suite", options.suite) if audit else options.suite)


def _training_probes(store: Store, suite, wanted: int, seed: int) -> list:
    """The first ``wanted`` training probes, topping up an earlier selection from probes nobody evaluates."""
    from audit.probes import sample_probes

    by_id = {p.id: p for p in suite.probes}
    chosen = [row["id"] for row in store.selected_probes("train")]
    if len(chosen) < wanted:
        taken = set(chosen) | {row["id"] for row in store.selected_probes("eval")}
        pool = dataclasses.replace(suite, probes=[p for p in suite.probes if p.id not in taken])
        fresh = [p.id for p in sample_probes(pool, wanted - len(chosen), seed)]
        store.select_probes(fresh, purpose="train")
        chosen += fresh
    return [by_id[pid] for pid in chosen[:wanted] if pid in by_id]

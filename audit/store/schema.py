"""The audit database's schema: one function per step, applied in order by sqlite-utils' ``Migrations``.

Never edit a step once released: add a new function and append it to
``STEPS``. Opening a database applies the steps it lacks, so a new and an old
database are handled the same way; a database that records a step not in
``STEPS`` was written by a newer distill-audit.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from audit.results import ResultRow
from audit.store.rows import parse_json_cols, result_columns


def m001_initial(db: sqlite_utils.Database) -> None:
    """The tables of the first release: the audit, its models, probes, queries, responses and what is derived."""
    db["audits"].create(
        {
            "id": str,
            "created_at": str,
            "tool_version": str,
            "status": str,
            "config_json": str,
            "suite_name": str,
            "suite_version": str,
            "suite_hash": str,
            "private_seed_hash": str,
            "seed": int,
        },
        pk="id",
    )
    db["models"].create(
        {
            "id": str,
            "audit_id": str,
            "name": str,
            "role": str,
            "spec": str,
            "backend": str,
            "fingerprint": str,
            "param_count": int,
            "describe_json": str,
        },
        pk="id",
        foreign_keys=[("audit_id", "audits", "id")],
    )
    db["suites"].create(
        {
            "hash": str,
            "name": str,
            "version": str,
            "n_probes": int,
            "source": str,
            "secret_seed_hash": str,
        },
        pk="hash",
    )
    db["probes"].create(
        {
            "id": str,
            "suite_hash": str,
            "category": str,
            "subcategory": str,
            "text": str,
            "reference_json": str,
            "split": str,
        },
        pk="id",
    )
    db["selections"].create(
        {"audit_id": str, "probe_id": str, "purpose": str, "rank": int},
        pk=("audit_id", "probe_id", "purpose"),
        foreign_keys=[("audit_id", "audits", "id"), ("probe_id", "probes", "id")],
    )
    db["queries"].create(
        {
            "id": str,
            "audit_id": str,
            "model_id": str,
            "probe_id": str,
            "sample": int,
            "purpose": str,
            "params_json": str,
            "status": str,
            "error": str,
            "attempts": int,
            "started_at": str,
            "finished_at": str,
            "latency_s": float,
        },
        pk="id",
        foreign_keys=[
            ("audit_id", "audits", "id"),
            ("model_id", "models", "id"),
            ("probe_id", "probes", "id"),
        ],
    )
    db["queries"].create_index(["audit_id", "model_id", "status"])
    db["responses"].create(
        {
            "query_id": str,
            "audit_id": str,
            "model_id": str,
            "probe_id": str,
            "sample": int,
            "text": str,
            "tokens_in": int,
            "tokens_out": int,
            "finish_reason": str,
            "latency_s": float,
            "device_s": float,
            "logprobs_json": str,
            "request_json": str,
            "raw_json": str,
            "content_hash": str,
        },
        pk="query_id",
        foreign_keys=[("query_id", "queries", "id")],
    )
    db["responses"].create_index(["audit_id", "model_id"])
    db["judgements"].create(
        {
            "id": str,
            "audit_id": str,
            "judge_id": str,
            "comparison": str,
            "probe_id": str,
            "sample": int,
            "order": str,
            "first_query_id": str,
            "second_query_id": str,
            "verdict": str,
            "correct": int,
            "p_first": float,
            "p_second": float,
            "method": str,
            "raw_output": str,
            "latency_s": float,
            "tokens_in": int,
            "tokens_out": int,
            "content_hash": str,
        },
        pk="id",
    )
    db["judgements"].create_index(["audit_id", "comparison"])
    db["results"].create(
        {
            "id": str,
            "audit_id": str,
            "adversary": str,
            "comparison": str,
            "category": str,
            "split": str,
            "metric": str,
            "n": int,
            "advantage": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "ci_method": str,
            "p_value": float,
            "p_holm": float,
            "p_bh": float,
            "q": int,
            "t_json": str,
            "details_json": str,
            "created_at": str,
        },
        pk="id",
    )
    db["budget_points"].create(
        {
            "id": str,
            "audit_id": str,
            "comparison": str,
            "adversary": str,
            "strategy": str,
            "q": int,
            "n": int,
            "advantage": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "details_json": str,
        },
        pk="id",
    )
    db["costs"].create(
        {
            "id": str,
            "audit_id": str,
            "subject": str,
            "stage": str,
            "queries": int,
            "tokens_in": int,
            "tokens_out": int,
            "wall_s": float,
            "device_s": float,
            "flops": float,
            "details_json": str,
        },
        pk="id",
    )
    db["artifacts"].create(
        {
            "id": str,
            "audit_id": str,
            "path": str,
            "kind": str,
            "sha256": str,
            "bytes": int,
            "created_at": str,
        },
        pk="id",
    )
    db["embeddings"].create(
        {"text_hash": str, "embedder": str, "dim": int, "vector": bytes},
        pk=("text_hash", "embedder"),
    )
    db["distill_runs"].create(
        {
            "id": str,
            "audit_id": str,
            "teacher_id": str,
            "student_spec": str,
            "adapter_dir": str,
            "config_json": str,
            "status": str,
            "created_at": str,
            "finished_at": str,
        },
        pk="id",
    )
    db["distill_log"].create(
        {
            "run_id": str,
            "step": int,
            "epoch": float,
            "loss": float,
            "learning_rate": float,
            "tokens": int,
            "tokens_per_s": float,
            "elapsed_s": float,
        },
        pk=("run_id", "step"),
    )


def m002_full_text_search(db: sqlite_utils.Database) -> None:
    """FTS5 over prompts and responses, kept in sync by triggers, so transcripts are searchable in Datasette."""
    db["probes"].enable_fts(["text", "category"], fts_version="FTS5", create_triggers=True)
    db["responses"].enable_fts(["text"], fts_version="FTS5", create_triggers=True)


def m003_probe_pairs(db: sqlite_utils.Database) -> None:
    """Perturbation pairs (typos, paraphrases) link to their original, so consistency can be analysed."""
    db["probes"].add_column("pair_of", str)


def m004_top_logprobs(db: sqlite_utils.Database) -> None:
    """Each response's top-k next-token distributions as one packed blob (``audit.topk``), for logit
    distillation and leakage estimates; its sha256 is part of the response's content hash."""
    db["responses"].add_column("top_logprobs", bytes)


def m005_sequence_points(db: sqlite_utils.Database) -> None:
    """A sequential audit's confidence sequences, one row per (comparison, adversary, round), for the report's
    plot; derived from the responses like ``results``, and rewritten with them."""
    db["sequence_points"].create(
        {
            "id": str,
            "audit_id": str,
            "comparison": str,
            "adversary": str,
            "round": int,
            "n": int,
            "q": int,
            "estimate": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "p_value": float,
            "details_json": str,
        },
        pk="id",
    )


RESULTS_COLUMNS = {"id": str, "audit_id": str, "adversary": str, "comparison": str, "control": str, "category": str,
                   "split": str, "metric": str, "headline": int, "judge_mode": str, "n": int, "estimate": float,
                   "ci_low": float, "ci_high": float, "confidence": float, "ci_method": str, "p_value": float,
                   "p_holm": float, "p_bh": float, "q": int, "t_json": str, "details_json": str, "created_at": str}


def m006_typed_results(db: sqlite_utils.Database) -> None:
    """``results`` in the shape of ``audit.results.ResultRow``: ``advantage`` → ``estimate`` (of its ``metric``),
    the headline a flag on the selected adversary's row and the control a column (no more ``headline`` and
    ``provenance:NAME`` strings), and the judge mode as data. Every number is kept; rows are re-keyed."""
    old = [parse_json_cols(r, "t_json", "details_json") for r in db["results"].rows]
    db["results"].drop()
    db["results"].create(RESULTS_COLUMNS, pk="id")
    db["results"].insert_all(result_columns(r["audit_id"], ResultRow.from_legacy(r, r["t"], r["details"]),
                                            r["created_at"]) for r in old)


def m007_private_seed_hash(db: sqlite_utils.Database) -> None:
    """One name for the private split's seed hash: the suites' ``secret_seed_hash`` is the audits'
    ``private_seed_hash``, the glossary's word."""
    db.execute("alter table suites rename column secret_seed_hash to private_seed_hash")


def m008_budget_probes(db: sqlite_utils.Database) -> None:
    """A budget point's size is its ``probes`` per model, no longer ``q``: q is the queries per model everywhere
    else (probes × samples), and a budget point counts probes. Every value is kept; the ids, natural keys over
    the same values, do not change."""
    db["budget_points"].transform(rename={"q": "probes"})


def m009_exhibits(db: sqlite_utils.Database) -> None:
    """The exhibits the analysis chose, in the report's order: a probe, its kind (giveaway, fooled or category),
    the mean probability the judge gave the teacher's response (none for a category exhibit) and the rule that
    chose it. Derived from the responses and judgements like ``results``, and rewritten with them, so the report
    reads the choice and makes none."""
    db["exhibits"].create(
        {"audit_id": str, "rank": int, "probe_id": str, "kind": str, "p_teacher": float, "note": str},
        pk=("audit_id", "rank"),
        foreign_keys=[("audit_id", "audits", "id"), ("probe_id", "probes", "id")],
    )


def m010_cache(db: sqlite_utils.Database) -> None:
    """The table that held embeddings also held the teacher's log-likelihood of each response: it is the
    analysis' ``cache``, each value keyed by its text's hash (``key``) and by what made it (``source``: the
    embedder's name, or ``teacher-loglik:FINGERPRINT``). Every value is kept."""
    db.execute("alter table embeddings rename to cache")
    db["cache"].transform(rename={"text_hash": "key", "embedder": "source"})


def m011_sequential_rounds(db: sqlite_utils.Database) -> None:
    """The round at which each (probe, sample) joined a sequential audit's sequences: the round it was asked in,
    or a later one where a failed query was retried. Recorded when the round is evaluated, so a late answer joins
    the round it arrived in and the sequences recomputed from the database are those the collection stopped on."""
    db["sequential_rounds"].create(
        {"audit_id": str, "probe_id": str, "sample": int, "round": int},
        pk=("audit_id", "probe_id", "sample"),
        foreign_keys=[("audit_id", "audits", "id"), ("probe_id", "probes", "id")],
    )


STEPS = [m001_initial, m002_full_text_search, m003_probe_pairs, m004_top_logprobs, m005_sequence_points,
         m006_typed_results, m007_private_seed_hash, m008_budget_probes, m009_exhibits, m010_cache,
         m011_sequential_rounds]
SCHEMA_MIGRATIONS = [step.__name__ for step in STEPS]


def _migration_set() -> Migrations:
    """sqlite-utils' migration set over ``STEPS``: each step named after its function, applied with its record."""
    steps = Migrations("distill-audit")
    for step in STEPS:
        steps()(step)
    return steps


migrations = _migration_set()


def applied_steps(db: sqlite_utils.Database) -> list[str]:
    """The names of the schema steps this database records, in the order they were applied."""
    return [m.name for m in migrations.applied(db)]

"""An audit database written before the typed results row (schema m005) opens, migrates and states the same claims
(and the same budget points)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audit.report import render
from audit.report.signing import signed_claims
from audit.store import Store
from audit.vocabulary import MAIN_COMPARISON as MAIN

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "audit-m005.expected.json").read_text())


@pytest.fixture()
def old_db(tmp_path) -> Path:
    path = tmp_path / "audit.db"
    shutil.copyfile(DATA / "audit-m005.db", path)
    return path


def _stated(store: Store) -> list[dict]:
    """The signed claims, in the fields the old version's expectation records."""
    keep = EXPECTED["claims"][0].keys()
    return sorted(({k: c[k] for k in keep} for c in signed_claims(store)), key=lambda c: json.dumps(c, sort_keys=True))


def test_an_m005_database_migrates_and_states_the_same_claims(old_db):
    with Store.open(old_db) as store:
        assert "m006_typed_results" in [r["name"] for r in store.db["_sqlite_migrations"].rows]
        assert {"estimate", "control", "headline", "judge_mode"} <= set(store.db["results"].columns_dict)
        assert "advantage" not in store.db["results"].columns_dict
        assert store.db["results"].count == 97  # every row kept, none duplicated
        assert _stated(store) == sorted(EXPECTED["claims"], key=lambda c: json.dumps(c, sort_keys=True))


def test_the_migration_makes_the_headline_control_and_judge_mode_explicit(old_db):
    with Store.open(old_db) as store:
        assert not store.results(adversary="headline")
        head = store.results(headline=True, comparison="teacher-vs-suspect", split="all")[0]
        assert head.adversary in {"discriminator-single", "discriminator-paired", "judge", "judge-unfiltered",
                                  "teacher-likelihood"} and "adversary" not in head.details
        gaps = store.results(comparison="provenance")
        assert gaps and {g.control for g in gaps} == {"prose"} and {g.metric for g in gaps} == {"advantage-gap"}
        assert {r.judge_mode for r in store.results(adversary="judge-unfiltered")} == {"every-pair"}
        assert {r.control for r in store.results(comparison="teacher-vs-control:prose")} == {"prose"}


def test_an_m005_database_read_as_it_is_states_the_same_claims(old_db):
    """A received report's database copy is never migrated: it is read through the legacy row shape."""
    before = old_db.read_bytes()
    store = Store.open_readonly(old_db)
    try:
        assert "advantage" in store.db["results"].columns_dict
        assert _stated(store) == sorted(EXPECTED["claims"], key=lambda c: json.dumps(c, sort_keys=True))
    finally:
        store.close()
    assert old_db.read_bytes() == before


def test_the_report_reads_the_judge_summary_and_category_ranks_the_analysis_recorded(old_db):
    """Before, the report recomputed the flip rate by its own rule (a pair with two unreadable verdicts was no
    flip) and ranked categories by the lower bound first; now it reads what the analysis recorded."""
    with Store.open(old_db) as store:
        ctx = render.gather(store, keyid=None, tool_digest="")
        judge_row = next(c for c in ctx.found.adversaries if c.adversary == "judge" and c.comparison == MAIN)
        assert ctx.judge["flip_rate"] == judge_row.details["flip_rate"] == 0.625  # 15 of 24 pairs, 1 unreadable
        assert EXPECTED["judge"]["flip_rate"] == pytest.approx(14 / 24)  # the old report's own rule
        assert ctx.judge["pairs"] == EXPECTED["judge"]["pairs"] and ctx.judge["unreadable"] == 2
        assert ctx.judge["first_position_preference"] == EXPECTED["judge"]["first_rate"]
        assert ctx.category_adversary == EXPECTED["category_adversary"]
        ranks = [c.details["evidence_rank"] for c in ctx.category_claims]
        assert ranks == sorted(ranks) and sorted(c.category for c in ctx.category_claims) == sorted(
            EXPECTED["category_order"])


def test_the_suites_seed_hash_takes_the_glossary_name_and_keeps_its_value(old_db):
    import sqlite3

    with sqlite3.connect(old_db) as raw:
        before = dict(raw.execute("select hash, secret_seed_hash from suites").fetchall())
    with Store.open(old_db) as store:
        suites = store.suites()
    assert {s["hash"]: s["private_seed_hash"] for s in suites} == before
    assert not any("secret_seed_hash" in s for s in suites)


def _old_budget_points(path: Path) -> dict[str, tuple]:
    """The m005 file's budget points as stored, by id: their size under the old column ``q``."""
    import sqlite3

    with sqlite3.connect(path) as raw:
        rows = raw.execute("select id, comparison, adversary, strategy, q, n, advantage, ci_low, ci_high "
                           "from budget_points").fetchall()
    return {r[0]: r[1:] for r in rows}


def _budget_points(store: Store) -> dict[str, tuple]:
    keys = ("comparison", "adversary", "strategy", "probes", "n", "advantage", "ci_low", "ci_high")
    return {p["id"]: tuple(p[k] for k in keys) for p in store.budget_points()}


def test_a_budget_point_counts_probes_and_keeps_its_value_and_id(old_db):
    """m008: ``budget_points.q`` (probes, never queries) is ``budget_points.probes``, every value and id kept."""
    before = _old_budget_points(old_db)
    assert before
    with Store.open(old_db) as store:
        assert "m008_budget_probes" in [r["name"] for r in store.db["_sqlite_migrations"].rows]
        assert "probes" in store.db["budget_points"].columns_dict and "q" not in store.db["budget_points"].columns_dict
        assert _budget_points(store) == before


def test_an_old_databases_budget_points_read_as_it_is_count_probes(old_db):
    """A received report's copy keeps its column ``q``; its budget points read the same as after the migration."""
    before = old_db.read_bytes()
    store = Store.open_readonly(old_db)
    try:
        assert "q" in store.db["budget_points"].columns_dict
        points = store.budget_points()
        assert _budget_points(store) == _old_budget_points(old_db) and all("q" not in p for p in points)
    finally:
        store.close()
    assert old_db.read_bytes() == before


def test_the_cache_keeps_every_embedding_and_log_likelihood_under_its_source(old_db):
    import sqlite3

    with sqlite3.connect(old_db) as db:
        db.execute("insert into embeddings values ('h1', 'minilm', 2, ?)", [bytes(8)])
        db.execute("insert into embeddings values ('h1', 'teacher-loglik:abc', 2, ?)", [bytes(8)])
    with Store.open(old_db) as store:
        assert "embeddings" not in store.db.table_names()
        assert set(store.db["cache"].pks) == {"key", "source"}
        assert store.cached("minilm", ["h1"]) == store.cached("teacher-loglik:abc", ["h1"]) == {"h1": [0.0, 0.0]}


@pytest.mark.parametrize("read_only", [True, False])
def test_a_database_analysed_before_exhibits_were_recorded_shows_none_and_says_why(old_db, read_only):
    """The report never chooses exhibits itself: an analysis that recorded none (here one from before m009, read
    as it is or migrated) shows none, and one note says to rerun the analysis."""
    store = Store.open_readonly(old_db) if read_only else Store.open(old_db)
    try:
        assert store.judgements(MAIN) and store.exhibits() == []
        ctx = render.gather(store, keyid=None, tool_digest="")
    finally:
        store.close()
    assert ctx.exhibits == [] and ctx.exhibit_note == render.NO_EXHIBITS
    assert "rerun `distill-audit analyze`" in ctx.exhibit_note


@pytest.mark.parametrize("hostile", [{"kind": "<script>"}, {"p_teacher": "abc"}, {"p_teacher": 7.0}])
def test_a_malformed_exhibits_row_is_one_line_not_a_traceback(old_db, hostile):
    from audit.errors import StoreError

    with Store.open(old_db) as store:
        probe = store.judgements(MAIN)[0]["probe_id"]
        store.db["exhibits"].insert({"audit_id": store.audit_id, "rank": 1, "probe_id": probe, "kind": "giveaway",
                                     "p_teacher": 0.9, "note": "chosen", **hostile})
    with Store.open_readonly(old_db) as store:
        with pytest.raises(StoreError, match="a malformed exhibits row"):
            render.gather(store, keyid=None, tool_digest="")

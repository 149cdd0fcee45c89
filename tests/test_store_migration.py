"""An audit database written before the typed results row (schema m005) opens, migrates and states the same claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audit.report.signing import signed_claims
from audit.store import Store

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
        audit_id = store.require_audit()["id"]
        assert not store.results(audit_id, adversary="headline")
        head = store.results(audit_id, headline=True, comparison="teacher-vs-suspect", split="all")[0]
        assert head.adversary in {"discriminator-single", "discriminator-paired", "judge", "judge-unfiltered",
                                  "teacher-likelihood"} and "adversary" not in head.details
        gaps = store.results(audit_id, comparison="provenance")
        assert gaps and {g.control for g in gaps} == {"prose"} and {g.metric for g in gaps} == {"advantage-gap"}
        assert {r.judge_mode for r in store.results(audit_id, adversary="judge-unfiltered")} == {"every-pair"}
        assert {r.control for r in store.results(audit_id, comparison="teacher-vs-control:prose")} == {"prose"}


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

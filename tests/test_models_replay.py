"""Replay backend: the answers an earlier audit database recorded, looked up by probe text and sample."""

from __future__ import annotations

import hashlib

import pytest

from audit.errors import ScoringUnsupported, SpecError
from audit.models import GenParams, load_model
from audit.probes.types import Probe, Suite
from audit.store import Store


@pytest.fixture
def audit_db(tmp_path):
    """An audit whose teacher answered two probes twice each (sample 0 and 1) and failed one."""
    path = tmp_path / "audit.db"
    probes = [Probe(id=f"p{i}", category="c", subcategory="s", text=f"probe {i}") for i in range(3)]
    with Store.open(path) as store:
        store.add_suite(Suite(name="t", version="1", hash="h" * 64, probes=probes))
        store.ensure_audit({"teacher": "x"}, suite_name="t", suite_version="1", suite_hash="h" * 64, seed=0)
        store.select_probes([p.id for p in probes])
        model_id = store.add_model(name="teacher", role="teacher", spec="hf:/somewhere",
                                   description={"backend": "transformers", "fingerprint": "f" * 64, "param_count": 42})
        answers = [{"probe_id": f"p{i}", "sample": s, "params": {}, "text": f"answer {i}.{s}", "tokens_in": 3,
                    "tokens_out": 2, "finish_reason": "stop", "latency_s": 0.1, "device_s": 0.0,
                    "logprobs": {"tokens": ["a", "b"], "logprobs": [-0.5, -1.0]}}
                   for i in range(2) for s in range(2)]
        answers.append({"probe_id": "p2", "sample": 0, "params": {}, "error": "boom"})
        store.record_responses(model_id, answers)
    return path


def test_replays_recorded_answers_by_text_and_sample(audit_db):
    model = load_model(f"replay:{audit_db}#teacher")
    gens = model.generate(["probe 1", "probe 0", "probe 1"], GenParams(), samples=[0, 1, 1])
    assert [g.text for g in gens] == ["answer 1.0", "answer 0.1", "answer 1.1"]
    assert (gens[0].tokens_in, gens[0].tokens_out, gens[0].logprobs, gens[0].tokens) == (3, 2, [-0.5, -1.0], ["a", "b"])


def test_repeats_without_sample_indices_are_successive_samples(audit_db):
    model = load_model(f"replay:{audit_db}#teacher")
    assert [g.text for g in model.generate(["probe 0", "probe 0"], GenParams())] == ["answer 0.0", "answer 0.1"]


def test_unrecorded_prompts_are_error_generations(audit_db):
    model = load_model(f"replay:{audit_db}#teacher")
    never, failed, third = model.generate(["never asked", "probe 2", "probe 0"], GenParams(), samples=[0, 0, 2])
    assert all(g.error and "has no response of teacher" in g.error for g in (never, failed, third))


def test_describe_fingerprint_is_db_sha_and_role(audit_db):
    expected = hashlib.sha256(audit_db.read_bytes()).hexdigest()
    d = load_model(f"replay:{audit_db}#teacher").describe()
    assert (d.backend, d.fingerprint) == ("replay", f"sha256:{expected}#teacher")
    assert (d.details["recorded_spec"], d.details["recorded_fingerprint"], d.param_count) == ("hf:/somewhere", "f" * 64, 42)
    with pytest.raises(ScoringUnsupported):
        load_model(f"replay:{audit_db}#teacher").score("a", ["b"])


def test_bad_replay_specs(audit_db, tmp_path):
    with pytest.raises(SpecError, match="has no model 'suspect' \\(it has: teacher\\)"):
        load_model(f"replay:{audit_db}#suspect")
    with pytest.raises(SpecError, match="does not exist"):
        load_model(f"replay:{tmp_path}/none.db#teacher")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite" * 100)
    with pytest.raises(SpecError, match="junk.db"):
        load_model(f"replay:{junk}#teacher")


def test_replay_refuses_a_file_that_is_not_an_audit_database_and_leaves_it_unchanged(tmp_path):
    from test_store import sqlite_file_of_another_program

    other = tmp_path / "other.sqlite"
    before = sqlite_file_of_another_program(other)
    with pytest.raises(SpecError) as refused:
        load_model(f"replay:{other}#teacher")
    assert "\n" not in str(refused.value) and "not an audit database" in str(refused.value)
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_replay_reads_an_older_schema_as_it_is_never_migrating_it(audit_db):
    import sqlite3

    conn = sqlite3.connect(audit_db, isolation_level=None)  # back to the schema before m003 (no probes.pair_of)
    conn.execute("delete from _sqlite_migrations where name = 'm003_probe_pairs'")
    conn.execute("alter table probes drop column pair_of")
    conn.execute("pragma journal_mode=delete")
    conn.close()
    before = audit_db.read_bytes()
    assert load_model(f"replay:{audit_db}#teacher").generate(["probe 0"], GenParams())[0].text == "answer 0.0"
    assert audit_db.read_bytes() == before


def test_replay_reads_a_signed_report_database_without_changing_it_even_beside_a_journal(tmp_path):
    from audit.report import render_report
    from audit.report.signing import keygen
    from helpers_report import build_report_db

    build_report_db(tmp_path / "audit.db", n_probes=8, private=False)
    keygen(tmp_path / "key")
    render_report(tmp_path / "audit.db", tmp_path / "report", sign_key=tmp_path / "key", pdf=False)
    copy = tmp_path / "report" / "audit.db"
    # A "journal" beside the signed copy: an ordinary read-only open would try to roll it back and fail.
    (tmp_path / "report" / "audit.db-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + b"\0" * 600)
    before, names = hashlib.sha256(copy.read_bytes()).hexdigest(), sorted(p.name for p in copy.parent.iterdir())
    with Store.open_readonly(copy) as store:
        prompt = store.selected_probes()[0]["text"]
    replayed = load_model(f"replay:{copy}#teacher").generate([prompt], GenParams())[0]
    assert replayed.error is None and replayed.text.startswith("Certainly!")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in copy.parent.iterdir()) == names


def test_replay_gives_back_the_recorded_top_k_distributions(tmp_path):
    from audit.topk import TopK

    path = tmp_path / "audit.db"
    top = TopK(tokens=[[" A", " B"]], logprobs=[[-0.2, -1.8]], ids=[[4, 5]], chosen_tokens=[" A"], chosen_ids=[4])
    with Store.open(path) as store:
        store.add_suite(Suite(name="t", version="1", hash="h" * 64, probes=[Probe(id="p0", category="c",
                                                                                  subcategory="s", text="probe 0")]))
        store.ensure_audit({"teacher": "x"}, suite_name="t", suite_version="1", suite_hash="h" * 64, seed=0)
        store.select_probes(["p0"])
        model_id = store.add_model(name="teacher", role="teacher", spec="hf:/x", description={})
        store.record_responses(model_id, [{"probe_id": "p0", "sample": 0, "params": {}, "text": " A",
                                         "top_logprobs": top.pack()}])
    [gen] = load_model(f"replay:{path}#teacher").generate(["probe 0"], GenParams())
    assert gen.top_k.ids == [[4, 5]] and gen.top_logprobs == [{" A": pytest.approx(-0.2), " B": pytest.approx(-1.8)}]

"""The audit database is a contract: its schema, idempotent writes, and the errors it gives."""

import sqlite3

import pytest

from audit.errors import StoreError
from audit.probes.types import Probe, Suite
from audit.store import Store, content_hash, merkle_root, transcript_record

EXPECTED_COLUMNS = {
    "audits": {"id": str, "created_at": str, "tool_version": str, "status": str, "config_json": str,
               "suite_name": str, "suite_version": str, "suite_hash": str, "private_seed_hash": str, "seed": int},
    "models": {"id": str, "audit_id": str, "name": str, "role": str, "spec": str, "backend": str,
               "fingerprint": str, "param_count": int, "describe_json": str},
    "suites": {"hash": str, "name": str, "version": str, "n_probes": int, "source": str, "private_seed_hash": str},
    "probes": {"id": str, "suite_hash": str, "category": str, "subcategory": str, "text": str,
               "reference_json": str, "split": str, "pair_of": str},
    "selections": {"audit_id": str, "probe_id": str, "purpose": str, "rank": int},
    "queries": {"id": str, "audit_id": str, "model_id": str, "probe_id": str, "sample": int, "purpose": str,
                "params_json": str, "status": str, "error": str, "attempts": int, "started_at": str,
                "finished_at": str, "latency_s": float},
    "responses": {"query_id": str, "audit_id": str, "model_id": str, "probe_id": str, "sample": int, "text": str,
                  "tokens_in": int, "tokens_out": int, "finish_reason": str, "latency_s": float,
                  "device_s": float, "logprobs_json": str, "request_json": str, "raw_json": str,
                  "content_hash": str, "top_logprobs": bytes},
    "judgements": {"id": str, "audit_id": str, "judge_id": str, "comparison": str, "probe_id": str, "sample": int,
                   "order": str, "first_query_id": str, "second_query_id": str, "verdict": str, "correct": int,
                   "p_first": float, "p_second": float, "method": str, "raw_output": str, "latency_s": float,
                   "tokens_in": int, "tokens_out": int, "content_hash": str},
    "results": {"id": str, "audit_id": str, "adversary": str, "comparison": str, "control": str, "category": str,
                "split": str, "metric": str, "headline": int, "judge_mode": str, "n": int, "estimate": float,
                "ci_low": float, "ci_high": float, "confidence": float, "ci_method": str, "p_value": float,
                "p_holm": float, "p_bh": float, "q": int, "t_json": str, "details_json": str, "created_at": str},
    "budget_points": {"id": str, "audit_id": str, "comparison": str, "adversary": str, "strategy": str,
                      "probes": int, "n": int, "advantage": float, "ci_low": float, "ci_high": float, "confidence": float,
                      "details_json": str},
    "sequence_points": {"id": str, "audit_id": str, "comparison": str, "adversary": str, "round": int, "n": int,
                        "q": int, "estimate": float, "ci_low": float, "ci_high": float, "confidence": float,
                        "p_value": float, "details_json": str},
    "costs": {"id": str, "audit_id": str, "subject": str, "stage": str, "queries": int, "tokens_in": int,
              "tokens_out": int, "wall_s": float, "device_s": float, "flops": float, "details_json": str},
    "artifacts": {"id": str, "audit_id": str, "path": str, "kind": str, "sha256": str, "bytes": int,
                  "created_at": str},
    "cache": {"key": str, "source": str, "dim": int, "vector": bytes},
    "distill_runs": {"id": str, "audit_id": str, "teacher_id": str, "student_spec": str, "adapter_dir": str,
                     "config_json": str, "status": str, "created_at": str, "finished_at": str},
    "distill_log": {"run_id": str, "step": int, "epoch": float, "loss": float, "learning_rate": float,
                    "tokens": int, "tokens_per_s": float, "elapsed_s": float},
}


def make_suite(n=4):
    probes = [Probe(id=f"p{i}", category="style-format" if i % 2 else "code", subcategory="x", text=f"prompt {i}")
              for i in range(n)]
    return Suite(name="t", version="1", hash="h" * 64, probes=probes)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "audit.db")
    yield s
    s.close()


@pytest.fixture
def audited(store):
    """The store with its audit created and four evaluation probes selected: what its methods read and write."""
    store.ensure_audit({"teacher": "t", "suspect": "s"}, suite_name="t", suite_version="1", suite_hash="h" * 64,
                       seed=0)
    store.add_suite(make_suite())
    store.select_probes(["p0", "p1", "p2", "p3"])


def answer(probe_id, text="hi", sample=0):
    return {"probe_id": probe_id, "sample": sample, "params": {"temperature": 0}, "text": text, "tokens_in": 3,
            "tokens_out": 2, "finish_reason": "stop", "latency_s": 0.5, "device_s": 0.0}


def test_schema_is_the_contract(store):
    for table, columns in EXPECTED_COLUMNS.items():
        assert store.db[table].columns_dict == columns, table


def test_wal_mode_and_fts(store):
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert "responses_fts" in store.db.table_names()
    assert "probes_fts" in store.db.table_names()


def test_reopening_applies_no_migration_twice(tmp_path):
    Store.open(tmp_path / "a.db").close()
    s = Store.open(tmp_path / "a.db")
    names = [r["name"] for r in s.db["_sqlite_migrations"].rows]
    assert len(names) == len(set(names))


def test_answers_are_idempotent_by_natural_key(store, audited):
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={"backend": "x"})
    store.record_responses(mid, [answer("p0"), answer("p1")])
    store.record_responses(mid, [answer("p0"), answer("p1")])
    assert store.db["queries"].count == 2
    assert store.db["responses"].count == 2
    assert store.completed_queries(mid) == {("p0", 0), ("p1", 0)}


def test_a_failed_query_is_recorded_then_retried(store, audited):
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
    store.record_responses(mid, [{"probe_id": "p0", "sample": 0, "error": "HTTP 500"}])
    assert store.completed_queries(mid) == set()
    assert store.query_errors()[0]["error"] == "HTTP 500"
    store.record_responses(mid, [answer("p0")])
    row = next(iter(store.db["queries"].rows))
    assert (row["status"], row["attempts"]) == ("ok", 2)


def test_model_costs_are_derived_from_queries(store, audited):
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={"param_count": 10})
    store.record_responses(mid, [answer("p0"), answer("p1")])
    cost = store.model_costs()[0]
    assert (cost["queries"], cost["tokens_in"], cost["tokens_out"]) == (2, 6, 4)
    assert cost["flops"] == 2 * 10 * 10


def test_added_costs_sum_over_runs_and_their_flops_cover_every_token(store, audited):
    """Cached work (embeddings, teacher scores) is paid once: each run adds what it computed to one row."""
    assert store.cost("embedder", "analyze-embed") is None
    for queries, tokens, wall in ((3, 30, 1.5), (2, 20, 0.5)):
        store.add_cost(subject="embedder", stage="analyze-embed", queries=queries, tokens_in=tokens,
                       wall_s=wall, flops_per_token=4.0, details={"embedder": "e"})
    row = store.cost("embedder", "analyze-embed")
    assert (row["queries"], row["tokens_in"], row["wall_s"], row["flops"]) == (5, 50, 2.0, 200.0)
    assert row["details"] == {"embedder": "e"} and store.costs() == [row]
    store.add_cost(subject="teacher", stage="analyze-likelihood", queries=1, tokens_in=7, wall_s=0.1,
                   flops_per_token=None, details={})
    assert store.cost("teacher", "analyze-likelihood")["flops"] is None


def test_training_answers_are_not_counted_in_an_audit_s_q_and_t(store, audited):
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
    store.add_suite(make_suite(6))
    store.select_probes(["p5"], purpose="train")
    store.record_responses(mid, [answer("p0")])
    store.record_responses(mid, [answer("p5"), answer("p5", sample=1)], purpose="train")
    cost = store.model_costs()[0]
    assert (cost["queries"], cost["answered"], cost["tokens_in"]) == (1, 1, 3)


def test_training_probes_are_never_evaluation_probes(store, audited):
    with pytest.raises(StoreError, match="never evaluates on training probes"):
        store.select_probes(["p0"], purpose="train")


def test_a_different_teacher_needs_a_new_database(store, audited):
    with pytest.raises(StoreError, match="use a new --db"):
        store.ensure_audit({"teacher": "other", "suspect": "s"}, suite_name="t", suite_version="1",
                           suite_hash="h", seed=0)


def test_a_store_knows_its_one_audit_and_says_so_when_it_holds_none(tmp_path):
    with Store.open(tmp_path / "audit.db") as store:
        with pytest.raises(StoreError, match=r"holds no audit yet \(run `distill-audit collect` first\)"):
            store.responses()
        created = store.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h", seed=0)
        assert store.audit_id == created == store.audit()["id"]
    with Store.open(tmp_path / "audit.db") as store, Store.open_readonly(tmp_path / "audit.db") as copy:
        assert store.audit_id == copy.audit_id == created


def test_a_database_from_a_newer_schema_is_refused(tmp_path):
    s = Store.open(tmp_path / "a.db")
    s.db["_sqlite_migrations"].insert({"migration_set": "distill-audit", "name": "m999_future", "applied_at": "x"})
    s.close()
    with pytest.raises(StoreError, match="newer distill-audit"):
        Store.open(tmp_path / "a.db")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable audit database"):
        Store.open(path)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nowhere" / "a.db")


def test_a_read_only_database_gives_one_clear_error(tmp_path):
    path = tmp_path / "a.db"
    Store.open(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    import sqlite_utils

    s = Store(sqlite_utils.Database(conn), path)
    with pytest.raises(StoreError, match="cannot write"):
        s.ensure_audit({}, suite_name="t", suite_version="1", suite_hash="h", seed=0)


def test_content_hash_catches_a_changed_transcript(store, audited):
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
    store.record_responses(mid, [answer("p0"), answer("p1")])
    assert store.verify_transcripts() == []
    root = merkle_root(store.transcript_hashes())
    store.db.execute("update responses set text = 'forged' where probe_id = 'p1'")
    assert len(store.verify_transcripts()) == 1
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert root != merkle_root(["00" * 32])


def test_a_top_k_blob_is_stored_per_response_and_covered_by_its_content_hash(store, audited):
    from audit.topk import TopK

    mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
    top = TopK(tokens=[["a", "b"], ["c"]], logprobs=[[-0.1, -2.5], [-0.01]], ids=[[5, 7], [9]],
               chosen_tokens=["a", "c"], chosen_ids=[5, 9])
    plain = answer("p1")
    store.record_responses(mid, [{**answer("p0"), "top_logprobs": top.pack()}, plain])
    blobs = store.top_distributions(mid)
    assert list(blobs) == [store.query_id(mid, "p0", 0)]
    assert TopK.unpack(blobs[store.query_id(mid, "p0", 0)]).ids == [[5, 7], [9]]
    plain_hash = store.db.execute("select content_hash from responses where probe_id = 'p1'").fetchone()[0]
    assert plain_hash == content_hash(transcript_record(mid, "p1", 0, "eval", plain["params"], "hi", None))
    assert store.verify_transcripts() == []
    forged = TopK(tokens=[["a", "b"], ["c"]], logprobs=[[-0.1, -0.2], [-0.01]], ids=[[5, 7], [9]]).pack()
    store.db.execute("update responses set top_logprobs = ? where probe_id = 'p0'", [forged])
    assert store.verify_transcripts() == [store.query_id(mid, "p0", 0)]


def test_a_response_without_a_top_k_blob_keeps_the_hash_earlier_databases_carry():
    """Pinned: the record of a response with no top-k blob is the one hashed before m004, so old files verify."""
    record = transcript_record("a:teacher", "p1", 0, "eval", {"temperature": 0}, "hi", None)
    assert content_hash(record) == "dcc634b559498f284042dbc3e85ae4a3187d5ad40901ba233afca8d6696d5c1e"


def test_content_hash_never_fails_on_a_string_and_keeps_the_hash_of_valid_text():
    import hashlib

    assert content_hash("caf\u00e9 \U0001F600") == hashlib.sha256('"caf\u00e9 \U0001F600"'.encode()).hexdigest()
    lone = content_hash({"text": "a\ud800b"})
    assert len(lone) == 64 and lone not in (content_hash({"text": "a\ufffdb"}), content_hash({"text": "a\udfffb"}))


def test_merkle_root_depends_on_every_leaf():
    leaves = [content_hash(i) for i in range(5)]
    root = merkle_root(leaves)
    for i in range(5):
        changed = list(leaves)
        changed[i] = content_hash("x")
        assert merkle_root(changed) != root


def test_the_cache_round_trips_by_source(store):
    store.cache("minilm", {"h1": [0.5, -1.0, 2.0]})
    store.cache("teacher-loglik:abc", {"h1": [-3.5, 7.0]})
    assert store.cached("minilm", ["h1", "h2"]) == {"h1": [0.5, -1.0, 2.0]}
    assert store.cached("teacher-loglik:abc", ["h1"]) == {"h1": [-3.5, 7.0]}


def damage_table(path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage, as a bad disk sector would (the file stays SQLite)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode=delete")  # every page in the main file, none in a WAL beside it
    page_size = conn.execute("pragma page_size").fetchone()[0]
    root = conn.execute("select rootpage from sqlite_master where name = ?", [table]).fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def sqlite_file_of_another_program(path):
    conn = sqlite3.connect(path)
    conn.execute("create table invoices (id integer primary key, total real)")
    conn.execute("insert into invoices (total) values (12.5)")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_a_damaged_page_is_one_line_naming_the_file_on_read(tmp_path):
    path = tmp_path / "audit.db"
    with Store.open(path) as s:
        s.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h", seed=0)
        s.add_suite(make_suite(40))
        mid = s.add_model(name="teacher", role="teacher", spec="t", description={})
        s.record_responses(mid, [answer(f"p{i}", text="words " * 200) for i in range(40)])
    damage_table(path, "responses")
    with Store.open(path) as s:  # the damage is in a data page: found only when a read reaches it
        with pytest.raises(StoreError, match=r"audit\.db: the database is damaged \(database disk image is "
                                             r"malformed\); restore it from a copy"):
            s.responses()


def test_opening_refuses_an_sqlite_file_of_another_program_and_writes_nothing_into_it(tmp_path):
    path = tmp_path / "invoices.sqlite"
    before = sqlite_file_of_another_program(path)
    for open_it in (Store.open, Store.open_readonly):
        with pytest.raises(StoreError, match="invoices.sqlite: an SQLite file, but not an audit database"):
            open_it(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["invoices.sqlite"]


def test_reading_only_never_changes_the_file_nor_leaves_companions(tmp_path):
    path = tmp_path / "audit.db"
    with Store.open(path) as s:
        s.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h", seed=0)
    before = path.read_bytes()
    with Store.open_readonly(path) as s:
        assert s.audit()["suite_name"] == "t"
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["audit.db"]
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="not an audit database"):
        Store.open_readonly(empty)


def test_set_aside_keeps_every_earlier_audit_under_the_first_free_name(tmp_path):
    from audit.store import set_aside

    path = tmp_path / "audit.db"
    for seed in (0, 1):
        s = Store.open(path)  # left open: set_aside must still carry every committed row
        s.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h", seed=seed)
        assert set_aside(path) == tmp_path / f"audit.db.{seed + 1}"
        s.close()
    assert not path.exists()
    for seed in (0, 1):
        with Store.open(tmp_path / f"audit.db.{seed + 1}", create=False) as kept:
            assert kept.audit()["seed"] == seed


def test_a_database_read_as_it_is_from_before_top_logprobs_still_verifies(tmp_path):
    path = tmp_path / "old.db"
    with Store.open(path) as store:
        store.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h" * 64, seed=0)
        store.add_suite(make_suite())
        mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
        store.record_responses(mid, [answer("p0")])
        store.db.execute("alter table responses drop column top_logprobs")
        store.db.execute("delete from _sqlite_migrations where name = 'm004_top_logprobs'")
    with Store.open_readonly(path) as old:
        assert old.verify_transcripts() == [] and old.top_distributions(mid) == {}

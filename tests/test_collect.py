"""Collection asks each model only what is missing, records failures, and honours its budgets."""

import json

import pytest

from audit.collect import CollectOptions, check_resumable, collect_role, control_name, model_names, query_seed, summarize
from audit.errors import AuditError
from audit.models.base import NOTES_KEY, Description, GenParams, Generation
from audit.probes.types import Probe, Suite
from audit.store import Store
from test_models_openai import KEY, _model, _ok_body, scripted, with_key  # noqa: F401  (the loopback endpoint)


class FakeModel:
    """Answers with the prompt reversed; fails on prompts containing FAIL; remembers its batches."""

    spec = "fake"

    def __init__(self, fail_on="FAIL"):
        self.batches = []
        self.fail_on = fail_on

    def generate(self, prompts, params, seeds=None, samples=None):
        self.batches.append(list(prompts))
        self.samples = samples
        out = []
        for p in prompts:
            if self.fail_on and self.fail_on in p:
                out.append(Generation(error="HTTP 500 after 5 attempts", finish_reason="error"))
            else:
                out.append(Generation(text=p[::-1], tokens_in=len(p), tokens_out=len(p), finish_reason="stop",
                                      latency_s=0.01))
        return out

    def score(self, prompt, continuations):
        raise NotImplementedError

    def describe(self):
        return Description(spec="fake", backend="fake", fingerprint="0" * 64)


def probes(n, fail_at=()):
    return [Probe(id=f"p{i:03d}", category="code", subcategory="x",
                  text=("FAIL " if i in fail_at else "") + "x" * (i % 7 + 1) + f" prompt {i}") for i in range(n)]


@pytest.fixture
def setup(tmp_path):
    store = Store.open(tmp_path / "audit.db")
    ps = probes(20, fail_at={3})
    store.ensure_audit({"teacher": "fake", "suspect": "fake"}, suite_name="t", suite_version="1",
                       suite_hash="h", seed=0)
    store.add_suite(Suite(name="t", version="1", hash="h", probes=ps))
    store.select_probes([p.id for p in ps])
    mid = store.add_model(name="teacher", role="teacher", spec="fake", description={})
    return store, mid, ps


def test_every_probe_and_sample_is_recorded_once(setup):
    store, mid, ps = setup
    model = FakeModel(fail_on=None)
    tally = collect_role(store, mid, "teacher", model, ps, GenParams(batch_size=4), samples=2)
    assert (tally.answered, tally.errors, tally.pending) == (40, 0, 0)
    assert store.db["responses"].count == 40
    again = collect_role(store, mid, "teacher", model, ps, GenParams(batch_size=4), samples=2)
    assert (again.asked, again.already) == (0, 40)
    assert store.db["queries"].count == 40


def test_batches_are_sorted_by_length_and_batch_size_one_is_one_prompt(setup):
    store, mid, ps = setup
    model = FakeModel(fail_on=None)
    collect_role(store, mid, "teacher", model, ps, GenParams(batch_size=1))
    assert all(len(b) == 1 for b in model.batches) and len(model.batches) == 20
    lengths = [len(b[0]) for b in model.batches]
    assert lengths == sorted(lengths)


def test_a_failed_query_is_an_error_row_and_is_retried_on_resume(setup):
    store, mid, ps = setup
    tally = collect_role(store, mid, "teacher", FakeModel(), ps, GenParams(batch_size=8))
    assert (tally.answered, tally.errors) == (19, 1)
    assert store.query_errors()[0]["error"].startswith("HTTP 500")
    retry = collect_role(store, mid, "teacher", FakeModel(fail_on=None), ps, GenParams(batch_size=8))
    assert (retry.asked, retry.answered) == (1, 1)
    assert store.query_errors() == []
    assert store.db["responses"].count == 20


def test_the_time_budget_stops_between_batches_and_keeps_the_work(setup):
    store, mid, ps = setup
    tally = collect_role(store, mid, "teacher", FakeModel(fail_on=None), ps, GenParams(batch_size=4),
                         deadline=0.0)
    assert tally.stopped and store.db["responses"].count == 0
    calls = []
    collect_role(store, mid, "teacher", FakeModel(fail_on=None), ps, GenParams(batch_size=4),
                 on_batch=calls.append)
    assert sum(calls) == 20


def test_each_query_records_the_seed_of_its_audit_seed_model_probe_and_sample(setup):
    store, mid, ps = setup
    collect_role(store, mid, "teacher", FakeModel(fail_on=None), ps[:3], GenParams(seed=7, temperature=0.8),
                 samples=2)
    recorded = {(r["probe_id"], r["sample"]): json.loads(r["params_json"])["seed"] for r in store.db["queries"].rows}
    assert recorded == {(p.id, s): query_seed(7, "teacher", p.id, s) for p in ps[:3] for s in range(2)}
    assert len(set(recorded.values())) == 6


def test_query_seeds_differ_by_audit_seed_model_probe_and_sample_and_are_fixed():
    seeds = {query_seed(0, "teacher", "p000", 0), query_seed(1, "teacher", "p000", 0),
             query_seed(0, "suspect", "p000", 0), query_seed(0, "teacher", "p001", 0),
             query_seed(0, "teacher", "p000", 1), query_seed(0, "teacher|p000", "", 0)}
    assert len(seeds) == 6 and all(0 <= s < 2**63 for s in seeds)
    assert query_seed(0, "teacher", "p000", 0) == 2946330497262320807  # the documented derivation: never change it


# ---- sampling through the real transformers path ----------------------------------------------


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    from audit.models import load_model

    return load_model(f"hf:{tiny_llama_dir}", device="cpu")


def test_teacher_and_suspect_of_one_spec_draw_their_own_samples(setup, llama):
    """Sampled at 0.8, the same model as teacher and as suspect agreed on 16 of 16 probes when every role drew
    from one stream of random numbers."""
    store, teacher_id, ps = setup
    suspect_id = store.add_model(name="suspect", role="suspect", spec="same", description={})
    params = GenParams(max_new_tokens=8, temperature=0.8, seed=3, batch_size=8)
    for name, model_id in (("teacher", teacher_id), ("suspect", suspect_id)):
        collect_role(store, model_id, name, llama, ps[:16], params)
    teacher, suspect = ({r["probe_id"]: r["text"] for r in store.responses(m)} for m in (teacher_id, suspect_id))
    assert len(teacher) == len(suspect) == 16
    assert sum(teacher[probe] == suspect[probe] for probe in teacher) <= 1


def test_a_recorded_sample_is_reproduced_alone_from_its_recorded_params(setup, llama):
    store, mid, ps = setup
    collect_role(store, mid, "teacher", llama, ps[:6], GenParams(max_new_tokens=8, temperature=1.0,
                                                                  batch_size=4), samples=2)
    params = {q["id"]: GenParams(**json.loads(q["params_json"])) for q in store.db["queries"].rows}
    rows = store.responses(mid)
    assert len(rows) == 12 and len({r["text"] for r in rows}) > 6
    for row in rows:
        [again] = llama.generate([row["probe_text"]], params[row["query_id"]])
        assert again.text == row["text"]


def test_controls_get_short_unique_names():
    named = model_names("smollm2-135m-instruct", "peft:gemma3-270m+/x/adapter",
                        ("gemma3-270m", "gemma3-270m", "openai:http://h:1/v1#llama-3"))
    assert [n for n, _, _ in named] == ["teacher", "suspect", "control:gemma3-270m", "control:gemma3-270m-2",
                                        "control:llama-3"]
    assert control_name("hf:/models/qwen-0.5b/") == "qwen-0.5b"
    assert control_name("replay:/audits/a.db#control:gemma3-270m") == "gemma3-270m"


def test_training_probes_are_left_out_before_sampling():
    from audit.collect import CollectOptions, choose_probes

    options = CollectOptions(db_path="unused.db", teacher="t", suspect="s", queries=60)
    _, first, _ = choose_probes(options)
    training = {p.id for p in first}
    _, second, _ = choose_probes(options, training)
    assert len(second) == 60 and not training & {p.id for p in second}


def test_the_collection_environment_names_hardware_and_software():
    from audit.collect import collection_environment

    env = collection_environment()
    assert env["hardware"]["cpus"] >= 1 and env["hardware"]["memory_gib"] > 0
    assert env["software"]["distill-audit"] and env["software"]["python"]


# ---- answers from a hostile endpoint, as recorded ---------------------------------------------


def collect_from(scripted, setup, replies, params=GenParams(), n=1):
    """Collect ``n`` probes from the loopback endpoint answering ``replies``: the responses recorded, by probe."""
    store, mid, ps = setup
    url, script, _ = scripted
    script += replies
    collect_role(store, mid, "teacher", _model(url, concurrency=1), ps[:n], params)
    return {r["probe_id"]: r for r in store.db["responses"].rows}


def test_key_reflected_by_the_endpoint_is_never_stored(scripted, setup, with_key, tmp_path):
    rows = collect_from(scripted, setup, [(200, {}, _ok_body(f"the key is {KEY}")),
                                          (400, {}, f"upstream rejected {KEY}".encode())], n=2)
    [row] = rows.values()
    assert row["text"] == "the key is [redacted]"
    assert json.loads(row["raw_json"])[NOTES_KEY] == {"key_redacted": True}
    store = setup[0]
    assert "upstream rejected [redacted]" in store.query_errors()[0]["error"]
    store.close()
    assert [f.name for f in tmp_path.iterdir() if KEY.encode() in f.read_bytes()] == []


def test_lone_surrogate_answer_is_recorded_with_replacement(scripted, setup):
    store, _, _ = setup
    lone = b'{"choices": [{"message": {"content": "half \\ud800 a pair"}, "finish_reason": "stop"}]}'
    [row] = collect_from(scripted, setup, [(200, {}, lone)]).values()
    assert row["text"] == "half \ufffd a pair"
    assert json.loads(row["raw_json"])[NOTES_KEY] == {"invalid_text_replaced": True}
    assert store.verify_transcripts() == []


def test_oversized_answer_is_cut_and_flagged(scripted, setup):
    store, mid, ps = setup
    rows = collect_from(scripted, setup, [(200, {}, _ok_body("x" * 5_000_000)), (200, {}, _ok_body("short"))],
                        params=GenParams(max_new_tokens=16), n=2)
    cut, short = sorted(rows.values(), key=lambda r: len(r["text"]), reverse=True)
    assert (len(cut["text"]), cut["finish_reason"]) == (4096, "length")
    notes = json.loads(cut["raw_json"])[NOTES_KEY]
    assert notes["truncated_by_auditor"] == {"chars": 5_000_000, "kept": 4096}
    assert notes["raw_dropped_by_auditor"]["chars"] > 5_000_000 and len(cut["raw_json"]) < 200
    assert short["text"] == "short" and NOTES_KEY not in json.loads(short["raw_json"])


def test_every_backend_s_answers_are_bounded_where_they_are_recorded(setup):
    store, mid, ps = setup

    class Verbose(FakeModel):
        def generate(self, prompts, params, seeds=None, samples=None):
            return [Generation(text="y" * 10_000, finish_reason="stop") for _ in prompts]

    collect_role(store, mid, "teacher", Verbose(), ps[:1], GenParams(max_new_tokens=100))
    [row] = store.db["responses"].rows
    assert len(row["text"]) == 6400 and json.loads(row["raw_json"])[NOTES_KEY]["truncated_by_auditor"]["kept"] == 6400


def test_an_endpoint_cannot_write_the_auditor_s_notes(scripted, setup):
    forged = json.dumps({"choices": [{"message": {"content": "fine"}}], NOTES_KEY: {"key_redacted": True}}).encode()
    [row] = collect_from(scripted, setup, [(200, {}, forged)]).values()
    assert json.loads(row["raw_json"])[NOTES_KEY] == {}


def _top_body(text, alternatives):
    content = [{"token": text, "logprob": -0.1, "top_logprobs": [{"token": f"t{i}", "logprob": -0.1 - i}
                                                                  for i in range(alternatives)]}]
    return _ok_body(text, {"content": content})


def test_top_logprobs_are_recorded_as_one_blob_and_fewer_than_asked_are_noted(scripted, setup, tmp_path):
    from audit.topk import TopK

    store, mid, ps = setup
    url, script, _ = scripted
    script += [(200, {}, _top_body("A", 2))]
    tally = collect_role(store, mid, "teacher", _model(url), ps[:1], GenParams(max_new_tokens=1, top_logprobs=5))
    [blob] = store.top_distributions(mid).values()
    assert TopK.unpack(blob).tokens == [["t0", "t1"]] and store.verify_transcripts() == []
    assert ("gave at most 2 top log-probabilities per token, not the 5 asked (--top-logprobs)"
            in summarize(tmp_path / "audit.db", [tally], complete=True))


def test_an_answer_without_the_top_logprobs_asked_is_a_failed_query(scripted, setup):
    store, mid, ps = setup
    url, script, _ = scripted
    script += [(200, {}, _ok_body("no logprobs here"))]
    tally = collect_role(store, mid, "teacher", _model(url), ps[:1], GenParams(top_logprobs=3))
    assert tally.errors == 1 and "no top log-probabilities in the response" in store.query_errors()[0]["error"]
    assert store.db["responses"].count == 0


def test_a_resume_of_a_collection_recorded_before_top_logprobs_existed_means_none(setup, tmp_path):
    store, _, ps = setup
    options = CollectOptions(db_path=tmp_path / "audit.db", teacher="fake", suspect="fake", suite="t")
    older = {k: v for k, v in options.recorded().items() if k != "top_logprobs"}
    store.update_audit(config=older)
    check_resumable(store, store.audit(), options, ps)
    with pytest.raises(AuditError, match="--top-logprobs 0, not 4"):
        check_resumable(store, store.audit(), CollectOptions(**{**options.__dict__, "top_logprobs": 4}), ps)


def test_a_top_logprobs_of_zero_is_a_range_error():
    from click.testing import CliRunner

    from audit.cli import cli

    result = CliRunner().invoke(cli, ["collect", "--db", "x.db", "--teacher", "a", "--suspect", "b",
                                      "--top-logprobs", "0"])
    assert result.exit_code == 2 and "--top-logprobs" in result.output and "x>=1" in result.output


@pytest.mark.parametrize("sequential", [[], ["--sequential"]])
def test_a_malformed_spec_is_refused_before_the_database_is_created(tmp_path, sequential):
    from click.testing import CliRunner

    from audit.cli import cli

    db = tmp_path / "a.db"
    result = CliRunner().invoke(cli, ["collect", "--db", str(db), "--teacher", "gemma3-270m", "--suspect",
                                      "nosuch:thing", *sequential])
    assert result.exit_code == 1 and "model spec 'nosuch:thing': unknown" in result.output
    assert not db.exists()

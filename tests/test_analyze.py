"""The analyze stage on audit databases with known ground truth (synthetic responses, no model runs)."""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.analyze import analyze_store
from audit.results import ResultRow
from helpers_adversaries import (HashingEmbedder, LengthTeacher, ObedientJudge, build_audit, make_probes,
                                 prose_style, teacher_style)

TEACHER_WORDS = {"sure", "here", "is", "how", "works"}
ADVANTAGE_ADVERSARIES = {"discriminator-single", "discriminator-paired", "judge", "judge-unfiltered",
                         "teacher-likelihood"}


def analyze(store, **kw):
    """Analyze as `run` would: every model of the audit named by the user, so the default judge may be chosen."""
    kw.setdefault("named_specs", tuple(m["spec"] for m in store.models()))
    kw.setdefault("embedder", HashingEmbedder())
    kw.setdefault("judge_model", ObedientJudge())
    kw.setdefault("teacher_model", LengthTeacher(TEACHER_WORDS))
    return analyze_store(store, quiet=True, budget_repeats=2, **kw)


def overall(store, comparison):
    return {"headline" if r.headline else r.adversary: r
            for r in store.results(comparison=comparison, category="all", split="all")}


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    """The teacher against itself (greedy decoding: identical texts), and a prose control."""
    probes = make_probes(80, private=True)
    store = build_audit(tmp_path_factory.mktemp("identity") / "a.db", probes,
                        {"teacher": teacher_style, "suspect": teacher_style, "control:prose": prose_style})
    judge = ObedientJudge()
    summary = analyze(store, judge_model=judge)
    return store, summary, judge


def test_identity_every_adversary_interval_contains_zero(identity):
    store, _, _ = identity
    rows = overall(store, "teacher-vs-suspect")
    assert ADVANTAGE_ADVERSARIES | {"headline", "similarity", "mmd"} <= set(rows)
    for name in ADVANTAGE_ADVERSARIES | {"headline"}:
        row = rows[name]
        assert row.ci_low <= 0 <= row.ci_high, (name, row)
        assert row.n is not None and row.q == 80 and row.t["adversary"] is not None
    assert rows["similarity"].estimate == pytest.approx(1.0, abs=1e-5)
    assert rows["mmd"].p_value > 0.05
    assert rows["judge"].n == 0  # identical candidates: the judge always picks position A, every pair a tie
    assert rows["judge-unfiltered"].details["flip_rate"] == 1.0


def test_clearly_different_sources_are_told_apart(identity):
    store, summary, _ = identity
    rows = overall(store, "teacher-vs-control:prose")
    for name in ADVANTAGE_ADVERSARIES | {"headline"}:
        assert rows[name].ci_low > 0.5, (name, rows[name])
    assert rows["mmd"].p_value < 0.01
    head = rows["headline"]
    assert head.adversary in ADVANTAGE_ADVERSARIES and "Bonferroni" in head.details["selection"]
    assert head.ci_low <= rows[head.adversary].ci_low  # paying for the choice widens it
    assert "teacher-vs-control:prose" in summary


def test_provenance_gap_is_positive_when_the_suspect_imitates(identity):
    store, _, _ = identity
    gaps = {r.adversary: r for r in store.results(comparison="provenance", control="prose")}
    assert gaps["discriminator-paired"].metric == "advantage-gap"
    assert gaps["discriminator-paired"].ci_method == "permutation-bonferroni"
    assert gaps["discriminator-single"].ci_low > 0.5
    m = len(gaps)
    assert all(r.details["m"] == m and r.details["per_test_confidence"] == pytest.approx(1 - 0.05 / m)
               for r in gaps.values())
    assert sum(bool(r.details.get("page_one")) for r in gaps.values()) == 1  # one row per control for page 1


def test_every_row_p_value_agrees_with_its_interval(identity):
    """No row shows p < α with an interval that contains 0, or the reverse: plain rows, headline and provenance
    (Bonferroni), category rows (plain, and the Holm p-value against its Holm interval), split gaps."""
    from audit.stats import excludes

    store, _, _ = identity
    checked = 0
    for r in store.results():
        alpha = 1 - r.confidence
        pairs = [(r.p_value, r.ci_low, r.ci_high)]
        if "holm_interval" in r.details:
            pairs.append((r.p_holm, r.details["holm_interval"]["ci_low"], r.details["holm_interval"]["ci_high"]))
        if "split_gap" in r.details:
            gap = r.details["split_gap"]
            pairs.append((gap["p_value"], gap["ci_low"], gap["ci_high"]))
        for p, low, high in pairs:
            if p is None or low is None:
                continue
            assert (p < alpha) == excludes(low, high), (r.adversary, r.comparison, r.category, p, low, high)
            checked += 1
    rows = store.results()
    categories = [r for r in rows if r.category != "all" and r.metric == "advantage"]
    assert categories and all("holm_interval" in r.details for r in categories if r.p_value is not None)
    assert checked > len(rows)  # every row with an interval and a p-value, plus the Holm and split pairs


def test_categories_splits_and_budget(identity):
    store, _, _ = identity
    cats = [r for r in store.results(comparison="teacher-vs-control:prose", adversary="discriminator-paired",
                                     split="all") if r.category != "all"]
    assert len(cats) == 4 and all(r.p_holm is not None and r.p_bh is not None for r in cats)
    assert all(r.p_holm >= r.p_value for r in cats)
    assert sorted(r.details["evidence_rank"] for r in cats) == [1, 2, 3, 4]
    splits = {r.split for r in store.results(adversary="discriminator-single", category="all")}
    assert splits == {"all", "public", "private"}
    main = overall(store, "teacher-vs-control:prose")["discriminator-single"]
    assert "public_minus_private" in main.details["split_gap"]
    points = store.budget_points()
    assert {p["strategy"] for p in points} == {"stratified", "guided"}
    assert all(p["ci_low"] <= p["ci_high"] for p in points)


def test_judge_records_both_orders_and_rerun_is_idempotent(identity):
    store, _, first_judge = identity
    judgements = store.judgements("teacher-vs-control:prose")
    assert len(judgements) == 2 * 80 and {j["order"] for j in judgements} == {"teacher-first", "teacher-second"}
    assert {j["method"] for j in judgements} == {"score"} and len(first_judge.prompts) == 4 * 80
    before = _comparable(store.results()), store.budget_points()
    embedder, judge = HashingEmbedder(), ObedientJudge()
    analyze(store, embedder=embedder, judge_model=judge)
    after = _comparable(store.results()), store.budget_points()
    assert before == after
    assert embedder.calls == 0 and judge.prompts == []  # cached embeddings, judged keys skipped
    assert len(store.judgements()) == 4 * 80
    costs = {c["subject"]: c for c in store.costs()}
    texts = {r["text"] for r in store.responses()}
    assert costs["embedder"]["queries"] == len(texts)  # paid once, by the first run
    assert costs["judge"]["queries"] == 4 * 80 and costs["teacher"]["queries"] > 0
    assert store.model("judge")["role"] == "judge"


def _comparable(rows):
    return sorted((replace(r, t={}) for r in rows), key=ResultRow.key)


def test_analyze_clears_stale_results(tmp_path):
    probes = make_probes(40)
    store = build_audit(tmp_path / "a.db", probes, {"teacher": teacher_style, "suspect": prose_style})
    store.record_results([ResultRow("stale", "teacher-vs-suspect", n=1, estimate=0.0)])
    summary = analyze(store, use_judge=False)
    assert not store.results(adversary="stale")
    assert "judge: skipped" in summary
    assert not store.results(adversary="judge")


def test_teacher_likelihood_skipped_when_the_teacher_cannot_score(tmp_path):
    from audit.errors import ScoringUnsupported

    class HttpTeacher(LengthTeacher):
        def score(self, prompt, continuations):
            raise ScoringUnsupported("no logprobs over HTTP")

    probes = make_probes(30)
    store = build_audit(tmp_path / "a.db", probes, {"teacher": teacher_style, "suspect": prose_style})
    summary = analyze(store, use_judge=False, teacher_model=HttpTeacher(set()))
    assert "teacher-likelihood: skipped" in summary
    assert not store.results(adversary="teacher-likelihood")
    head = overall(store, "teacher-vs-suspect")["headline"]
    assert set(head.details["not_run"]) == {"teacher-likelihood", "judge"}  # the headline's scope says so
    assert "cannot score text" in head.details["not_run"]["teacher-likelihood"]


def test_several_samples_per_probe_are_permuted_by_probe(tmp_path):
    def noisy(probe, sample):
        return teacher_style(probe, sample) if random.Random(f"{probe.id}{sample}").random() < 0.5 \
            else prose_style(probe, sample)

    probes = make_probes(40)
    store = build_audit(tmp_path / "a.db", probes, {"teacher": teacher_style, "suspect": noisy}, samples=2)
    analyze(store, use_judge=False)
    rows = overall(store, "teacher-vs-suspect")
    assert rows["discriminator-paired"].ci_method == "permutation"
    assert rows["discriminator-paired"].n == 80  # the pairs tested ...
    assert rows["discriminator-paired"].details["probes"] == 40  # ... whose probes trade places as one
    head = rows["headline"]
    assert head.ci_method == "bonferroni" and head.ci_low <= rows[head.adversary].ci_low


class NoEmbedder(HashingEmbedder):
    """An embedder that fails the test if used: a wrong spec must be refused before any embedding."""

    def encode(self, texts):
        raise AssertionError("embedded before the model specs were checked")


def test_a_wrong_judge_spec_fails_before_any_embedding(tmp_path):
    from audit.errors import SpecError

    store = build_audit(tmp_path / "a.db", make_probes(20), {"teacher": teacher_style, "suspect": prose_style})
    with pytest.raises(SpecError, match="not a directory"):
        analyze_store(store, quiet=True, judge_spec=f"hf:{tmp_path}/nowhere", embedder=NoEmbedder())


def test_no_suspect_responses_is_a_user_error(tmp_path):
    from audit.errors import AuditError

    store = build_audit(tmp_path / "a.db", make_probes(5), {"teacher": teacher_style})
    with pytest.raises(AuditError, match="no suspect responses"):
        analyze(store)


def test_small_audits_still_get_a_budget_curve():
    from audit.analyze import budget_ladder

    assert budget_ladder(38) == (9, 19, None)
    assert budget_ladder(4500) == (50, 100, 250, 500, 1000, None)


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """A suspect that fails 12 probes and leaves one blank, a control that fails 6 others (2 shared with the suspect)."""
    probes = make_probes(40, private=True)
    ids = [p.id for p in probes]
    suspect_fails, control_fails, blank = set(ids[:12]), set(ids[10:16]), {ids[20]}

    def suspect(probe, sample):
        return None if probe.id in suspect_fails else " \n" if probe.id in blank else teacher_style(probe, sample)

    def control(probe, sample):
        return None if probe.id in control_fails else prose_style(probe, sample)

    store = build_audit(tmp_path_factory.mktemp("refusals") / "a.db", probes,
                        {"teacher": teacher_style, "suspect": suspect, "control:prose": control})
    summary = analyze(store, judge_spec=ObedientJudge.spec)
    return store, summary, set(ids) - suspect_fails - control_fails - blank


def test_claims_use_only_probes_every_model_answered(refusals):
    store, _, common = refusals
    assert len(common) == 23
    for comparison in ("teacher-vs-suspect", "teacher-vs-control:prose"):
        rows = overall(store, comparison)
        assert rows["discriminator-paired"].n == 23, comparison  # paired: one unit per probe
        assert rows["headline"].q == 40  # q is what was spent: failed queries included
        categories = [r for r in store.results(comparison=comparison, adversary="discriminator-paired",
                                               split="all") if r.category != "all"]
        assert sum(r.n for r in categories) == 23
    gaps = {r.adversary: r for r in store.results(comparison="provenance", control="prose")}
    assert gaps["discriminator-paired"].details["shared_probes"] == 23
    assert {j["probe_id"] for j in store.judgements()} == common


def test_every_claim_records_its_probe_coverage_per_model(refusals):
    store, summary, _ = refusals
    coverages = [r.details["coverage"] for r in store.results()]
    assert coverages and all(c == coverages[0] for c in coverages)
    assert coverages[0]["probes_selected"] == 40 and coverages[0]["probes_common"] == 23
    assert coverages[0]["models"] == [
        {"model": "teacher", "answered": 40, "empty": 0, "failed": 0, "not_asked": 0},
        {"model": "suspect", "answered": 27, "empty": 1, "failed": 12, "not_asked": 0},
        {"model": "control:prose", "answered": 34, "empty": 0, "failed": 6, "not_asked": 0}]
    assert ("probes: every claim rests on the 23 of 40 selected probes that every model answered "
            "(suspect left 13 unanswered; control:prose left 6 unanswered)") in summary


def test_no_probe_answered_by_every_model_is_a_user_error(tmp_path):
    from audit.errors import AuditError

    store = build_audit(tmp_path / "a.db", make_probes(10),
                        {"teacher": teacher_style, "suspect": prose_style, "control:mute": lambda p, s: None})
    with pytest.raises(AuditError, match=r"no probe was answered by every model \(control:mute answered none\)"):
        analyze(store)


@pytest.fixture
def recording_endpoint():
    """A loopback OpenAI-compatible endpoint that records every request: (method, path, Authorization header)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            body = json.dumps({"data": [{"id": "teacher"}, {"id": "control:prose"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    server.shutdown()
    server.server_close()


def hostile_database(path, url):
    """An audit whose teacher and control specs, as a crafted database would, send a secret variable to ``url``."""
    store = build_audit(path, make_probes(20), {"teacher": teacher_style, "suspect": prose_style,
                                                "control:prose": prose_style})
    for name in ("teacher", "control:prose"):
        spec = f"openai:{url}#{name}?key_env=AWS_SECRET_ACCESS_KEY"
        store.db["models"].update(f"{store.audit_id}:{name}", {"spec": spec, "fingerprint": f"{url}#{name}"})
    store.close()
    return path


def analyze_hostile(tmp_path, recording_endpoint, monkeypatch, *flags):
    """`distill-audit analyze` on a hostile database whose specs point at the recording endpoint, with ``flags``
    (a callable is given the endpoint's url); returns (the CLI result, the url, the requests the endpoint saw)."""
    from click.testing import CliRunner

    from audit import analyze as stage
    from audit.cli import cli

    url, seen = recording_endpoint
    monkeypatch.setattr(stage, "Embedder", HashingEmbedder)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret")
    db = hostile_database(tmp_path / "a.db", url)
    flags = [flag(url) if callable(flag) else flag for flag in flags]
    return CliRunner().invoke(cli, ["analyze", "--db", str(db), "--quiet", *flags]), url, seen


@pytest.mark.parametrize("flags", [[], ["--no-judge"]])
def test_analyze_never_runs_a_spec_read_from_the_database(tmp_path, recording_endpoint, monkeypatch, flags):
    result, url, seen = analyze_hostile(tmp_path, recording_endpoint, monkeypatch, *flags)
    assert result.exit_code == 0, result.output
    assert seen == []
    assert "teacher-likelihood: skipped (no --teacher given; the database's spec is never run)" in result.output
    if not flags:
        assert "judge: skipped (no --judge given; the database's spec is never run: the default choice would be " \
               f"'openai:{url}#control:prose?key_env=AWS_SECRET_ACCESS_KEY'" in result.output


def test_analyze_runs_a_teacher_the_user_names_and_only_that(tmp_path, recording_endpoint, monkeypatch):
    result, _, seen = analyze_hostile(tmp_path, recording_endpoint, monkeypatch, "--teacher",
                                      lambda url: f"openai:{url}#teacher?key_env=AWS_SECRET_ACCESS_KEY")
    assert result.exit_code == 0, result.output
    assert seen == [("GET", "/v1/models", "Bearer the-secret")]  # the named teacher only; no default judge
    assert "teacher-likelihood: skipped, the teacher's backend gives no log-probabilities" in result.output


def test_a_judge_endpoint_is_checked_and_built_once(tmp_path, recording_endpoint, monkeypatch):
    """--judge is checked before the stages and loaded for the judge stage: one request to /models, not two."""
    result, _, seen = analyze_hostile(tmp_path, recording_endpoint, monkeypatch, "--judge",
                                      lambda url: f"openai:{url}#teacher?key_env=AWS_SECRET_ACCESS_KEY",
                                      "--judge-probes", "2")
    assert result.exit_code == 0, result.output
    assert [request for request in seen if request[0] == "GET"] == [("GET", "/v1/models", "Bearer the-secret")]
    assert any(request[:2] == ("POST", "/v1/chat/completions") for request in seen)  # the judge was asked


def test_analyze_refuses_a_teacher_other_than_the_one_that_answered(tmp_path, tiny_llama_dir):
    from audit.errors import AuditError

    store = build_audit(tmp_path / "a.db", make_probes(20), {"teacher": teacher_style, "suspect": prose_style})
    with pytest.raises(AuditError, match="is not the teacher that answered .* must score under the model that answered"):
        analyze_store(store, quiet=True, teacher_spec=f"hf:{tiny_llama_dir}", embedder=NoEmbedder())


def test_a_named_teacher_is_recognised_by_its_weights_not_its_spec_text(tmp_path, tiny_llama_dir):
    from audit.models import load_model

    spec = f"hf:{tiny_llama_dir}"
    store = build_audit(tmp_path / "a.db", make_probes(20), {"teacher": teacher_style,
                                                                        "suspect": prose_style})
    weights = load_model(spec, device="cpu").describe().fingerprint
    store.db["models"].update(f"{store.audit_id}:teacher", {"spec": "hf:./moved-since", "fingerprint": weights})
    analyze(store, use_judge=False, teacher_spec=spec, teacher_model=None)
    assert overall(store, "teacher-vs-suspect")["teacher-likelihood"].n == 2 * 20  # both sides scored


def test_analysis_loads_no_model_the_user_did_not_name(tmp_path):
    from audit.analyze import Context
    from audit.errors import AuditError

    store = build_audit(tmp_path / "a.db", make_probes(4), {"teacher": teacher_style})
    ctx = Context(store, 0.95, 0, {}, {}, {}, named=frozenset({"hf:/mine"}))
    with pytest.raises(AuditError, match="never run"):
        ctx.load("openai:http://127.0.0.1:9/v1#m?key_env=AWS_SECRET_ACCESS_KEY")


class FirstLeaningJudge(ObedientJudge):
    """Always answers "first", but more surely when the first candidate is the one it would have chosen: a
    small judge's position bias over a little knowledge (the bundled models behave so)."""

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        p_first = 0.9 if self.decide(prompt) == "A" else 0.6
        return [[math.log(p_first if c == "A" else 1.0 - p_first)] for c in continuations]


def test_a_position_biased_judge_keeps_its_knowledge_once_the_bias_is_cancelled(tmp_path):
    """Every pair flips, so the consistent-pairs judge has nothing; over both orders the knowledge shows."""
    probes = make_probes(40, private=True)
    store = build_audit(tmp_path / "a.db", probes, {
        "teacher": teacher_style, "suspect": teacher_style, "control:prose": prose_style})
    analyze(store, judge_model=FirstLeaningJudge())
    rows = overall(store, "teacher-vs-control:prose")
    assert rows["judge"].n == 0 and rows["judge"].details["flip_rate"] == 1.0
    assert rows["judge-unfiltered"].estimate == 1.0 and rows["judge-unfiltered"].ci_low > 0.5


def test_pair_credit_cancels_position_bias_and_falls_back_to_verdicts():
    from audit.adversaries.judge import pair_credit

    def said(p_first, correct=None):
        return {"p_first": p_first, "correct": correct}

    assert pair_credit(said(0.9), said(0.6)) == 1.0  # "first" both times, more surely with the teacher first
    assert pair_credit(said(0.6), said(0.9)) == 0.0
    assert pair_credit(said(0.7), said(0.7)) == 0.5
    assert pair_credit(said(None, 1), said(None, 0)) == 0.5  # parsed text: an inconsistent pair is a tie
    assert pair_credit(said(None, 1), said(None, 1)) == 1.0
    assert pair_credit(said(None, None), said(None, 1)) == 0.75


def test_the_analysis_records_the_exhibits_and_the_report_shows_exactly_those(tmp_path):
    """The choice is made once, in analysis (judge giveaways by falling p(teacher), then fooled by rising p), and
    recorded; the report shows those probes in that order with their transcripts and verdicts, and chooses none."""
    from audit.analysis.exhibits import EXHIBITS_FOOLED, EXHIBITS_GIVEAWAY, JUDGE_NOTE
    from audit.report import render

    store = build_audit(tmp_path / "a.db", make_probes(24), {"teacher": teacher_style, "suspect": prose_style})
    analyze(store)
    recorded = store.exhibits()
    kinds = [e["kind"] for e in recorded]
    assert recorded and kinds == sorted(kinds, key=["giveaway", "fooled"].index)
    assert kinds.count("giveaway") <= EXHIBITS_GIVEAWAY and kinds.count("fooled") <= EXHIBITS_FOOLED
    giveaway = [e["p_teacher"] for e in recorded if e["kind"] == "giveaway"]
    assert giveaway == sorted(giveaway, reverse=True) and {e["note"] for e in recorded} == {JUDGE_NOTE}
    analyze(store)  # a rerun rewrites the same choice, never adds to it
    assert store.exhibits() == recorded
    ctx = render.gather(store, keyid=None, tool_digest="")
    assert [(e.probe["id"], e.kind, e.p_teacher) for e in ctx.exhibits] == [
        (e["probe_id"], e["kind"], e["p_teacher"]) for e in recorded]
    assert ctx.exhibit_note == JUDGE_NOTE
    assert all(len(e.verdicts) == 2 and set(e.responses) >= {"teacher", "suspect"} for e in ctx.exhibits)


def test_without_a_judge_the_analysis_records_one_exhibit_per_category_in_the_report_s_order(tmp_path):
    from audit.analysis.exhibits import CATEGORY_NOTE
    from audit.report import render

    store = build_audit(tmp_path / "a.db", make_probes(40), {"teacher": teacher_style, "suspect": prose_style})
    analyze(store, use_judge=False)
    ctx = render.gather(store, keyid=None, tool_digest="")
    shown = [e.probe["category"] for e in ctx.exhibits]
    assert shown and shown == [c.category for c in ctx.category_claims][:len(shown)]
    assert {e.kind for e in ctx.exhibits} == {"category"} and ctx.exhibit_note == CATEGORY_NOTE

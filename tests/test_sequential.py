"""Sequential audits: confidence sequences by betting, the pre-registered order, stopping rules, resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from audit import collect_sequential, sequential
from audit.adversaries import embeddings
from audit.adversaries.likelihood import OPENING_WINDOWS
from audit.cli import cli
from audit.confseq import _log_capital, confidence_sequence
from audit.errors import AuditError
from audit.models.base import Generation
from audit.pipeline import run_pipeline
from audit.stats import excludes
from audit.store import Store
from helpers_adversaries import HashingEmbedder
from test_pipeline import stage_lines, tiny_options, write_suite

# ---------------------------------------------------------------------------
# The confidence sequence
# ---------------------------------------------------------------------------


def test_the_capital_matches_the_reference_implementation():
    """Hedged capital max(½K⁺, ½K⁻) from confseq 0.0.11's ``betting_mart`` (Waudby-Smith & Ramdas' code) with
    ``lambda_aKelly`` bets, positive part for K⁺ and negative part for K⁻, truncation 1/2, run once on this
    stream: final and largest capital at four candidate means."""
    x = np.random.default_rng(7).choice([0.0, 0.5, 1.0], size=40, p=[0.2, 0.3, 0.5])
    reference = {0.3: (65022.561059661864, 109295.07987031325), 0.5: (2.9262630256617364, 21.6243896484375),
                 0.62: (0.41376701966717094, 1.9115751308820934), 0.8: (7.15248356297757, 7.15248356297757)}
    for m, (final, largest) in reference.items():
        log_k = _log_capital(x, np.array([m]))[:, 0]
        assert np.exp(log_k[-1]) == pytest.approx(final, rel=1e-9)
        assert np.exp(log_k.max()) == pytest.approx(largest, rel=1e-9)


def test_the_sequence_covers_the_mean_at_every_step_at_once():
    """400 streams of 80 steps with mean 0.2 on {-1, 0, 1}: the running intersection holds the mean at every step
    in at least 95% of them (allowing simulation error), and the p-value agrees with the interval at every step."""
    rng = np.random.default_rng(1)
    misses = 0
    for _ in range(400):
        x = rng.choice([-1.0, 0.0, 1.0], size=80, p=[0.2, 0.4, 0.4])
        seq = confidence_sequence(x, (-1.0, 1.0), 0.95, null=0.2)
        misses += bool(np.any((seq.low > 0.2) | (seq.high < 0.2)))
        rejected = seq.p_value <= 0.05
        assert np.all(~rejected | (seq.low >= 0.2) | (seq.high <= 0.2))
    assert misses / 400 <= 0.06


def test_the_final_interval_excludes_the_null_exactly_when_the_anytime_p_value_is_below_alpha():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.1, 0.3, 0.6):
        for _ in range(30):
            x = np.clip(rng.normal(shift, 0.7, size=rng.integers(5, 60)), -1, 1)
            seq = confidence_sequence(x, (-1.0, 1.0), 0.95)
            assert excludes(seq.final_low, seq.final_high) == (seq.p_value[-1] <= 0.05)
            assert seq.low[-1] <= seq.final_low <= seq.final_high <= seq.high[-1]


@pytest.mark.parametrize("cuts", [(0, 1, 2), (5, 9), (17,), (30, 31, 47)])
def test_a_sequence_extended_round_by_round_is_the_one_computed_at_once(cuts):
    """A sequential audit extends each sequence by the new round's steps; every number must be bit-for-bit what
    one pass over the whole stream gives, or a resumed audit (which recomputes) could decide differently."""
    x = np.clip(np.random.default_rng(len(cuts)).normal(0.25, 0.7, 60), -1, 1)
    whole = confidence_sequence(x, (-1.0, 1.0), 0.975, null=0.1)
    extended = None
    for k in (*cuts, len(x)):
        extended = confidence_sequence(x[:k], (-1.0, 1.0), 0.975, null=0.1, previous=extended)
    for field in ("estimate", "low", "high", "p_value"):
        assert np.array_equal(getattr(whole, field), getattr(extended, field)), field
    assert (whole.final_low, whole.final_high) == (extended.final_low, extended.final_high)


def test_a_stream_that_does_not_continue_the_previous_one_is_computed_afresh():
    x = np.array([1.0, 1.0, -1.0, 1.0, 0.0, 1.0])
    earlier = confidence_sequence(np.array([1.0, -1.0, 1.0]), (-1.0, 1.0), 0.95)  # not a prefix of x
    fresh = confidence_sequence(x, (-1.0, 1.0), 0.95)
    assert np.array_equal(confidence_sequence(x, (-1.0, 1.0), 0.95, previous=earlier).p_value, fresh.p_value)
    other_level = confidence_sequence(x[:3], (-1.0, 1.0), 0.9)
    assert np.array_equal(confidence_sequence(x, (-1.0, 1.0), 0.95, previous=other_level).high, fresh.high)


def test_a_value_outside_the_bounds_is_refused():
    with pytest.raises(ValueError):
        confidence_sequence([0.5, 1.5], (-1.0, 1.0))


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------


def test_the_order_depends_on_the_seed_and_the_probe_set_alone():
    ids = [f"p{i}" for i in range(30)]
    plan = sequential.preregister(ids, seed=4, round_size=5, rule="provenance", threshold=None,
                                  adversaries=("discriminator-paired",))
    again = sequential.preregister(list(reversed(ids)), seed=4, round_size=5, rule="provenance", threshold=None,
                                   adversaries=("discriminator-paired",))
    other = sequential.preregister(ids, seed=5, round_size=5, rule="provenance", threshold=None,
                                   adversaries=("discriminator-paired",))
    assert plan.order == again.order and plan.order_hash == again.order_hash
    assert plan.order != other.order
    assert [len(r) for r in plan.rounds(12)] == [5, 5, 2]


@pytest.mark.parametrize("rule, threshold, message", [
    ("sometimes", None, "not a stopping rule"),
    ("certify", None, "needs --epsilon-threshold"),
    ("certify", 1.5, "lies in [0, 1]"),
])
def test_a_bad_plan_is_one_line(rule, threshold, message):
    with pytest.raises(AuditError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sequential.preregister(["a", "b"], seed=0, round_size=1, rule=rule, threshold=threshold, adversaries=())


# ---------------------------------------------------------------------------
# A sequential run on tiny models
# ---------------------------------------------------------------------------


@pytest.fixture
def hashing(monkeypatch):
    from audit import analyze

    monkeypatch.setattr(analyze, "Embedder", HashingEmbedder)
    monkeypatch.setattr(embeddings, "Embedder", HashingEmbedder)


@pytest.fixture(scope="module")
def long_suite(tmp_path_factory):
    return write_suite(tmp_path_factory.mktemp("suite") / "suite.jsonl", per_category=8)


def sequential_options(folder, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite, **overrides):
    params = dict(sequential=True, round_size=4, queries=16, stop_rule="distinguished", no_judge=True)
    params.update(overrides)
    return tiny_options(folder, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite, **params)


def points_of(db_path):
    with Store.open(db_path, create=False) as store:
        audit = store.require_audit()
        points = [{k: p[k] for k in ("comparison", "adversary", "round", "n", "estimate", "ci_low", "ci_high")}
                  for p in store.sequence_points()]
        config = json.loads(audit["config_json"])
        results = store.results(split="sequential")
    return points, config, results


def test_a_sequential_run_records_its_plan_and_states_its_sequences(tmp_path, hashing, tiny_llama_dir,
                                                                     tiny_gemma3_dir, tiny_lora_dir, long_suite):
    options = sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite)
    lines = stage_lines(run_pipeline(options))
    assert "sequential" in lines["collect"] or "collection complete" in lines["collect"]
    points, config, results = points_of(tmp_path / "audit.db")
    plan = config["sequential_plan"]
    assert plan["round_size"] == 4 and plan["rule"] == "distinguished" and len(plan["order_hash"]) == 64
    assert plan["adversaries"] == ["discriminator-paired", "teacher-likelihood"]
    assert plan["likelihood_windows"] == list(OPENING_WINDOWS)
    assert config["sequential_stop"]["reason"] in ("rule", "budget")
    assert {r.adversary for r in results} >= {"discriminator-paired", "teacher-likelihood"} and any(r.headline for r in results)
    for r in results:
        assert (r.p_value <= 0.05) == excludes(r.ci_low, r.ci_high), r
        assert r.details["validity"].startswith("anytime-valid")
    assert {p["round"] for p in points} == set(range(max(p["round"] for p in points) + 1))
    html = (tmp_path / "report" / "report.html").read_text()
    assert "optional stopping" in html and "over the opening window (4, 8, 16, 32 tokens" in html


def killed_in_round_three(monkeypatch, options) -> None:
    """Run the audit of ``options`` until it is killed as its third round is asked; the real asking is restored."""
    real_ask = collect_sequential._ask_round
    calls = {"n": 0}

    def dies_in_round_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(collect_sequential, "_ask_round", dies_in_round_three)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(options)
    monkeypatch.setattr(collect_sequential, "_ask_round", real_ask)


def test_an_audit_killed_between_rounds_resumes_with_the_same_sequences(tmp_path, hashing, monkeypatch,
                                                                        tiny_llama_dir, tiny_gemma3_dir,
                                                                        tiny_lora_dir, long_suite):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir()
    broken.mkdir()
    run_pipeline(sequential_options(whole, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                    stop_rule="certify", epsilon_threshold=0.0))
    options = sequential_options(broken, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                 stop_rule="certify", epsilon_threshold=0.0)
    killed_in_round_three(monkeypatch, options)
    run_pipeline(options)
    assert points_of(broken / "audit.db")[0] == points_of(whole / "audit.db")[0]
    again = collect_sequential.run_sequential(options.collect)  # a settled audit asks nothing more
    assert "teacher: 0 answered, 0 failed this run (16 already recorded)" in again, again


def test_a_failed_query_answered_later_joins_the_round_it_arrived_in(tmp_path, hashing, monkeypatch, tiny_llama_dir,
                                                                    tiny_gemma3_dir, tiny_lora_dir, long_suite):
    real_role = collect_sequential.collect_role
    failed = {}

    def first_suspect_query_fails(store, model_id, name, model, probes, *args, **kwargs):
        if name != "suspect" or failed:
            return real_role(store, model_id, name, model, probes, *args, **kwargs)
        real_generate = model.generate

        def generate(prompts, params, seeds=None, samples=None):
            out = real_generate(prompts, params, seeds=seeds, samples=samples)
            failed["text"] = prompts[0]
            return [Generation(error="HTTP 500 after 5 attempts", finish_reason="error"), *out[1:]]

        model.generate = generate
        try:
            return real_role(store, model_id, name, model, probes, *args, **kwargs)
        finally:
            del model.generate

    monkeypatch.setattr(collect_sequential, "collect_role", first_suspect_query_fails)
    run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                    stop_rule="certify", epsilon_threshold=0.0))
    with Store.open(tmp_path / "audit.db", create=False) as store:
        rounds = store.sequential_rounds()
        late = next(p["id"] for p in store.selected_probes("eval") if p["text"] == failed["text"])
        plan = sequential.recorded_plan(store, store.require_audit())
        assert plan.order.index(late) < plan.round_size  # asked in round 0 ...
        assert rounds[(late, 0)] == 1  # ... it joined at round 1, where its retried answer arrived
        assert store.require_audit()["status"] == "collected"
    points, _, _ = points_of(tmp_path / "audit.db")
    likelihood = {p["round"]: p["n"] for p in points
                  if p["adversary"] == "teacher-likelihood" and p["comparison"] == "teacher-vs-suspect"}
    assert likelihood == {0: 3, 1: 8, 2: 12, 3: 16}  # round 0 was decided on three probes, and still is


def test_a_query_that_failed_in_the_last_round_is_retried_by_a_rerun_in_a_round_of_its_own(
        tmp_path, hashing, monkeypatch, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite):
    real_role = collect_sequential.collect_role
    calls = {"suspect": 0}

    def fails_in_the_last_round(store, model_id, name, model, probes, *args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        if name != "suspect" or calls[name] != 2:
            return real_role(store, model_id, name, model, probes, *args, **kwargs)
        real_generate = model.generate
        model.generate = lambda prompts, params, seeds=None, samples=None: [
            Generation(error="HTTP 429 rate limited", finish_reason="error"),
            *real_generate(prompts[1:], params, seeds=seeds[1:], samples=samples[1:])]
        try:
            return real_role(store, model_id, name, model, probes, *args, **kwargs)
        finally:
            del model.generate

    options = sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                 queries=8, stop_rule="certify", epsilon_threshold=1.0)
    monkeypatch.setattr(collect_sequential, "collect_role", fails_in_the_last_round)
    collect_sequential.run_sequential(options.collect)
    with Store.open(tmp_path / "audit.db", create=False) as store:
        assert store.require_audit()["status"] == "collecting"
        assert sorted(set(store.sequential_rounds().values())) == [0, 1] and len(store.sequential_rounds()) == 7
    monkeypatch.setattr(collect_sequential, "collect_role", real_role)
    collect_sequential.run_sequential(options.collect)
    with Store.open(tmp_path / "audit.db", create=False) as store:
        assert store.require_audit()["status"] == "collected"
        rounds = store.sequential_rounds()
        assert len(rounds) == 8 and sorted(rounds.values()).count(2) == 1  # the retried answer joined round 2


def test_a_resume_with_another_round_size_is_refused(tmp_path, hashing, tiny_llama_dir, tiny_gemma3_dir,
                                                     tiny_lora_dir, long_suite):
    run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite))
    with pytest.raises(AuditError, match="--round-size 4, not 8"):
        run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                        round_size=8))


def test_an_audit_planned_before_the_opening_windows_resumes_with_the_whole_response(
        tmp_path, hashing, monkeypatch, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite):
    options = sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                 stop_rule="certify", epsilon_threshold=0.0)
    killed_in_round_three(monkeypatch, options)
    with Store.open(tmp_path / "audit.db", create=False) as store:
        config = json.loads(store.require_audit()["config_json"])
        del config["sequential_plan"]["likelihood_windows"]  # as the version before them recorded its plans
        store.update_audit(config=config)
        asked = max(store.sequential_rounds().values()) + 1
    run_pipeline(options)
    points, config, _ = points_of(tmp_path / "audit.db")
    assert "likelihood_windows" not in config["sequential_plan"]
    with Store.open(tmp_path / "audit.db", create=False) as store:
        assert sequential.recorded_plan(store, store.require_audit()).windows == () and asked == 2


@pytest.mark.parametrize("windows", [[5], "4,8", [4, "8"]])
def test_a_received_plan_with_windows_this_tool_does_not_keep_is_one_line(tmp_path, hashing, tiny_llama_dir,
                                                                          tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                                                          windows):
    run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite, queries=8))
    with Store.open(tmp_path / "audit.db", create=False) as store:
        config = json.loads(store.require_audit()["config_json"])
        config["sequential_plan"]["likelihood_windows"] = windows
        store.update_audit(config=config)
    result = CliRunner().invoke(cli, ["analyze", "--db", str(tmp_path / "audit.db"), "--quiet", "--no-judge"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "recorded sequential plan is unreadable" in result.output


@pytest.mark.parametrize("flags, message", [
    (["--sequential", "--round-size", "0"], "a round asks at least one probe"),
    (["--sequential", "--round-size", "20", "--probes", "10"], "above the budget"),
    (["--sequential", "--epsilon-threshold", "1.5"], "lies in [0, 1]"),
    (["--round-size", "5"], "add --sequential"),
    (["--sequential", "--stop-rule", "certify"], "needs --epsilon-threshold"),
])
def test_bad_sequential_flags_are_one_line(tmp_path, flags, message):
    result = CliRunner().invoke(cli, ["collect", "--db", str(tmp_path / "a.db"), "--teacher", "t", "--suspect", "s",
                                      *flags])
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "a.db").exists()


def test_a_replayed_suspect_with_fewer_probes_than_a_round_is_refused(tmp_path, hashing, tiny_llama_dir,
                                                                      tiny_gemma3_dir, tiny_lora_dir, long_suite):
    source = tmp_path / "source"
    source.mkdir()
    run_pipeline(tiny_options(source, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite, queries=6,
                              no_judge=True))
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(AuditError, match="fewer than one round"):
        run_pipeline(sequential_options(target, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                        suspect=f"replay:{source / 'audit.db'}#suspect", round_size=8))
    shutil.rmtree(source)


# ---------------------------------------------------------------------------
# The judge on a subsample, the certified threshold
# ---------------------------------------------------------------------------


def test_the_judge_reads_only_the_subsample_chosen_before_any_verdict(tmp_path):
    from audit.analyze import analyze_store
    from helpers_adversaries import (HashingEmbedder, LengthTeacher, ObedientJudge, build_audit, make_probes,
                                     prose_style, teacher_style)

    store = build_audit(tmp_path / "a.db", make_probes(30),
                        {"teacher": teacher_style, "suspect": teacher_style, "control:prose": prose_style})
    judge = ObedientJudge()
    analyze_store(store, named_specs=tuple(m["spec"] for m in store.models()), embedder=HashingEmbedder(),
                  judge_model=judge, teacher_model=LengthTeacher({"sure"}), judge_probes=6, quiet=True,
                  budget_repeats=2)
    judged = {j["probe_id"] for j in store.judgements()}
    first_six = sorted({r["probe_id"] for r in store.responses()})[:6]
    assert judged == set(first_six) and len(store.judgements()) == 2 * 2 * 6
    row = store.results(adversary="judge", comparison="teacher-vs-suspect", category="all", split="all")[0]
    assert row.n <= 6 and "read 6 of the 30 probes" in row.details["subsample"]


@pytest.mark.parametrize("low, high, result", [(0.01, 0.08, "passed"), (0.12, 0.4, "failed"),
                                               (0.05, 0.2, "inconclusive")])
def test_a_certified_threshold_is_passed_failed_or_inconclusive_in_the_signed_claim(low, high, result):
    from audit.verdict import Claim

    claim = Claim(adversary="discriminator-paired", comparison="teacher-vs-suspect", split="sequential",
                  metric="advantage", n=40, estimate=(low + high) / 2, ci_low=low, ci_high=high, confidence=0.95,
                  ci_method=sequential.METHOD, p_value=0.01, q=40)
    entry = claim.predicate(0.1)
    assert (entry["comparator"], entry["threshold"], entry["threshold_result"]) == ("<=", 0.1, result)
    assert claim.predicate(None)["threshold_result"] is None


# ---------------------------------------------------------------------------
# The predictable streams, simulated through the real code
# ---------------------------------------------------------------------------


def synthetic(rng, n: int, suspect_shift: float, control_shift: float, features: int = 12):
    """Teacher, suspect and control features for n probes; the others' means shifted from the teacher's."""
    from audit.adversaries.comparison import Comparison

    ids = np.array([f"p{i:03d}" for i in range(n)], dtype=object)
    teacher = rng.normal(size=(n, features))

    def comparison(other: str, shift: float) -> Comparison:
        comp = Comparison(f"teacher-vs-{other}", other, ids, np.zeros(n, dtype=int), np.array(["c"] * n, dtype=object),
                          np.array(["public"] * n, dtype=object), [""] * n, [""] * n, [""] * n, [""] * n, [""] * n)
        comp.teacher_emb, comp.teacher_style = teacher, np.zeros((n, 0))
        comp.other_emb, comp.other_style = rng.normal(size=(n, features)) + shift, np.zeros((n, 0))
        return comp

    return [comparison("suspect", suspect_shift), comparison("control:base", control_shift)], ids.tolist()


def settled_sides(shift_suspect: float, shift_control: float, audits: int, n: int = 40) -> dict[str, int]:
    rng = np.random.default_rng(11)
    sides = {"above": 0, "below": 0, "not settled": 0, "conflicting": 0}
    for seed in range(audits):
        comparisons, ids = synthetic(rng, n, shift_suspect, shift_control)
        plan = sequential.preregister(ids, seed=seed, round_size=5, rule="provenance", threshold=None,
                                      adversaries=("discriminator-paired",))
        schedule = plan.schedule(sequential.units_of(comparisons[0]))
        tracked = sequential.track(sequential.discriminator_streams(comparisons, schedule), 0.95)
        decisions = [sequential.decide(tracked, plan, r) for r in range(n // 5)]
        first = next((d for d in decisions if d.settled), decisions[-1])
        sides[first.findings["provenance:base"]] += 1
    return sides


def test_when_suspect_and_control_are_exchangeable_provenance_is_rarely_ever_settled():
    """The null of the provenance rule, checked at every round (optional stopping): at most 5% of audits ever
    settle, allowing simulation error."""
    sides = settled_sides(0.3, 0.3, audits=200)
    assert (sides["above"] + sides["below"]) / 200 <= 0.05


def test_a_suspect_shifted_toward_the_teacher_is_settled_above():
    sides = settled_sides(0.0, 0.6, audits=40)
    assert sides["above"] >= 30 and sides["below"] == 0


def test_a_received_database_with_a_malformed_plan_is_one_line(tmp_path, hashing, tiny_llama_dir, tiny_gemma3_dir,
                                                              tiny_lora_dir, long_suite):
    run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                    queries=8))
    with Store.open(tmp_path / "audit.db", create=False) as store:
        audit = store.require_audit()
        config = json.loads(audit["config_json"])
        config["sequential_plan"]["threshold"] = "not a number"
        store.update_audit(config=config)
    result = CliRunner().invoke(cli, ["analyze", "--db", str(tmp_path / "audit.db"), "--quiet", "--no-judge"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "recorded sequential plan is unreadable" in result.output


def test_a_received_database_with_a_malformed_round_is_one_line(tmp_path, hashing, tiny_llama_dir, tiny_gemma3_dir,
                                                               tiny_lora_dir, long_suite):
    run_pipeline(sequential_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, long_suite,
                                    queries=8))
    with Store.open(tmp_path / "audit.db", create=False) as store:
        store.db.execute("update sequential_rounds set round = 'soon' where rowid = 1")
        store.db.conn.commit()
    result = CliRunner().invoke(cli, ["analyze", "--db", str(tmp_path / "audit.db"), "--quiet", "--no-judge"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "sequential_rounds gives probe" in result.output and "not a round number" in result.output


def window_streams(values: np.ndarray) -> sequential.Stream:
    """Per probe, one value per window (probes x windows)."""
    ids = [f"p{i:03d}" for i in range(len(values))]
    return sequential.Stream("c", "teacher-likelihood", ids, values, np.arange(len(values)) // 5)


def test_each_probe_is_compared_over_the_window_most_decisive_on_the_probes_before_it():
    values = np.array([[1, 1], [-1, 1], [1, 1], [-1, -1], [1, -1]], dtype=float)
    chosen = sequential._most_decisive_so_far(window_streams(values)).values
    # before probe 0 nothing (the whole response, the first column); before 1 a tie (the first again);
    # before 2 the second leads 2 to 0, and keeps the lead
    assert chosen.tolist() == [1, -1, 1, -1, -1]
    changed = values.copy()
    changed[2, 0] = -1  # a value of a window not chosen there changes nothing at its own probe
    assert sequential._most_decisive_so_far(window_streams(changed)).values[2] == 1


def opening_window_audits(audits: int, n: int, informative: float, seed: int) -> tuple[float, float]:
    """Shares of simulated audits whose CS (95%) ever lies above 0 and ever below, checked after each round of
    five; five windows whose signs share a common part, each of mean 0, except where ``informative`` is not 0
    the third, whose mean it is."""
    rng = np.random.default_rng(seed)
    above = below = 0
    for _ in range(audits):
        signs = np.sign(rng.normal(size=(n, 1)) + rng.normal(size=(n, 5)))
        if informative:
            signs[:, 2] = np.where(rng.random(n) < 0.5 + informative / 2, 1.0, -1.0)
        stream = sequential._most_decisive_so_far(window_streams(signs)).values
        sequence = confidence_sequence(stream, confidence=0.95)
        above += bool((sequence.low[4::5] > 0).any())
        below += bool((sequence.high[4::5] < 0).any())
    return above / audits, below / audits


def test_choosing_the_window_from_earlier_probes_keeps_every_round_valid():
    """Exchangeable models: every window's sign has mean 0, and however the choice chases the leader, the
    sequence ever excludes 0 in at most 5% of audits (allowing simulation error)."""
    above, below = opening_window_audits(300, 60, 0.0, seed=3)
    assert above + below <= 0.07


def test_an_informative_window_is_found_and_settles():
    above, below = opening_window_audits(60, 60, 0.6, seed=4)
    assert above >= 0.8 and below == 0.0

"""The analyze stage on real generations of the two bundled models (marked real: minutes, not seconds)."""

from __future__ import annotations

import os

import pytest

from audit.store import Store, sha256_text

pytestmark = pytest.mark.real


@pytest.fixture(scope="session")
def bundled_audit(tmp_path_factory):
    """smollm2-135m-instruct (teacher) vs gemma3-270m (suspect) on 200 probes, short greedy answers."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from audit.collect import CollectOptions, run_collect

    db = tmp_path_factory.mktemp("bundled") / "audit.db"
    run_collect(CollectOptions(db_path=db, teacher="smollm2-135m-instruct", suspect="gemma3-270m", queries=200,
                               max_new_tokens=48, batch_size=16, device="cpu", quiet=True))
    return db


@pytest.fixture(scope="session")
def analyzed(bundled_audit):
    from audit.analyze import run_analysis

    return bundled_audit, run_analysis(bundled_audit, teacher_spec="smollm2-135m-instruct", use_judge=False,
                                       quiet=True)


def test_two_bundled_models_are_told_apart(analyzed):
    db, summary = analyzed
    with Store.open(db) as store:
        rows = {"headline" if r.headline else r.adversary: r
                for r in store.results(comparison="teacher-vs-suspect", category="all", split="all")}
    assert rows["discriminator-paired"].n == 200
    assert rows["discriminator-paired"].ci_low > 0.5, summary
    assert rows["headline"].ci_low > 0.5
    assert "teacher-likelihood" in rows, summary  # the teacher the user names reloads and scores


def test_embeddings_are_cached_with_their_cost(analyzed):
    from audit.adversaries.embeddings import EMBEDDER_NAME

    db, _ = analyzed
    with Store.open(db) as store:
        texts = {r["text"] for r in store.responses()}
        cached = store.cached(EMBEDDER_NAME, [sha256_text(t) for t in texts])
        cost = next(c for c in store.costs() if c["subject"] == "embedder")
        embedder = store.model("embedder")
    assert len(cached) == len(texts) and all(len(v) == 384 for v in cached.values())
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-5 for v in cached.values())  # a dot product is the cosine
    assert cost["queries"] == len(texts) and cost["tokens_in"] > 0 and cost["flops"] > 0
    assert embedder["fingerprint"].startswith("sha256:")


def test_real_judge_reads_verdicts_from_logprobs(bundled_audit):
    """gemma3's sliding-window layers too: verdicts read on a shared opening equal one full pass per prompt."""
    from audit.adversaries import judge
    from audit.adversaries.comparison import load_comparisons
    from audit.models import load_model

    with Store.open(bundled_audit) as store:
        comparisons, by_model = load_comparisons(store)
    comp = comparisons[0]
    references = judge.ReferencePool({r["probe_id"]: (r["category"], r["text"]) for r in by_model["teacher"]}, seed=0)
    prompts = [judge.pair_prompt(comp, i, order, references)[0] for i, order in judge.asking_order(comp)[:3]]
    model = load_model("gemma3-270m", device="cpu")
    verdicts = judge.VerdictReader(model).read(prompts)
    assert [v.method for v in verdicts] == ["score"] * 3
    assert all(v.position in ("first", "second") and v.p_first + v.p_second == pytest.approx(1.0) for v in verdicts)
    one_pass = [judge._from_logprobs(*(lp[0] for lp in model.score(p, ["A", "B"])))[1] for p in prompts]
    assert [v.p_first for v in verdicts] == pytest.approx(one_pass, abs=1e-3)

"""A realistic audit database for report tests and the report benchmark, built through the Store API only.

The report renders from the database alone, so its tests need a database
with every row shape the analysis writes (see /work/brief.md): models with
fingerprints, a suite with public and private probes in categories,
responses, judge verdicts in both A/B orders, results rows (headline,
per adversary, per category, per split, provenance gaps, similarity
cosines, MMD tests), budget points and costs. Switches leave parts out, so
tests can check that the report degrades into words instead of crashing.
The numbers are synthetic (seeded), shaped like a real analysis' output.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import replace
from pathlib import Path

from audit.adversaries import judge
from audit.adversaries.comparison import load_comparisons, probe_coverage
from audit.analysis.exhibits import record_exhibits
from audit.probes.types import Probe, Suite
from audit.results import ResultRow
from audit.stats import rank_by_evidence
from audit.store import Store

CATEGORIES = ["reasoning", "coding", "refusal", "creative-writing", "factual-recall", "instruction-following",
              "multilingual", "persona"]

# Hostile strings: markup, template syntax, a bidi override and a NUL byte, as model output might carry them.
HOSTILE = [
    "<script>alert('owned')</script>",
    "<img src=x onerror=alert(1)>",
    "</table></td></tr><h1>forged section</h1>",
    "{{ 7*7 }} {% for x in range(3) %}loop{% endfor %}",
    "evil\u202etxt.exe and \u2066isolate\u2069",
    "nul\x00byte and bell\x07",
]

ADVERSARIES = ["discriminator-single", "discriminator-paired", "judge", "judge-unfiltered", "teacher-likelihood"]


def _interval(p_hat: float, n: int) -> tuple[float, float]:
    """A Wald-style interval on the advantage scale; good enough for shaped fixture numbers."""
    half = 1.96 * math.sqrt(max(p_hat * (1 - p_hat), 1e-4) / max(n, 1)) * 2
    return p_hat * 2 - 1 - half, p_hat * 2 - 1 + half


def _t(n: int, rng: random.Random) -> dict:
    return {"tokens_in": 60 * n, "tokens_out": 110 * n, "wall_s": round(0.4 * n * rng.uniform(0.8, 1.2), 2),
            "device_s": 0.0, "flops": 2.0 * 135e6 * 170 * n, "adversary_wall_s": round(0.01 * n, 3)}


def _advantage_row(adversary: str, comparison: str, category: str, split: str, n: int, q: int,
                   true_adv: float, rng: random.Random) -> ResultRow:
    acc = min(max((1 + true_adv) / 2 + rng.gauss(0, 0.2 / math.sqrt(n)), 0.0), 1.0)
    low, high = _interval(acc, n)
    z = (2 * acc - 1) / max((high - low) / 3.92, 1e-6)
    p = math.erfc(abs(z) / math.sqrt(2)) / 2
    return ResultRow(adversary=adversary, comparison=comparison, category=category, split=split, metric="advantage",
                     n=n, estimate=2 * acc - 1, ci_low=max(low, -1.0), ci_high=min(high, 1.0), confidence=0.95,
                     ci_method="clopper-pearson", p_value=p, p_holm=min(1.0, p * 5), p_bh=min(1.0, p * 2), q=q,
                     t=_t(n, rng))


def _suite(name: str, split: str, n: int, categories: list[str], hostile: bool, salt: str) -> Suite:
    probes = []
    for i in range(n):
        category = categories[i % len(categories)]
        text = f"[{category} #{i}] Explain step by step how you would approach task {salt}-{i}."
        if hostile and i < len(HOSTILE):
            text += " " + HOSTILE[i]
        pid = hashlib.sha256(text.encode()).hexdigest()[:16]
        probes.append(Probe(id=pid, category=category, subcategory=f"{category}/basic", text=text, split=split))
    digest = hashlib.sha256("\n".join(p.id for p in probes).encode()).hexdigest()
    return Suite(name=name, version="1.0.0", hash=digest, probes=probes,
                 source="builtin" if split == "public" else "private",
                 private_seed_hash=None if split == "public" else hashlib.sha256(b"secret").hexdigest())


def _response_text(model: str, probe: Probe, hostile: bool, i: int) -> str:
    base = {
        "teacher": "Certainly! Here is a careful answer.\n\n1. First, restate the problem.\n2. Then solve it.",
        "suspect": "Certainly! Here is a careful answer.\n\n1. First, restate the task.\n2. Then solve it.",
    }.get(model, "Sure. The problem can be solved directly; the answer follows below.")
    text = f"{base}\n({probe.category}, probe {i})"
    if hostile:  # every response carries every hostile string, so any exhibit shows them all
        text += "\n" + "\n".join(HOSTILE)
    return text


def build_report_db(path: str | Path, *, n_probes: int = 48, categories: list[str] | None = None,
                    controls: tuple[str, ...] = ("qwen-small",), judge: bool = True, private: bool = True,
                    results: bool = True, budget: bool = True, hostile: bool = False,
                    distinguishable: bool = True, threshold: float | None = None, seed: int = 0,
                    failing: dict[str, int] | None = None, samples: int = 1) -> str:
    """Write an analysed audit database at ``path``; returns its audit id.

    ``distinguishable`` shapes the numbers: true gives a suspect that the
    adversaries tell apart (intervals above 0), false one they do not.
    ``failing`` maps a model name to how many probes (the first ones) its
    endpoint failed: recorded as errors, left out of the claims' probe set.
    ``samples`` is only the recorded setting (each model still answers once).
    """
    failing = failing or {}
    rng = random.Random(seed)
    categories = list(categories or CATEGORIES)
    if hostile:
        categories[0] = "<b>bold</b> & $x^2$ \u202eevil"
    store = Store.open(path)
    public = _suite("bbi-probes-v1", "public", n_probes, categories, hostile, "pub")
    suites = [public]
    if private:
        suites.append(_suite("bbi-probes-v1-private", "private", max(n_probes // 4, len(categories)),
                             categories, hostile, "priv"))
    config = {"teacher": "gemma3-270m", "suspect": "peft:gemma3-270m+examples/distilled",
              "controls": [f"hf:/models/{c}" for c in controls], "queries": n_probes, "samples": samples,
              "temperature": 0.0, "max_new_tokens": 128, "seed": 7, "judge": "smollm2-135m-instruct" if judge else None,
              "hardware": {"cpu": "2 cores", "gpu": None}, "software": {"python": "3.11.7", "torch": "2.13.0"}}
    if threshold is not None:
        config["epsilon_threshold"] = threshold
    audit_id = store.ensure_audit(config, suite_name=public.name, suite_version=public.version,
                                  suite_hash=public.hash, seed=7,
                                  private_seed_hash=suites[-1].private_seed_hash if private else None)
    for suite in suites:
        store.add_suite(suite)
    probes = [p for s in suites for p in s.probes]
    store.select_probes([p.id for p in probes])

    roles = [("teacher", "teacher", config["teacher"]), ("suspect", "suspect", config["suspect"])]
    roles += [(f"control:{c}", "control", f"hf:/models/{c}") for c in controls]
    model_ids = {}
    for name, role, spec in roles:
        fingerprint = "sha256:" + hashlib.sha256(spec.encode()).hexdigest()
        if hostile and role == "suspect":
            fingerprint += " <script>x()</script>"
        model_ids[name] = store.add_model(name=name, role=role, spec=spec, description={
            "backend": "transformers", "fingerprint": fingerprint, "param_count": 270_000_000,
            "device": "cpu", "dtype": "float32"})
    if judge:
        model_ids["judge"] = store.add_model(name="judge", role="judge", spec="smollm2-135m-instruct",
                                             description={"backend": "transformers", "fingerprint": "sha256:" + "ab" * 32,
                                                          "param_count": 135_000_000})
    params = {"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "seed": 7, "logprobs": False}
    for name, _, _ in roles:
        answers = [{"probe_id": p.id, "sample": 0, "params": params, "text": _response_text(name.split(":")[0], p, hostile, i),
                    "tokens_in": 40 + i % 17, "tokens_out": 80 + i % 33, "finish_reason": "stop",
                    "latency_s": 0.3 + (i % 5) / 10, "device_s": 0.0} for i, p in enumerate(probes)]
        for answer in answers[:failing.get(name, 0)]:
            answer.update(error="HTTP 403: refused", text=None)
        store.record_responses(model_ids[name], answers)
    common = probes[max(failing.values(), default=0):]
    if judge:
        _judgements(store, common, model_ids, hostile, distinguishable, rng)
    if results:
        coverage = probe_coverage(store, load_comparisons(store)[1])
        _results(store, len(common), len(probes), categories, controls, judge, private, distinguishable,
                 rng, coverage)
    if budget:
        _budget(store, len(probes), distinguishable, rng)
    record_exhibits(store)  # as the analysis does, once its results are written
    if judge:
        store.record_cost(subject="judge", stage="judge", queries=4 * len(probes),
                          tokens_in=900 * len(probes), tokens_out=4 * len(probes), wall_s=2.1 * len(probes))
    store.record_cost(subject="embedder", stage="similarity", queries=len(probes) * len(roles),
                      tokens_in=110 * len(probes) * len(roles), wall_s=0.02 * len(probes) * len(roles))
    store.update_audit(status="analysed")
    store.close()
    return audit_id


def _judgements(store: Store, probes: list[Probe], model_ids: dict, hostile: bool,
                distinguishable: bool, rng: random.Random) -> None:
    rows = []
    for i, p in enumerate(probes):
        teacher_q = store.query_id(model_ids["teacher"], p.id, 0)
        suspect_q = store.query_id(model_ids["suspect"], p.id, 0)
        p_teacher = min(max(rng.gauss(0.8 if distinguishable else 0.5, 0.15), 0.01), 0.99)
        for order, first, second in (("teacher-first", teacher_q, suspect_q), ("teacher-second", suspect_q, teacher_q)):
            p_first = p_teacher if order == "teacher-first" else 1 - p_teacher
            p_first = min(max(p_first + rng.gauss(0, 0.05), 0.01), 0.99)
            verdict = "first" if p_first >= 0.5 else "second"
            correct = int((verdict == "first") == (order == "teacher-first"))
            raw = f"Answer: {'A' if verdict == 'first' else 'B'}"
            if hostile:
                raw += " " + " ".join(HOSTILE)
            rows.append({"judge_id": model_ids["judge"], "comparison": "teacher-vs-suspect", "probe_id": p.id,
                         "sample": 0, "order": order, "first_query_id": first, "second_query_id": second,
                         "verdict": verdict, "correct": correct, "p_first": p_first, "p_second": 1 - p_first,
                         "method": "logprobs", "raw_output": raw, "latency_s": 0.5, "tokens_in": 900,
                         "tokens_out": 1})
    store.record_judgements(rows)


def _results(store: Store, n: int, q: int, categories: list[str], controls: tuple[str, ...],
             judge: bool, private: bool, distinguishable: bool, rng: random.Random, coverage: dict) -> None:
    adversaries = [a for a in ADVERSARIES if judge or not a.startswith("judge")]
    base = 0.45 if distinguishable else 0.02
    rows = []
    comparisons = {"teacher-vs-suspect": base, **{f"teacher-vs-control:{c}": 0.85 for c in controls}}
    for comparison, adv in comparisons.items():
        for a in adversaries:
            strength = adv * (0.6 if a.startswith("judge") else 1.0)
            overall = _advantage_row(a, comparison, "all", "all", n, q, strength, rng)
            if private:
                gap = rng.gauss(0, 0.05)
                overall.details["split_gap"] = {"public_minus_private": gap, "ci_low": gap - 0.2,
                                                   "ci_high": gap + 0.2, "method": "newcombe", "confidence": 0.95}
            rows.append(overall)
            for k, category in enumerate(categories):
                bump = (0.25 - 0.06 * k) if comparison == "teacher-vs-suspect" else 0.0
                rows.append(_advantage_row(a, comparison, category, "all", n // len(categories), q,
                                           min(strength + bump, 0.95) if distinguishable else strength, rng))
            splits = ["public", "private"] if private else ["public"]
            for split in splits:
                rows.append(_advantage_row(a, comparison, "all", split, n // 2, q, strength, rng))
        rows.append(ResultRow(adversary="similarity", comparison=comparison, metric="cosine", n=n,
                              estimate=0.9 - adv / 3, ci_low=0.88 - adv / 3, ci_high=0.92 - adv / 3, confidence=0.95,
                              ci_method="bootstrap", q=q, t={"tokens_in": 110 * n, "wall_s": 0.02 * n}))
        for category in categories:
            rows.append(ResultRow(adversary="similarity", comparison=comparison, category=category, metric="cosine",
                                  n=n // len(categories), estimate=0.88 - adv / 3, ci_low=0.84 - adv / 3,
                                  ci_high=0.92 - adv / 3, confidence=0.95, ci_method="bootstrap", q=q))
        rows.append(ResultRow(adversary="mmd", comparison=comparison, metric="mmd", n=n, estimate=0.05 + adv / 10,
                              ci_low=0.03 + adv / 10, ci_high=0.07 + adv / 10, confidence=0.95, ci_method="bootstrap",
                              p_value=0.001 if distinguishable else 0.4, p_holm=0.002 if distinguishable else 0.8,
                              q=q, t={"wall_s": 3.0}))
    main = [r for r in rows if r.comparison == "teacher-vs-suspect" and r.category == "all"
            and r.split == "all" and r.metric == "advantage"]
    best = max(main, key=lambda r: r.estimate)
    widen = 0.05
    rows.append(replace(best, headline=True, ci_low=best.ci_low - widen, ci_high=best.ci_high + widen,
                        ci_method="clopper-pearson, bonferroni", confidence=0.95,
                        details={"selection": "Bonferroni over adversaries",
                                 "candidates": [r.adversary for r in main]}))
    for c in controls:
        for a in ("discriminator-paired",):
            gap = 0.85 - base
            rows.append(ResultRow(adversary=a, comparison="provenance", control=c, metric="advantage-gap", n=n,
                                  estimate=gap, ci_low=gap - 0.12, ci_high=gap + 0.12, confidence=0.95,
                                  ci_method="paired bootstrap", q=q, t={"wall_s": 4.0}, details={"resamples": 2000}))
    for row in rows:  # as the analysis does: every claim carries the probe set it rests on
        row.details = {**row.details, "coverage": coverage}
    _as_analysed(store, rows)
    store.record_results(rows)


def _as_analysed(store: Store, rows: list[ResultRow]) -> None:
    """What the analysis adds to its rows: the judge's verdict summary on its teacher-vs-suspect rows, and each
    category row's evidence rank within its adversary and comparison."""
    pairs: dict[tuple[str, int], dict[str, dict]] = {}
    for j in store.judgements("teacher-vs-suspect"):
        pairs.setdefault((j["probe_id"], j["sample"]), {})[j["order"]] = j
    summary = {**judge.verdict_summary(list(pairs.values())), "verdict_methods": ["logprobs"]}
    families: dict[tuple, list[ResultRow]] = {}
    for row in rows:
        if row.judge_mode and row.comparison == "teacher-vs-suspect" and row.category == row.split == "all":
            row.details.update(summary)
        if row.category != "all":
            families.setdefault((row.adversary, row.comparison, row.metric), []).append(row)
    for family in families.values():
        for rank, row in enumerate(rank_by_evidence(family), start=1):
            row.details["evidence_rank"] = rank


def _budget(store: Store, n: int, distinguishable: bool, rng: random.Random) -> None:
    points = []
    target = 0.45 if distinguishable else 0.02
    steps = [k for k in (10, 25, 50, 100, 250, 500, 1000, 2500) if k < n] + [n]
    for strategy in ("stratified", "guided"):
        for k in steps:
            est = target * (1 - math.exp(-k / 60)) + rng.gauss(0, 0.02)
            half = 2.0 / math.sqrt(k)
            points.append({"comparison": "teacher-vs-suspect", "adversary": "discriminator-paired",
                           "strategy": strategy, "probes": k, "n": k, "advantage": est, "ci_low": max(est - half, -1),
                           "ci_high": min(est + half, 1), "confidence": 0.95})
    store.record_budget_points(points)

"""Budget curves on a synthetic adversary whose advantage per category is known."""

import numpy as np
import pytest

from audit.budget import budget_curve, guided_sample, stratified_sample
from audit.stats import accuracy_advantage

CATEGORY_ACC = {"chat": 0.55, "code": 0.6, "math": 0.65, "refusal": 0.95}


@pytest.fixture
def suite():
    """100 probes per category; each probe's verdict is fixed up front with its category's accuracy."""
    rng = np.random.default_rng(0)
    ids = [f"{c}-{i}" for c in CATEGORY_ACC for i in range(100)]
    cats = [pid.split("-")[0] for pid in ids]
    correct = {pid: bool(rng.random() < CATEGORY_ACC[c]) for pid, c in zip(ids, cats)}
    seen: list[list[str]] = []

    def evaluate(selected):
        seen.append(list(selected))
        return accuracy_advantage(sum(correct[p] for p in selected), len(selected))

    pilot = {pid: CATEGORY_ACC[c] + rng.normal(0, 0.05) for pid, c in zip(ids, cats) if int(pid.split("-")[1]) < 10}
    return ids, cats, evaluate, seen, pilot


def test_budget_curve_points_and_pilot_exclusion(suite):
    ids, cats, evaluate, seen, pilot = suite
    points = budget_curve(ids, cats, evaluate, pilot_scores=pilot, repeats=10, seed=1)
    pool = len(ids) - len(pilot)  # 360: 500 and 1000 probes are skipped, "all" is the pool
    assert sorted({(p["strategy"], p["probes"]) for p in points}) == sorted(
        (s, k) for s in ("guided", "stratified") for k in (50, 100, 250, pool))
    assert all(set(p) >= {"strategy", "probes", "n", "advantage", "ci_low", "ci_high", "confidence", "details"}
               for p in points)
    assert all(p["n"] == p["probes"] and p["ci_low"] <= p["advantage"] <= p["ci_high"] for p in points)
    assert not any(set(s) & set(pilot) for s in seen), "a pilot probe was evaluated"
    by = {(p["strategy"], p["probes"]): p for p in points}
    # guided spends small budgets on the most-disagreeing category (refusal: advantage 0.9)
    assert by[("guided", 50)]["advantage"] > 0.8 > by[("stratified", 50)]["advantage"]
    assert by[("guided", pool)]["advantage"] == by[("stratified", pool)]["advantage"]
    widths = [by[("stratified", k)]["ci_high"] - by[("stratified", k)]["ci_low"] for k in (50, 100, 250, pool)]
    assert widths == sorted(widths, reverse=True)
    assert by[("stratified", 50)]["details"]["repeats"] == 10 and by[("stratified", 50)]["details"]["estimate_sd"] > 0
    assert by[("guided", 50)]["details"]["pilot_excluded"] == len(pilot)


def test_budget_curve_without_pilot_is_stratified_only(suite):
    ids, cats, evaluate, _, _ = suite
    points = budget_curve(ids, cats, evaluate, budgets=(100, None), repeats=3)
    assert [(p["strategy"], p["probes"]) for p in points] == [("stratified", 100), ("stratified", 400)]


def test_budget_curve_refuses_bad_input(suite):
    ids, cats, evaluate, _, _ = suite
    with pytest.raises(ValueError, match="strateg"):
        budget_curve(ids, cats, evaluate, strategies=("greedy",))
    with pytest.raises(ValueError, match="interval"):
        budget_curve(ids, cats, lambda s: accuracy_advantage(len(s) // 2, len(s), 0.9), budgets=(50,), repeats=1)
    with pytest.raises(ValueError, match="pilot"):
        budget_curve(ids, cats, evaluate, pilot_scores={"unknown": 1.0})


def test_stratified_sample_is_proportional_and_guided_follows_scores():
    rng = np.random.default_rng(2)
    pool = [f"a{i}" for i in range(60)] + [f"b{i}" for i in range(30)] + [f"c{i}" for i in range(10)]
    cats = {p: p[0] for p in pool}
    chosen = stratified_sample(pool, cats, 20, rng)
    assert len(set(chosen)) == 20 and [sum(c[0] == k for c in chosen) for k in "abc"] == [12, 6, 2]
    guided = guided_sample(pool, cats, {"c": 0.9, "b": 0.5}, 15, rng)
    assert sorted(g[0] for g in guided) == ["b"] * 5 + ["c"] * 10

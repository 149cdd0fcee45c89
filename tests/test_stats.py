"""Soundness of the statistics, shown by simulation with known ground truth.

Each coverage test runs 1,000 simulated audits with a fixed seed and checks
that the claimed 95% intervals cover the true value in at least 94% of them
(the simulation's own standard error is about 0.7 points). Companion tests show
that the checks can fail: the shortcuts the module avoids (quoting the best
adversary's plain interval, resampling responses instead of probes) do fall
below the bar on the same simulations.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from audit.stats import (
    Estimate, accuracy_advantage, at_confidence, bootstrap_ci, clopper_pearson, correct_pvalues,
    estimate_gap, headline_bound, mmd_permutation_test, paired_bootstrap_difference,
    rank_by_evidence, rate_difference_advantage,
)

SIMS = 1000
NS = (50, 200, 1000)


def coverage(estimates, truth) -> float:
    truth = np.broadcast_to(np.asarray(truth, dtype=float), (len(estimates),))
    return float(np.mean([e.ci_low <= t <= e.ci_high for e, t in zip(estimates, truth)]))


# ---- exact intervals -----------------------------------------------------------


def test_clopper_pearson_matches_statsmodels_and_edges():
    for k, n in [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1000)]:
        assert clopper_pearson(k, n, 0.9) == pytest.approx(proportion_confint(k, n, 0.1, method="beta"), abs=1e-12)
    lo, hi = clopper_pearson(np.array([0, 5]), np.array([5, 5]))
    assert lo[0] == 0.0 and hi[1] == 1.0
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_accuracy_advantage_fields_and_empty():
    e = accuracy_advantage(70, 100)
    assert e.estimate == pytest.approx(0.4) and e.ci_low < 0.4 < e.ci_high
    assert e.p_value < 1e-4 and e.method == "clopper-pearson" and e.details["correct"] == 70
    empty = accuracy_advantage(0, 0)
    assert math.isnan(empty.estimate) and (empty.ci_low, empty.ci_high, empty.p_value) == (-1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        accuracy_advantage(5, 4)


def test_as_result_has_the_store_fields():
    r = accuracy_advantage(30, 50).as_result()
    assert set(r) == {"advantage", "ci_low", "ci_high", "n", "confidence", "ci_method", "p_value", "details"}
    assert r["ci_method"] == "clopper-pearson" and r["n"] == 50


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("acc", [0.5, 0.62, 0.9])
def test_accuracy_advantage_covers_bernoulli_truth(n, acc):
    rng = np.random.default_rng(n + int(acc * 100))
    ests = [accuracy_advantage(k, n) for k in rng.binomial(n, acc, SIMS)]
    assert coverage(ests, 2 * acc - 1) >= 0.94  # acc = 0.5 is the identity case: contains 0


def _learned_threshold(mu: float, s: float, rng):
    """Per simulated audit: a threshold learned on 100 training responses per model, and its true advantage.

    Teacher responses score N(mu, s²), suspect responses N(0, s²); the
    threshold is the midpoint of the training means. The truth the held-out
    interval must cover is the advantage of *that* threshold,
    TPR − FPR = Phi(t/s) − Phi((t − mu)/s).
    """
    thresh = (rng.normal(mu, s, (SIMS, 100)).mean(1) + rng.normal(0, s, (SIMS, 100)).mean(1)) / 2
    return thresh, norm.cdf(thresh / s) - norm.cdf((thresh - mu) / s)


@pytest.mark.parametrize("n", NS)
def test_rate_difference_covers_learned_threshold_truth_on_shared_probes(n):
    """Teacher and suspect answer the same n probes, with a shared per-probe effect: the rates are dependent."""
    rng = np.random.default_rng(7 + n)
    mu, probe_sd = 0.8, 1.0
    thresh, truth = _learned_threshold(mu, math.sqrt(1 + probe_sd**2), rng)
    probe = rng.normal(0, probe_sd, (SIMS, n))
    hits_a = (mu + probe + rng.normal(0, 1, (SIMS, n)) > thresh[:, None]).sum(1)
    hits_b = (probe + rng.normal(0, 1, (SIMS, n)) > thresh[:, None]).sum(1)
    ests = [rate_difference_advantage(a, n, b, n) for a, b in zip(hits_a, hits_b)]
    assert coverage(ests, truth) >= 0.94


@pytest.mark.parametrize("n", NS)
def test_accuracy_advantage_covers_learned_threshold_truth(n):
    """One held-out response per probe, the teacher's or the suspect's by a coin: independent items."""
    rng = np.random.default_rng(11 + n)
    mu = 1.0
    thresh, truth = _learned_threshold(mu, 1.0, rng)
    is_teacher = rng.random((SIMS, n)) < 0.5
    scores = rng.normal(0, 1, (SIMS, n)) + mu * is_teacher
    correct = ((scores > thresh[:, None]) == is_teacher).sum(1)
    ests = [accuracy_advantage(k, n) for k in correct]
    assert coverage(ests, truth) >= 0.94


@pytest.mark.parametrize("n", (50, 200))
def test_rate_difference_identity_contains_zero(n):
    rng = np.random.default_rng(3 + n)
    ests = [rate_difference_advantage(a, n, b, n) for a, b in rng.binomial(n, 0.3, (SIMS, 2))]
    assert coverage(ests, 0.0) >= 0.94
    assert np.mean([e.p_value <= 0.05 for e in ests]) <= 0.05 + 0.015


def test_at_confidence_recomputes_counts_and_refuses_bootstrap():
    e = accuracy_advantage(60, 100)
    wide = at_confidence(e, 0.99)
    assert wide.ci_low < e.ci_low and wide.ci_high > e.ci_high and wide.confidence == 0.99
    r = at_confidence(rate_difference_advantage(30, 50, 20, 50), 0.99)
    assert r.details["hits_a"] == 30 and r.confidence == 0.99
    with pytest.raises(ValueError, match="bootstrap"):
        at_confidence(bootstrap_ci(np.ones(10)), 0.99)


# ---- bootstrap over probes ---------------------------------------------------

BOOTS = {50: 1000, 200: 1000, 1000: 1000}  # resamples per simulated audit (a real audit: 2,000)


def _clustered_responses(n: int, rng, k: int = 3, phi: float = 4.0) -> np.ndarray:
    """n probes x k responses, each correct with the probe's own rate pi ~ Beta(0.7 phi, 0.3 phi); values 2c − 1.

    Responses to one probe are correlated (intra-probe correlation 1/(phi+1)),
    as in a real audit; the true mean is 2·0.7 − 1 = 0.4.
    """
    pi = rng.beta(0.7 * phi, 0.3 * phi, size=(n, 1))
    return 2.0 * (rng.random((n, k)) < pi) - 1.0


@pytest.mark.parametrize("n", (50, 200))  # n = 1000 on the same fast path: the paired test
def test_bootstrap_over_probes_covers_pooled_truth(n):
    rng = np.random.default_rng(21 + n)
    ests = [bootstrap_ci(_clustered_responses(n, rng), n_boot=BOOTS[n], seed=i) for i in range(SIMS)]
    assert coverage(ests, 0.4) >= 0.94


@pytest.mark.parametrize("n", (50, 200))
def test_bootstrap_fast_path_covers_skewed_mean(n):
    """One skewed value per probe (like a per-probe cosine): the vectorised fast path (n = 1000: paired test).

    """
    rng = np.random.default_rng(31 + n)
    ests = [bootstrap_ci(rng.beta(8, 2, n), n_boot=BOOTS[n], seed=i) for i in range(SIMS)]
    assert coverage(ests, 0.8) >= 0.94


def test_resampling_responses_instead_of_probes_undercovers():
    """Why the unit is the probe: treating correlated responses as independent gives too-narrow intervals."""
    rng = np.random.default_rng(5)
    data = [_clustered_responses(200, rng, phi=1.0) for _ in range(400)]
    by_probe = [bootstrap_ci(d, n_boot=300, seed=i) for i, d in enumerate(data)]
    by_response = [bootstrap_ci(d.ravel(), n_boot=300, seed=i) for i, d in enumerate(data)]
    assert coverage(by_probe, 0.4) >= 0.93
    assert coverage(by_response, 0.4) < 0.90


def test_bootstrap_ragged_groups_callables_and_null():
    rng = np.random.default_rng(0)
    rect = _clustered_responses(300, rng)
    ragged = list(rect)
    a, b = bootstrap_ci(rect, seed=1), bootstrap_ci(ragged, seed=1)
    assert (a.estimate, a.ci_low, a.ci_high) == pytest.approx((b.estimate, b.ci_low, b.ci_high))
    med = bootstrap_ci(ragged, statistic=np.median, n_boot=200)
    rows = bootstrap_ci(rect, statistic=lambda r: r.mean(), n_boot=200, seed=1)
    assert med.ci_low <= med.estimate <= med.ci_high and rows.estimate == pytest.approx(a.estimate)
    tested = bootstrap_ci(rect, null=0.0)
    assert tested.p_value < 0.001 and bootstrap_ci(rect, null=round(a.estimate, 2)).p_value > 0.5
    assert math.isnan(bootstrap_ci(np.array([1.0])).ci_low)
    with pytest.raises(ValueError):
        bootstrap_ci(rect, statistic="median")


def test_bootstrap_identity_contains_zero_and_sign_flip_has_size():
    rng = np.random.default_rng(9)
    ests = [bootstrap_ci(rng.choice([-1.0, 1.0], 100), n_boot=400, seed=i, null=0.0) for i in range(SIMS)]
    assert coverage(ests, 0.0) >= 0.94
    assert np.mean([e.p_value <= 0.05 for e in ests]) <= 0.065


def _paired_probes(n: int, rng, gap: float):
    """Per-probe 0/1 outcomes of two comparisons on the same probes, sharing the probe's difficulty."""
    pi = rng.uniform(0.3, 0.8, n)
    return (rng.random(n) < pi + gap).astype(float), (rng.random(n) < pi).astype(float)


@pytest.mark.parametrize("n", NS)
def test_paired_bootstrap_covers_true_gap(n):
    rng = np.random.default_rng(41 + n)
    ests = [paired_bootstrap_difference(*_paired_probes(n, rng, 0.1), n_boot=BOOTS[n], seed=i) for i in range(SIMS)]
    assert coverage(ests, 0.1) >= 0.94


@pytest.mark.parametrize("n", (50, 200))
def test_paired_bootstrap_identity_contains_zero_with_nominal_size(n):
    rng = np.random.default_rng(51 + n)
    ests = [paired_bootstrap_difference(*_paired_probes(n, rng, 0.0), n_boot=400, seed=i) for i in range(SIMS)]
    assert coverage(ests, 0.0) >= 0.94
    assert np.mean([e.p_value <= 0.05 for e in ests]) <= 0.065


def test_paired_bootstrap_drops_nan_probes_and_checks_shapes():
    e = paired_bootstrap_difference([1, 0, np.nan, 1], [0, 0, 1, np.nan])
    assert e.details["dropped_probes"] == 2 and e.n == 2 and e.estimate == pytest.approx(0.5)
    assert e.method == "paired-bootstrap"
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1, 0], [1, 0, 1])


# ---- headline bound -------------------------------------------------------------


def _adversary_runs(accs, n: int, rng) -> list[dict[str, Estimate]]:
    counts = rng.binomial(n, accs, size=(SIMS, len(accs)))
    return [{f"adv{j}": accuracy_advantage(k, n) for j, k in enumerate(row)} for row in counts]


def test_headline_bonferroni_keeps_coverage_of_selected_adversary():
    accs = np.array([0.62, 0.60, 0.60, 0.55])
    runs = _adversary_runs(accs, 200, np.random.default_rng(61))
    heads = [headline_bound(r) for r in runs]
    truth = [2 * accs[int(h.details["selected"][3:])] - 1 for h in heads]
    assert coverage(heads, truth) >= 0.94
    h = heads[0]
    assert h.method == "bonferroni" and h.details["m"] == 4
    assert h.details["per_test_confidence"] == pytest.approx(1 - 0.05 / 4)
    assert h.details["class_interval"][0] <= h.details["class_interval"][1]


def test_headline_without_correction_would_undercover():
    """The test above can fail: quoting the winner's plain 95% interval misses far more often."""
    accs = np.full(6, 0.6)
    runs = _adversary_runs(accs, 200, np.random.default_rng(62))
    naive = [max(r.values(), key=lambda e: e.estimate) for r in runs]
    honest = [headline_bound(r) for r in runs]
    assert coverage(naive, 0.2) < 0.92
    assert coverage(honest, 0.2) >= 0.94


def test_headline_holdout_reports_heldout_interval():
    accs = np.array([0.65, 0.6, 0.6])
    rng = np.random.default_rng(63)
    selection, heldout = _adversary_runs(accs, 100, rng), _adversary_runs(accs, 200, rng)
    heads = [headline_bound(s, method="holdout", heldout=h) for s, h in zip(selection, heldout)]
    truth = [2 * accs[int(h.details["selected"][3:])] - 1 for h in heads]
    assert coverage(heads, truth) >= 0.94
    assert all(h.n == 200 and h.method == "holdout" for h in heads[:5])


def test_headline_mixed_estimators_and_refusals():
    ests = {"judge": accuracy_advantage(130, 200), "discriminator-single": rate_difference_advantage(150, 200, 60, 200),
            "empty": accuracy_advantage(0, 0)}
    h = headline_bound(ests)
    assert h.details["selected"] == "discriminator-single" and h.details["m"] == 2
    assert h.ci_low < ests["discriminator-single"].ci_low  # stricter per-test level widens the interval
    with pytest.raises(ValueError):
        headline_bound({"sim": bootstrap_ci(np.ones(20)), "judge": accuracy_advantage(10, 20)})
    with pytest.raises(ValueError):
        headline_bound(ests, method="holdout")
    with pytest.raises(ValueError):
        headline_bound({"empty": accuracy_advantage(0, 0)})


def test_estimate_gap_covers_split_difference():
    rng = np.random.default_rng(71)
    pub, priv = rng.binomial(300, 0.7, SIMS), rng.binomial(200, 0.6, SIMS)
    gaps = [estimate_gap(accuracy_advantage(a, 300), accuracy_advantage(b, 200)) for a, b in zip(pub, priv)]
    assert coverage(gaps, 0.2) >= 0.94
    assert gaps[0].p_value is not None and gaps[0].n == 500


# ---- two-sample test ---------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_mmd_has_nominal_size_under_null(kernel):
    rng = np.random.default_rng(81)
    ps = [mmd_permutation_test(rng.normal(size=(40, 5)), rng.normal(size=(40, 5)), kernel=kernel,
                               n_perm=199, seed=i).p_value for i in range(200)]
    assert 0.02 <= np.mean(np.array(ps) <= 0.05) <= 0.085


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_mmd_has_power_under_shift(kernel):
    rng = np.random.default_rng(82)
    ps = [mmd_permutation_test(rng.normal(size=(40, 5)), rng.normal(0.5, 1, size=(40, 5)), kernel=kernel,
                               n_perm=199, seed=i).p_value for i in range(50)]
    assert np.mean(np.array(ps) <= 0.05) >= 0.9


def test_mmd_estimate_fields_and_subsampling():
    rng = np.random.default_rng(83)
    e = mmd_permutation_test(rng.normal(size=(300, 3)), rng.normal(size=(50, 3)), max_per_sample=100, n_perm=99)
    assert e.details["subsampled"] and e.details["n_x"] == 100 and e.n == 150
    assert math.isnan(e.ci_low) and e.details["bandwidth"] > 0 and 0 < e.p_value <= 1
    same = mmd_permutation_test(np.ones((10, 2)), np.ones((10, 2)), n_perm=99)
    assert same.estimate == pytest.approx(0.0) and same.p_value == 1.0
    with pytest.raises(ValueError):
        mmd_permutation_test(np.ones((5, 2)), np.zeros((5, 2)), kernel="poly")


# ---- multiplicity and ranking ----------------------------------------------------------


def test_correct_pvalues_hand_example_and_nan():
    p = [0.01, 0.04, None, 0.03, 0.005, float("nan")]
    holm, bh = correct_pvalues(p)
    assert holm == pytest.approx([0.03, 0.06, None, 0.06, 0.02, None])
    assert bh == pytest.approx([0.02, 0.04, None, 0.04, 0.02, None])
    present = [0.01, 0.04, 0.03, 0.005]
    assert [v for v in holm if v is not None] == pytest.approx(multipletests(present, method="holm")[1])
    assert [v for v in bh if v is not None] == pytest.approx(multipletests(present, method="fdr_bh")[1])
    assert correct_pvalues([None]) == ([None], [None])


def test_rank_by_evidence_orders_by_corrected_p_then_lower_bound():
    rows = [
        {"category": "code", "p_holm": 0.2, "ci_low": 0.1, "advantage": 0.5},
        {"category": "math", "p_holm": 0.001, "ci_low": 0.05, "advantage": 0.2},
        {"category": "chat", "p_holm": 0.001, "ci_low": 0.15, "advantage": 0.3},
        {"category": "empty", "p_holm": None, "ci_low": float("nan"), "advantage": float("nan")},
    ]
    ranked = rank_by_evidence(rows)
    assert [r["category"] for r in ranked] == ["chat", "math", "code", "empty"]
    assert [r["evidence_rank"] for r in ranked] == [1, 2, 3, 4]

"""The CMI estimate of an exposure policy: its arithmetic, its limits, and utility beside it."""

import math

import numpy as np
import pytest

from audit.cmi import Recorded, leakage, recorded_distributions
from audit.exposure import parse_policy
from audit.store import Store
from audit.topk import TopK


def response(probe, ids, probs):
    """One greedy response: per position the recorded ids and probabilities, the first (most likely) chosen."""
    chosen = [row[0] for row in ids]
    top = TopK(tokens=[[str(i) for i in row] for row in ids], logprobs=np.log(probs).tolist(), ids=ids,
               chosen_tokens=[str(c) for c in chosen], chosen_ids=chosen)
    return Recorded(probe_id=probe, query_id=f"q-{probe}", top=top)


def random_responses(n_probes=12, positions=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_probes):
        ids, probs = [], []
        for _ in range(positions):
            row = rng.choice(10, size=k, replace=False).tolist()
            weights = np.sort(rng.dirichlet(np.ones(k + 1)))[::-1]
            ids.append(row)
            probs.append(weights[:k].tolist())
        out.append(response(f"p{p}", ids, probs))
    return out


def test_the_estimate_is_the_mean_divergence_from_the_label_conditional_mean():
    first = response("a", [[1, 2]], [[0.6, 0.3]])
    second = response("b", [[1, 3]], [[0.8, 0.1]])
    result = leakage([first, second], parse_policy("top-k:2"), n_boot=200)
    # label 1 at both positions; mean: token 1 .7, token 2 .15, token 3 .05, tail .1
    kl_a = 0.6 * math.log(0.6 / 0.7) + 0.3 * math.log(0.3 / 0.15) + 0.1 * math.log(0.1 / 0.1)
    kl_b = 0.8 * math.log(0.8 / 0.7) + 0.1 * math.log(0.1 / 0.05) + 0.1 * math.log(0.1 / 0.1)
    assert result.cmi.estimate == pytest.approx((kl_a + kl_b) / 2)
    assert (result.probes, result.tokens, result.agreement.estimate) == (2, 2, 1.0)


def test_text_under_greedy_decoding_carries_nothing_beyond_its_label():
    result = leakage(random_responses(), parse_policy("text"), n_boot=200)
    assert result.cmi.estimate == pytest.approx(0.0, abs=1e-12) and result.agreement.estimate == 1.0


def test_exposing_fewer_tokens_never_carries_more():
    """Keeping only the label's token lumps the rest into the tail, the same map for every position of a label:
    the divergence can only shrink (data processing)."""
    responses = random_responses()
    wide, narrow = (leakage(responses, parse_policy(p), n_boot=200).cmi.estimate for p in ("top-k:4", "top-k:1"))
    assert 0 < narrow < wide


def test_the_interval_resamples_probes_and_brackets_the_estimate():
    result = leakage(random_responses(), parse_policy("top-k:4"), n_boot=500)
    assert result.cmi.ci_low < result.cmi.estimate < result.cmi.ci_high and result.cmi.n == 12


def test_heavy_noise_costs_utility():
    result = leakage(random_responses(), parse_policy("top-k:4+noise:3", seed=1), n_boot=200)
    assert 0 < result.agreement.estimate < 1 and result.agreement.ci_low < result.agreement.ci_high


def test_recorded_distributions_are_read_from_a_store_with_their_probes(tmp_path):
    from audit.probes.types import Probe, Suite

    store = Store.open(tmp_path / "a.db")
    store.ensure_audit({"teacher": "t"}, suite_name="t", suite_version="1", suite_hash="h", seed=0)
    store.add_suite(Suite(name="t", version="1", hash="h", probes=[
        Probe(id=f"p{i}", category="c", subcategory="s", text=f"q{i}") for i in range(3)]))
    store.select_probes(["p0", "p1", "p2"])
    mid = store.add_model(name="teacher", role="teacher", spec="t", description={})
    blob = response("x", [[1, 2]], [[0.6, 0.3]]).top.pack()
    store.record_responses(mid, [{"probe_id": "p0", "sample": 0, "params": {}, "text": "1", "top_logprobs": blob},
                               {"probe_id": "p1", "sample": 0, "params": {}, "text": "no distributions"}])
    [got] = recorded_distributions(store, mid)
    assert got.probe_id == "p0" and got.top.ids == [[1, 2]] and got.query_id == store.query_id(mid, "p0", 0)

"""Exposure policies: parsed from their names, each step's arithmetic, seeded noise, and one-line refusals."""

import numpy as np
import pytest

from audit.errors import AuditError
from audit.exposure import STEPS, Exposed, parse_policy, register_step
from audit.topk import TopK


def recorded():
    """Two positions, three recorded tokens each: probabilities .6/.3/.05 (tail .05) and .5/.2/.1 (tail .2)."""
    top = TopK(tokens=[["a", "b", "c"], ["d", "e", "f"]], logprobs=np.log([[0.6, 0.3, 0.05], [0.5, 0.2, 0.1]]).tolist(),
               ids=[[1, 2, 3], [4, 5, 6]], chosen_tokens=["b", "d"], chosen_ids=[2, 4])
    return Exposed.recorded(top)


def test_text_exposes_the_generated_token_with_certainty():
    out = parse_policy("text").expose(recorded(), "q")
    assert out.ids.tolist() == [[2], [4]] and out.probs.tolist() == [[1.0], [1.0]] and out.tail.tolist() == [0, 0]


def test_top_k_keeps_the_k_most_likely_and_leaves_the_rest_to_the_tail():
    out = parse_policy("top-k:2").expose(recorded(), "q")
    assert out.ids.tolist() == [[1, 2], [4, 5]]
    assert out.tail == pytest.approx([0.1, 0.3])


def test_top_k_above_what_was_recorded_is_one_line():
    with pytest.raises(AuditError, match="recorded with only 3 tokens per position .*--top-logprobs 5"):
        parse_policy("top-k:5").expose(recorded(), "q")


def test_temperature_tempers_every_bucket_the_tail_as_one():
    out = parse_policy("top-k:3+temperature:2").expose(recorded(), "q")
    first = np.sqrt([0.6, 0.3, 0.05, 0.05])
    assert out.buckets()[0] == pytest.approx(first / first.sum())
    assert out.top1().tolist() == [1, 4]


def test_noise_is_seeded_by_the_policy_seed_and_the_response_alone():
    policy = parse_policy("top-k:3+noise:0.5", seed=7)
    a, again = policy.expose(recorded(), "q1"), policy.expose(recorded(), "q1")
    other, reseeded = policy.expose(recorded(), "q2"), parse_policy("top-k:3+noise:0.5", seed=8).expose(recorded(), "q1")
    assert np.array_equal(a.probs, again.probs)
    assert not np.allclose(a.probs, other.probs) and not np.allclose(a.probs, reseeded.probs)
    assert a.buckets().sum(axis=1) == pytest.approx([1, 1])
    assert policy.recorded() == {"policy": "top-k:3+noise:0.5", "seed": 7}
    assert np.allclose(parse_policy("top-k:3+noise:0").expose(recorded(), "q").probs, recorded().probs)


def test_round_rounds_probabilities_and_never_exposes_more_than_all_the_mass():
    exact = Exposed(ids=np.array([[1, 2, 3]]), probs=np.array([[0.62, 0.27, 0.04]]), chosen=np.array([1]))
    out = parse_policy("top-k:3+round:1").expose(exact, "q")
    assert out.probs[0] == pytest.approx([0.6, 0.3, 0.0]) and out.tail == pytest.approx([0.1])
    up = Exposed(ids=np.array([[1, 2, 3]]), probs=np.array([[0.35, 0.35, 0.3]]), chosen=np.array([1]))
    rounded = parse_policy("round:1").expose(up, "q")
    assert rounded.probs.sum() == pytest.approx(1.0) and rounded.tail == pytest.approx([0.0])


@pytest.mark.parametrize("text, message", [
    ("logits:5", "unknown exposure policy step 'logits:5' in 'logits:5'; known: noise:SIGMA, purify:STRENGTH, round:D, "
                 "temperature:T, text, top-k:K"),
    ("top-k", "write it as top-k:K"),
    ("text:3", "write it as text"),
    ("top-k:0", "top-k:0: needs a whole number > 0, not '0'"),
    ("top-k:20+temperature:-1", "temperature:-1: needs a number > 0"),
    ("top-k:20+noise:nan", "noise:nan: needs a number >= 0"),
])
def test_a_bad_policy_is_one_line_naming_the_known_steps(text, message):
    with pytest.raises(AuditError) as caught:
        parse_policy(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_vendor_registers_its_own_step_and_names_it_in_a_policy():
    @register_step("floor", "P")
    class Floor:
        def __init__(self, text):
            self.p = float(text)

        def apply(self, exposed, rng):
            return Exposed(ids=exposed.ids, probs=np.where(exposed.probs < self.p, 0.0, exposed.probs),
                           chosen=exposed.chosen)

    try:
        out = parse_policy("top-k:3+floor:0.25").expose(recorded(), "q")
        assert np.allclose(out.probs, [[0.6, 0.3, 0.0], [0.5, 0.0, 0.0]])
    finally:
        del STEPS["floor"]


def synthetic(probes, seed):
    """Greedy responses over a 12-token vocabulary, 4 tokens exposed per position, sharply varying shapes."""
    rng = np.random.default_rng(seed)
    responses = {}
    for p in range(probes):
        ids = np.array([rng.choice(12, size=4, replace=False) for _ in range(20)])
        probs = np.sort(rng.dirichlet(np.full(5, 0.7), size=20), axis=1)[:, ::-1][:, :4]
        responses[f"q{p}"] = Exposed(ids=ids, probs=probs, chosen=ids[:, 0].copy())
    return responses


def cmi_of(responses, policy):
    from audit.cmi import Recorded, leakage

    recorded = [Recorded(probe_id=key, query_id=key, top=TopK(
        tokens=[[str(i) for i in row] for row in e.ids], logprobs=np.log(e.probs).tolist(), ids=e.ids.tolist(),
        chosen_tokens=[str(c) for c in e.chosen], chosen_ids=e.chosen.tolist())) for key, e in responses.items()]
    return leakage(recorded, policy, n_boot=300)


@pytest.mark.parametrize("strength", ["0.5", "1"])
def test_purify_lowers_the_cmi_estimate_on_held_out_responses_and_keeps_every_top_1(strength):
    fit, held_out = synthetic(30, seed=0), synthetic(30, seed=1)
    policy = parse_policy(f"top-k:4+purify:{strength}").fitted(fit)
    raw, purified = cmi_of(held_out, parse_policy("top-k:4")), cmi_of(held_out, policy)
    assert purified.agreement.estimate == 1.0 and purified.agreement.ci_low == 1.0
    assert purified.cmi.ci_high < raw.cmi.ci_low, (purified.cmi, raw.cmi)
    step = policy.recorded()["fitted"]["steps"][0]
    assert step["cmi_after"] < step["cmi_before"] and step["positions"] == 600


def test_a_stronger_purification_removes_more_and_distorts_more():
    fit = synthetic(30, seed=0)
    gentle, strong = (parse_policy(f"purify:{s}").fitted(fit).recorded()["fitted"]["steps"][0] for s in ("0.2", "0.9"))
    assert strong["cmi_after"] < gentle["cmi_after"] and strong["distortion"] > gentle["distortion"]


def test_purify_is_deterministic_and_records_what_it_was_fitted_on():
    fit = synthetic(10, seed=0)
    first, again = (parse_policy("top-k:3+purify:0.5", seed=4).fitted(fit) for _ in range(2))
    assert first.recorded() == again.recorded()
    recorded = first.recorded()
    assert recorded["policy"] == "top-k:3+purify:0.5" and recorded["seed"] == 4
    assert recorded["fitted"]["on"]["responses"] == 10 and len(recorded["fitted"]["on"]["query_ids_sha256"]) == 64
    step = recorded["fitted"]["steps"][0]
    assert step["step"] == "purify:0.5" and len(step["theta"]) == 3 and len(step["label_means_sha256"]) == 64
    out = first.expose(fit["q0"], "q0")
    assert np.array_equal(out.ids, first.expose(fit["q0"], "q0").ids) and out.ids.shape == (20, 3)
    assert np.all(out.buckets() >= 0) and out.buckets().sum(axis=1) == pytest.approx(np.ones(20))


def test_purify_mixes_toward_certainty_on_a_label_it_never_saw():
    fit = {"q": Exposed(ids=np.array([[1, 2]]), probs=np.array([[0.6, 0.3]]), chosen=np.array([1]))}
    policy = parse_policy("purify:1").fitted(fit)
    unseen = Exposed(ids=np.array([[5, 6]]), probs=np.array([[0.5, 0.2]]), chosen=np.array([5]))
    out = policy.expose(unseen, "other")
    assert out.probs[0, 0] > 0.5 and out.probs[0, 1] < 0.2 and out.top1().tolist() == [5]


def test_purify_must_be_fitted_and_its_strength_is_at_most_1():
    with pytest.raises(ValueError, match="must be fitted"):
        parse_policy("purify:0.5").expose(recorded(), "q")
    with pytest.raises(AuditError, match=r"purify:1.5: needs a number > 0 and <= 1"):
        parse_policy("top-k:3+purify:1.5")
    assert parse_policy("top-k:3").fitted({"q": recorded()}).recorded() == {"policy": "top-k:3", "seed": 0}

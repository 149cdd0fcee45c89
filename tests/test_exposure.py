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
    ("logits:5", "unknown exposure policy step 'logits:5' in 'logits:5'; known: noise:SIGMA, round:D, "
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

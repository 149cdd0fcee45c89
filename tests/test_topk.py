"""The packed top-k blob: lossless to float32, compact, and refused in one line when malformed."""

import numpy as np
import pytest

from audit.errors import StoreError
from audit.topk import TopK


def example(ids=True):
    return TopK(tokens=[["the", " a", "x"], ["cat", "the"]], logprobs=[[-0.2, -1.9, -4.0], [-0.05, -3.5]],
                ids=[[11, 4, 300], [42, 11]] if ids else None, chosen_tokens=["the", "dog"],
                chosen_ids=[11, 77] if ids else None)


@pytest.mark.parametrize("ids", [True, False])
def test_a_packed_distribution_unpacks_to_the_same_tokens_and_float32_values(ids):
    top = example(ids)
    back = TopK.unpack(top.pack())
    assert back.tokens == top.tokens and back.ids == top.ids
    assert back.chosen_tokens == top.chosen_tokens and back.chosen_ids == top.chosen_ids
    assert np.allclose(np.concatenate(back.logprobs), np.concatenate(top.logprobs), atol=1e-6)


def test_a_repeated_token_is_stored_once_in_the_blob():
    texts = [f"a rather long token {j}" for j in range(20)]
    many = TopK(tokens=[texts] * 100, logprobs=[[-1.0] * 20] * 100, ids=[list(range(20))] * 100)
    assert len(many.pack()) < 100 * 20 * 8 + 1000  # 8 bytes an entry, each text once (not 2000 times)


def test_dense_pads_positions_with_fewer_entries():
    ids, probs = example().dense()
    assert ids.tolist() == [[11, 4, 300], [42, 11, -1]]
    assert probs[1, 2] == 0 and probs[0, 0] == pytest.approx(np.exp(-0.2))


@pytest.mark.parametrize("blob", [b"", b"DATK1\x05\x00\x00\x00{bad}", example().pack()[:-3],
                                  example().pack().replace(b'"counts":[3,2]', b'"counts":[3,9]')])
def test_a_malformed_blob_is_one_line(blob):
    with pytest.raises(StoreError, match="malformed"):
        TopK.unpack(blob)

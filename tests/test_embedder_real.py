"""The bundled embedder (marked real): its worker threads give sentence-transformers' own vectors, in input order."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.real

TEXTS = [
    "Sure! Here is an overview:\n\n1. **Lists** keep their order.\n2. **Sets** do not.",
    "A short one.",
    "The quick brown fox jumps over the lazy dog. " * 20,  # past 128 word pieces: truncated alike
    "Paris is the capital of France.",
    "def f(x):\n    return x + 1",
] * 7  # 35 texts: more than one batch, and batches of unequal lengths


@pytest.fixture(scope="module")
def embedders():
    from audit import threads
    from audit.adversaries.embeddings import Embedder

    one = Embedder(workers=1, batch_size=8)
    two = Embedder(workers=2, batch_size=8, policy=threads.choose(2))  # two workers even where one CPU is allowed
    two._model = one._load()
    return one, two


def test_worker_threads_match_sentence_transformers(embedders):
    one, two = embedders
    reference = one._model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    for embedder in (one, two):
        vectors, _ = embedder.encode(TEXTS)
        assert vectors.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
        assert (vectors * reference).sum(axis=1).min() > 0.999999  # the same batches: the same vectors, in order


def test_workers_leave_torch_threads_as_they_found_them(embedders):
    import torch

    before = torch.get_num_threads()
    embedders[1].encode(TEXTS[:3])
    assert torch.get_num_threads() == before
    assert embedders[1].encode([])[0].shape == (0, 384)

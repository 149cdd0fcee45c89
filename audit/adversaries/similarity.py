"""Semantic similarity: the baseline that indistinguishability goes beyond.

Mean cosine of the sentence embeddings of the teacher's and the other model's
responses to the same probe. High similarity says the two say similar things;
it does not say an adversary cannot tell them apart (two models can agree on
content and differ in every habit), which is why it is reported as a
baseline (metric ``cosine``) and never as an advantage.
"""

from __future__ import annotations

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.stats import Estimate, bootstrap_ci


def pair_cosines(comp: Comparison) -> np.ndarray:
    """Cosine per aligned pair (embeddings are L2-normalised, so it is a dot product)."""
    return np.einsum("ij,ij->i", comp.teacher_emb.astype(float), comp.other_emb.astype(float))


def per_probe_cosine(comp: Comparison) -> dict[str, float]:
    """Probe id -> mean cosine over its samples."""
    cos = pair_cosines(comp)
    sums: dict[str, list[float]] = {}
    for pid, c in zip(comp.probe_ids.tolist(), cos.tolist()):
        sums.setdefault(pid, []).append(c)
    return {pid: float(np.mean(v)) for pid, v in sums.items()}


def cosine_estimate(comp: Comparison, mask: np.ndarray, confidence: float, seed: int) -> Estimate:
    """Mean cosine over the probes in ``mask``, with a bootstrap interval over probes."""
    cos = pair_cosines(comp)[mask]
    pids = comp.probe_ids[mask]
    groups = [cos[pids == pid] for pid in dict.fromkeys(pids.tolist())]
    est = bootstrap_ci(groups, "mean", confidence, 2000, seed)
    est.details["embedder"] = "all-MiniLM-L6-v2"
    est.details["what"] = "mean cosine of teacher and other responses to the same probe"
    return est

"""Two-sample test (MMD) on response embeddings: model-free evidence that two response sets differ.

No learning and no judge: a kernel test of whether the teacher's and the
other model's responses could come from the same distribution, with a
permutation p-value. It says *whether* the sets differ, not by how much an
adversary could exploit it, so its row carries MMD² and the p-value (metric
``mmd``) rather than an advantage.
"""

from __future__ import annotations

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.stats import Estimate, mmd_permutation_test

N_PERM = 500


def mmd_estimate(comp: Comparison, mask: np.ndarray, confidence: float, seed: int) -> Estimate:
    """RBF-kernel MMD² (median-heuristic bandwidth) between teacher and other embeddings in ``mask``."""
    est = mmd_permutation_test(comp.teacher_emb[mask], comp.other_emb[mask], kernel="rbf", n_perm=N_PERM,
                               seed=seed, confidence=confidence)
    est.details["embedder"] = "all-MiniLM-L6-v2"
    return est

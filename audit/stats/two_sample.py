"""Kernel two-sample test (MMD) between embeddings: model-free evidence that two models answer differently.

A permutation test with no interval (MMD² is a degenerate U-statistic near
zero, where bootstrap intervals are not valid): the evidence is its p-value.
"""

from __future__ import annotations

import math

import numpy as np

from audit.stats.estimate import _BOOT_CHUNK, Estimate


def _kernel_matrix(Z: np.ndarray, kernel: str, rng: np.random.Generator) -> tuple[np.ndarray, float | None]:
    """Gram matrix of the pooled sample and the RBF bandwidth (median heuristic) if any."""
    if kernel == "linear":
        return Z @ Z.T, None
    if kernel != "rbf":
        raise ValueError(f"kernel must be 'rbf' or 'linear', not {kernel!r}")
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    sq = np.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * (Z @ Z.T), 0.0)
    sub = rng.choice(len(Z), size=min(len(Z), 1000), replace=False)
    pair = sq[np.ix_(sub, sub)][np.triu_indices(len(sub), k=1)]
    bandwidth = float(np.sqrt(np.median(pair))) if pair.size else 0.0
    bandwidth = bandwidth if bandwidth > 0 else 1.0  # all points equal: any bandwidth gives MMD 0
    return np.exp(-sq / (2.0 * bandwidth**2)), bandwidth


def _mmd2_unbiased(K0: np.ndarray, row_sums: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each row of `labels` (1 = first sample), from a zero-diagonal Gram matrix.

    With z the indicator of the first sample: Σ_xx = zᵀK₀z, Σ_xy = zᵀr − Σ_xx,
    Σ_yy = 1ᵀr − 2zᵀr + Σ_xx (r = row sums of K₀), so every permutation costs
    one matrix product — all permutations of a chunk in one BLAS call.
    """
    z = labels.astype(K0.dtype)
    n = z.sum(axis=1)
    m = K0.shape[0] - n
    s_xx = np.einsum("pi,pi->p", z @ K0, z)
    s_xr = z @ row_sums
    s_yy = row_sums.sum() - 2.0 * s_xr + s_xx
    s_xy = s_xr - s_xx
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def mmd_permutation_test(X, Y, *, kernel: str = "rbf", n_perm: int = 500, seed: int = 0,
                         confidence: float = 0.95, max_per_sample: int = 2000) -> Estimate:
    """Kernel two-sample test (MMD) between two sets of embeddings: model-free evidence of difference.

    Unbiased MMD² with an RBF kernel whose bandwidth is the median pairwise
    distance of the pooled sample (median heuristic, so no tuning on the
    data's answer), or a linear kernel (difference of mean embeddings). The
    p-value is a permutation test: (1 + #{MMD²_perm ≥ MMD²})/(1 + n_perm),
    valid at any sample size. Samples larger than `max_per_sample` are
    randomly subsampled (recorded in details) to bound the O(N²) Gram matrix.

    No interval: MMD² is a degenerate U-statistic near zero, where bootstrap
    intervals are not valid, so ci_low/ci_high are NaN and the evidence is the
    p-value; the null's upper `confidence` quantile is given for scale.
    """
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    subsampled = len(X) > max_per_sample or len(Y) > max_per_sample
    X = X[rng.choice(len(X), max_per_sample, replace=False)] if len(X) > max_per_sample else X
    Y = Y[rng.choice(len(Y), max_per_sample, replace=False)] if len(Y) > max_per_sample else Y
    n_x, n_y = len(X), len(Y)
    details = {"kernel": kernel, "n_x": n_x, "n_y": n_y, "n_perm": n_perm, "subsampled": subsampled}
    if n_x < 2 or n_y < 2:
        return Estimate(math.nan, math.nan, math.nan, n_x + n_y, confidence, "permutation", 1.0, details)
    K, bandwidth = _kernel_matrix(np.vstack([X, Y]), kernel, rng)
    np.fill_diagonal(K, 0.0)
    row_sums = K.sum(axis=1)
    labels = np.zeros(n_x + n_y, dtype=bool)
    labels[:n_x] = True
    observed = float(_mmd2_unbiased(K, row_sums, labels[None, :])[0])
    null = np.concatenate([
        _mmd2_unbiased(K, row_sums, rng.permuted(np.tile(labels, (min(_BOOT_CHUNK, n_perm - s), 1)), axis=1))
        for s in range(0, n_perm, _BOOT_CHUNK)
    ])
    p_value = (1 + int(np.sum(null >= observed))) / (1 + n_perm)
    details.update(bandwidth=bandwidth, null_quantile=float(np.quantile(null, confidence)))
    return Estimate(observed, math.nan, math.nan, n_x + n_y, confidence, "permutation", p_value, details)

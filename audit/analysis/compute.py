"""q and t: the queries per model and the compute a result row rests on, for the probes of that row.

Its own module because every kind of row (results, provenance, sequences)
books q and t the same way, from the costs recorded at collection.
"""

from __future__ import annotations

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.adversaries.embeddings import embedder_cost
from audit.analysis.context import Context

T_KEYS = ("tokens_in", "tokens_out", "wall_s", "device_s", "flops")


def _per_probe_compute(ctx: Context, name: str) -> dict[str, np.ndarray]:
    """One model's recorded compute per probe (tokens and wall exact; device seconds and FLOPs by token share)."""
    if name not in ctx.per_probe:
        rows = ctx.by_model.get(name, [])
        total = ctx.model_costs.get(name, {})
        all_tokens = (total.get("tokens_in") or 0) + (total.get("tokens_out") or 0)
        sums: dict[str, np.ndarray] = {}
        for r in rows:
            tokens = (r["tokens_in"] or 0) + (r["tokens_out"] or 0)
            share = tokens / all_tokens if all_tokens else 0.0
            add = np.array([r["tokens_in"] or 0, r["tokens_out"] or 0, r["latency_s"] or 0.0,
                            share * (total.get("device_s") or 0.0), share * (total.get("flops") or 0.0)])
            sums[r["probe_id"]] = sums.get(r["probe_id"], 0.0) + add
        ctx.per_probe[name] = sums
    return ctx.per_probe[name]


def q_t(ctx: Context, comp: Comparison, probe_ids: set[str] | None, adversary_compute: dict) -> tuple[int, dict]:
    """Queries per model and compute for the probes of a row (all probes when ``probe_ids`` is None)."""
    names = ("teacher", comp.other)
    if probe_ids is None:
        costs = [ctx.model_costs.get(n, {}) for n in names]
        q = max((c.get("queries") or 0) for c in costs)
        t = {k: float(sum((c.get(k) or 0) for c in costs)) for k in T_KEYS}
    else:
        q = int(comp.mask_of(probe_ids).sum())
        total = np.zeros(len(T_KEYS))
        for name in names:
            per_probe = _per_probe_compute(ctx, name)
            total += sum((per_probe[p] for p in probe_ids if p in per_probe), np.zeros(len(T_KEYS)))
        t = {k: float(v) for k, v in zip(T_KEYS, total)}
    t["adversary"] = adversary_compute
    return q, t


def adversary_compute_of(ctx: Context, outcome_compute: dict, uses_embedder: bool) -> dict:
    compute = {k: v for k, v in outcome_compute.items() if isinstance(v, (int, float))}
    if uses_embedder:
        compute.update({f"embedder_{k}": v for k, v in embedder_cost(ctx.store).items()})
    return compute

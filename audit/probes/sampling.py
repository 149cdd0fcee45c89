"""Stratified, deterministic choice of which probes an audit asks.

The allocation is proportional to category size (largest remainder), with
a minimum per category so that a small budget still has a per-category
estimate everywhere; the probes within a category and the final order are
drawn from ``random.Random`` seeded by the audit seed, so the same seed
asks the same probes in the same order. The order interleaves categories,
so a collection stopped early (``--max-seconds``) is still stratified.
"""

from __future__ import annotations

import random
from collections import defaultdict

from audit.probes.types import Probe, Suite


def allocate(sizes: dict[str, int], queries: int, min_per_category: int) -> dict[str, int]:
    """Probes per category: proportional by largest remainder, at least ``min_per_category`` (or all a category has)."""
    total = sum(sizes.values())
    if queries >= total:
        return dict(sizes)
    floor = min(min_per_category, queries // len(sizes))
    fixed: dict[str, int] = {}
    while True:
        rest = {c: n for c, n in sizes.items() if c not in fixed}
        budget = queries - sum(fixed.values())
        rest_total = sum(rest.values())
        quotas = {c: budget * n / rest_total for c, n in rest.items()}
        short = {c: min(floor, sizes[c]) for c, q in quotas.items() if q < min(floor, sizes[c])}
        if not short:
            break
        fixed.update(short)
    counts = {c: int(q) for c, q in quotas.items()}
    leftover = budget - sum(counts.values())
    by_remainder = sorted(quotas, key=lambda c: (-(quotas[c] - counts[c]), c))
    for c in by_remainder[:leftover]:
        counts[c] += 1
    return {**fixed, **counts}


def sample_probes(suite: Suite, queries: int | None, seed: int, min_per_category: int = 2) -> list[Probe]:
    """``queries`` probes stratified by category (None or more than the suite: all of it, in suite order)."""
    if queries is None or queries >= len(suite.probes):
        return list(suite.probes)
    if queries < 1:
        raise ValueError("queries must be at least 1")
    by_category: dict[str, list[Probe]] = defaultdict(list)
    for probe in suite.probes:
        by_category[probe.category].append(probe)
    counts = allocate({c: len(ps) for c, ps in by_category.items()}, queries, min_per_category)
    chosen = []
    for category in sorted(counts):
        rng = random.Random(f"{seed}/{category}")
        chosen.extend(rng.sample(by_category[category], counts[category]))
    random.Random(f"{seed}/order").shuffle(chosen)
    return chosen

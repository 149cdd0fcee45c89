"""How much distillation-relevant information an exposure policy leaves in a teacher's outputs, and what it costs.

The CMI-inspired view of distillation (anti-distillation, 2025): what a
student gains from a teacher's output distribution beyond its response is the
conditional mutual information between that distribution and the input,
given the label. With the label taken as the raw teacher's top-1 token at
each position, a plug-in estimate is the mean divergence between each
token's exposed distribution and the mean exposed distribution of all tokens
with the same label: 0 when the exposure is a function of the label alone
(``text`` under greedy decoding), larger the more of the input each
distribution still tells.

Distributions are compared on buckets: the exposed token ids, and one tail
bucket for the mass on none of them (the record holds nothing finer). The
label-conditional means are computed once on the whole sample; the interval
resamples probes (all tokens of a probe's responses together, since they are
dependent) with the project's bootstrap (``stats.bootstrap_ci``), and so does
not include the means' own sampling error: a stated approximation, small
when each label occurs often. A label seen at one position only is its own
mean and adds 0, so on few tokens the estimate is biased low: compare
policies on the same recorded responses, never across sample sizes.

Utility beside it: the fraction of positions whose exposed top-1 token is the
raw teacher's (rounding, noise or temperature may change it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.exposure import Exposed, Flat, Policy, label_conditional_divergence
from audit.stats import Estimate, bootstrap_ci
from audit.store import Store
from audit.topk import TopK


@dataclass(frozen=True)
class Leakage:
    """A policy's CMI estimate (nats per token) and utility (top-1 agreement), each with its interval."""

    policy: str
    cmi: Estimate
    agreement: Estimate
    probes: int
    tokens: int


@dataclass(frozen=True)
class Recorded:
    """One recorded response's distributions, with the probe it answers (the bootstrap's unit)."""

    probe_id: str
    query_id: str
    top: TopK


def recorded_distributions(store: Store, model_id: str, purpose: str = "eval") -> list[Recorded]:
    """Every response of one model that has recorded top-k distributions, in the store's order."""
    blobs = store.top_distributions(model_id, purpose)
    return [Recorded(row["probe_id"], row["query_id"], TopK.unpack(blobs[row["query_id"]]))
            for row in store.responses(model_id, purpose) if row["query_id"] in blobs]


def leakage(responses: list[Recorded], policy: Policy, *, confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> Leakage:
    """The CMI estimate and the utility of ``policy`` over ``responses`` (raw teacher distributions).

    A policy with a learned step (``purify``) must be fitted first (``Policy.fitted``), on other responses
    than these where the estimate is to say what the defence does to responses it never saw.
    """
    raw = [Exposed.recorded(r.top) for r in responses]
    exposed = [policy.expose(dist, r.query_id) for dist, r in zip(raw, responses)]
    labels = np.concatenate([dist.top1() for dist in raw])
    flat = Flat.of(exposed)
    divergences = label_conditional_divergence(flat.ids, flat.probs, labels)
    agreement = np.concatenate([e.top1() == dist.top1() for e, dist in zip(exposed, raw)]).astype(float)
    probes = [r.probe_id for r in responses]
    ends = np.cumsum([len(dist.chosen) for dist in raw])
    return Leakage(policy=policy.name,
                   cmi=bootstrap_ci(by_probe(divergences, ends, probes), "mean", confidence, n_boot, seed),
                   agreement=bootstrap_ci(by_probe(agreement, ends, probes), "mean", confidence, n_boot, seed),
                   probes=len(set(probes)), tokens=len(labels))


def by_probe(values: np.ndarray, ends: np.ndarray, probes: list[str]) -> list[np.ndarray]:
    """Per-position values grouped by probe (every response of a probe together), in first-seen order; a probe
    whose responses have no tokens has nothing to weigh and is left out."""
    groups: dict[str, list[np.ndarray]] = {}
    for probe, part in zip(probes, np.split(values, ends[:-1])):
        groups.setdefault(probe, []).append(part)
    return [group for parts in groups.values() if len(group := np.concatenate(parts))]

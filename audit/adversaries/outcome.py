"""What an adversary leaves behind: its held-out verdicts, one per unit, with the probe each came from.

Keeping the verdicts (not just the accuracy) is what lets the analysis reuse
one training run for everything else: per-category and per-split rows are
subsets of the same held-out verdicts, and the provenance finding pairs the
per-probe advantage of two comparisons, all without retraining.

Two kinds of adversary:

- ``single``: labels one response at a time (is this the teacher's?). Its
  advantage is TPR − FPR = P[says teacher | teacher] − P[says teacher | other].
- ``paired``: sees both responses to a probe and names the teacher's. Its
  advantage is 2·accuracy − 1; a tie (score 0.5) is half right.

Each unit also gives a per-probe *advantage contribution* whose mean over
probes is exactly the advantage (single: said-teacher on the teacher's
response minus said-teacher on the other's; paired: 2·score − 1), so
bootstraps over probes and paired comparisons work on one scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.stats import Estimate, accuracy_advantage, bootstrap_ci, rate_difference_advantage


@dataclass
class Outcome:
    adversary: str
    kind: str  # "single" or "paired"
    probe_ids: np.ndarray
    categories: np.ndarray
    splits: np.ndarray
    truth: np.ndarray | None = None  # single: 1 where the unit is the teacher's response
    said: np.ndarray | None = None  # single: 1 where the adversary called it the teacher's
    score: np.ndarray | None = None  # paired: 1 right, 0 wrong, 0.5 tie
    details: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)  # the adversary's own t: wall_s, flops, tokens ...

    def __len__(self) -> int:
        return len(self.probe_ids)

    def subset(self, mask: np.ndarray) -> "Outcome":
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Outcome(self.adversary, self.kind, self.probe_ids[mask], self.categories[mask], self.splits[mask],
                       pick(self.truth), pick(self.said), pick(self.score), dict(self.details), self.compute)

    def contributions(self) -> np.ndarray:
        """Per unit: its share of the advantage (see the module docstring)."""
        if self.kind == "paired":
            return 2.0 * self.score - 1.0
        return np.where(self.truth == 1, self.said, -self.said).astype(float)

    def per_probe(self) -> dict[str, float]:
        """Probe id -> advantage measured on that probe alone (mean of its contributions, x2 for single)."""
        contrib = self.contributions()
        scale = 2.0 if self.kind == "single" else 1.0  # a single probe has one teacher and one other unit
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for pid, c in zip(self.probe_ids.tolist(), contrib.tolist()):
            sums[pid] = sums.get(pid, 0.0) + c
            counts[pid] = counts.get(pid, 0) + 1
        return {pid: scale * sums[pid] / counts[pid] for pid in sums}

    def estimate(self, confidence: float, seed: int = 0) -> Estimate:
        """The advantage with its interval: exact where the units are independent, else a probe bootstrap.

        Exact intervals need one independent unit per probe (per class, for a
        single-response adversary). With several samples per probe, or ties,
        the probe is the independent unit, so the advantage is bootstrapped
        over probes instead.
        """
        _, per_probe_units = np.unique(self.probe_ids, return_counts=True)
        units_per_probe = 2 if self.kind == "single" else 1
        independent = len(per_probe_units) == 0 or per_probe_units.max() <= units_per_probe
        if self.kind == "single" and independent:
            t = self.truth == 1
            return rate_difference_advantage(int(self.said[t].sum()), int(t.sum()),
                                             int(self.said[~t].sum()), int((~t).sum()), confidence)
        if self.kind == "paired" and independent and np.all((self.score == 0) | (self.score == 1)):
            return accuracy_advantage(int(self.score.sum()), len(self.score), confidence)
        values = np.array(list(self.per_probe().values()), dtype=float)
        return bootstrap_ci(values, "mean", confidence, 2000, seed, null=0.0)

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
permutation tests over probes and paired comparisons work on one scale.

Intervals (`Outcome.estimate`): the verdicts of an adversary that learned
from the other probes are correlated (a probe in one fold trains the models
that judge every other fold; the count of correct verdicts has measured
about 1.2× the binomial standard deviation), so no interval may treat them as
independent. Instead the adversary is retrained (`Refit`) in worlds where the
teacher and the other model trade places on a random half of the probes;
there the two are exchangeable by construction, so the advantage the
retrained adversary reaches in those worlds is the exact null distribution
of the observed one, fold correlation and all. The interval inverts that
test (`audit.stats.permutation_interval`), so its p-value is its own. An
adversary that learned nothing from other probes (the judge) needs no
retraining: trading places negates a probe's contribution, a sign flip; with
one 0/1 verdict per probe that test is exact binomial, and Clopper–Pearson
is its interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from audit.stats import PERMUTATIONS, Estimate, accuracy_advantage, permutation_interval, sign_flip_null


class Relabelled(Protocol):
    """An adversary that can be retrained in relabelled worlds (see `Refit`)."""

    probes: np.ndarray  # sorted probe ids; flips are given per probe, in this order

    def contributions(self, roles: tuple[str, str, str, str], flips: np.ndarray,
                      units: np.ndarray | None = None) -> np.ndarray:
        """Per-unit contributions (worlds x units) when, on flipped probes, the alternative roles hold."""


@dataclass(frozen=True)
class Refit:
    """How to retrain one comparison's adversary with some probes' responses trading places.

    ``roles`` name, per world, the model whose response the adversary is told
    is the teacher's and the model whose response is the other's: as
    recorded, and on flipped probes the alternative pair. Teacher and other
    trading places tests that adversary's advantage; the suspect and a
    control trading places tests the provenance gap.
    """

    design: Relabelled
    other: str

    def swapped(self, flips: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
        """Contributions where, on flipped probes, the teacher and the other model traded places."""
        return self.design.contributions(("teacher", self.other, self.other, "teacher"), flips, units)

    def traded(self, rival: "Refit", flips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(this comparison's, the rival's) contributions where, on flipped probes, the two others traded places."""
        mine = self.design.contributions(("teacher", self.other, "teacher", rival.other), flips)
        theirs = self.design.contributions(("teacher", rival.other, "teacher", self.other), flips)
        return mine, theirs


@dataclass
class Outcome:
    adversary: str
    kind: str  # "single" or "paired"
    probe_ids: np.ndarray
    categories: np.ndarray
    splits: np.ndarray
    truth: np.ndarray | None = None  # single: 1 where the unit is the teacher's response
    said: np.ndarray | None = None  # single: 1 where the adversary called it the teacher's (0.5 on a tie)
    score: np.ndarray | None = None  # paired: 1 right, 0 wrong, 0.5 tie
    details: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)  # the adversary's own t: wall_s, flops, tokens ...
    refit: Refit | None = None  # None: the adversary learned nothing from other probes
    units: np.ndarray | None = None  # this outcome's units among the adversary's (a subset keeps the whole)
    _nulls: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.units is None:
            self.units = np.arange(len(self.probe_ids))

    def __len__(self) -> int:
        return len(self.probe_ids)

    def subset(self, mask: np.ndarray) -> "Outcome":
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Outcome(self.adversary, self.kind, self.probe_ids[mask], self.categories[mask], self.splits[mask],
                       pick(self.truth), pick(self.said), pick(self.score), dict(self.details), self.compute,
                       self.refit, self.units[mask])

    def contributions(self) -> np.ndarray:
        """Per unit: its share of the advantage (see the module docstring)."""
        if self.kind == "paired":
            return 2.0 * self.score - 1.0
        return np.where(self.truth == 1, self.said, -self.said).astype(float)

    def _probes(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted probe ids, each unit's position among them)."""
        return np.unique(self.probe_ids, return_inverse=True)

    def _scale(self) -> float:
        return 2.0 if self.kind == "single" else 1.0  # a single probe has one teacher and one other unit

    def _advantages(self, contributions: np.ndarray) -> np.ndarray:
        """Advantage per world (rows): the mean over probes of each probe's advantage (see `per_probe`).

        That mean weighs each unit by scale / (its probe's units x probes), so
        it is one matrix-vector product for every world at once.
        """
        probes, where = self._probes()
        counts = np.bincount(where, minlength=len(probes))
        return contributions @ (self._scale() / (counts[where] * len(probes)))

    def per_probe(self) -> dict[str, float]:
        """Probe id -> advantage measured on that probe alone (mean of its contributions, x2 for single)."""
        probes, where = self._probes()
        sums = np.bincount(where, weights=self.contributions(), minlength=len(probes))
        return dict(zip(probes.tolist(), (self._scale() * sums / np.bincount(where, minlength=len(probes))).tolist()))

    def null_advantages(self, seed: int = 0, n_perm: int = PERMUTATIONS) -> np.ndarray:
        """The advantage in ``n_perm`` worlds where teacher and other traded places on a random half of the probes.

        Only this outcome's probes are flipped (a category's test leaves the
        other categories as recorded), and a learning adversary is retrained
        on all of its training probes in every world.
        """
        if seed not in self._nulls:
            rng = np.random.default_rng(seed)
            probes, _ = self._probes()
            if self.refit is None:
                self._nulls[seed] = sign_flip_null(np.array(list(self.per_probe().values())), n_perm, rng)
            else:
                flips = np.zeros((n_perm, len(self.refit.design.probes)), dtype=bool)
                flips[:, np.searchsorted(self.refit.design.probes, probes)] = rng.random((n_perm, len(probes))) < 0.5
                self._nulls[seed] = self._advantages(self.refit.swapped(flips, self.units))
        return self._nulls[seed]

    def estimate(self, confidence: float, seed: int = 0) -> Estimate:
        """The advantage with the interval of its own permutation test (see the module docstring).

        One 0/1 verdict per probe from an adversary that learned nothing from
        other probes is a binomial count: Clopper–Pearson and its exact test.
        """
        _, per_probe_units = np.unique(self.probe_ids, return_counts=True)
        if len(self) == 0:
            return accuracy_advantage(0, 0, confidence)
        if (self.kind == "paired" and self.refit is None and per_probe_units.max() == 1
                and np.all((self.score == 0) | (self.score == 1))):
            return accuracy_advantage(int(self.score.sum()), len(self.score), confidence)
        observed = float(self._advantages(self.contributions()[None, :])[0])
        how = ("teacher and other traded places on random probes, the adversary retrained in each world"
               if self.refit is not None else "teacher and other traded places on random probes (sign flips)")
        return permutation_interval(observed, self.null_advantages(seed), confidence, n=len(self),
                                    per_probe=list(self.per_probe().values()),
                                    details={"test": f"permutation over probes: {how}",
                                             "probes": len(per_probe_units)})


def provenance_gap(suspect: Outcome, control: Outcome, confidence: float, seed: int = 0,
                   n_perm: int = PERMUTATIONS) -> Estimate:
    """Adv(teacher, control) − Adv(teacher, suspect) on the probes both judged, with its permutation interval.

    Under "the suspect is no closer to the teacher than the control" in its
    strongest form, the suspect's and the control's responses may trade
    places on any probe. So the null worlds trade them on a random half of
    the probes and retrain both comparisons' adversaries there (a learning
    adversary's per-probe advantages are correlated through its folds); for
    an adversary that learned nothing from other probes, trading negates the
    probe's gap (sign flips). The interval inverts that test, so the gap's
    p-value is its own; a gap lies in [−2, 2].
    """
    a, b = control.per_probe(), suspect.per_probe()
    shared = sorted(set(a) & set(b))
    if not shared:
        return permutation_interval(math.nan, [], confidence, per_probe=[], bounds=(-2.0, 2.0))
    gaps = np.array([a[p] - b[p] for p in shared], dtype=float)
    rng = np.random.default_rng(seed)
    learned = (suspect.refit is not None and control.refit is not None
               and suspect.refit.design is control.refit.design and len(shared) == len(suspect.refit.design.probes))
    if learned:
        flips = rng.random((n_perm, len(shared))) < 0.5
        mine, theirs = suspect.refit.traded(control.refit, flips)
        null = control._advantages(theirs[:, control.units]) - suspect._advantages(mine[:, suspect.units])
        how = "suspect and control traded places on random probes, both adversaries retrained in each world"
    else:
        null = sign_flip_null(gaps, n_perm, rng)
        how = "suspect and control traded places on random probes (sign flips of the per-probe gaps)"
    means = {"mean_a": float(np.mean([a[p] for p in shared])), "mean_b": float(np.mean([b[p] for p in shared]))}
    return permutation_interval(float(gaps.mean()), null, confidence, per_probe=gaps, bounds=(-2.0, 2.0),
                                details={"test": f"permutation over probes: {how}", **means})

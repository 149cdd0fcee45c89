"""The learned discriminators: regularised linear discriminants on sentence embedding + style features.

Two variants, both trained and tested with folds **grouped by probe** (no
probe's responses are ever on both sides, or the model could recognise the
probe instead of the author):

- single (``discriminator-single``): is this one response the teacher's?
  w = (R + γI)⁻¹ (μ_teacher − μ_other) on standardised features, "teacher's"
  on the teacher's side of the point halfway between the two class means
  (linear discriminant analysis with a shrunk covariance, Friedman 1989).
- paired (``discriminator-paired``): which of these two responses to the same
  probe is the teacher's? The same discriminant on the differences
  f(a) − f(b), without intercept: swapping a and b exactly negates its score,
  so it has no position to prefer and its verdict does not depend on the
  order the pair is shown in. An exact tie (identical features, e.g.
  identical texts) counts half right.

Why a closed form, not the logistic regression of the first version. The
folds' verdicts are correlated, so their interval comes from a permutation
test that retrains the adversary in 1,000 worlds where teacher and other
trade places on random probes (`audit.adversaries.outcome`). Here the scale
and the covariance R are estimated on every audited model's responses to the
training probes, pooled, which no such trade changes; only the class means
change, and they are linear in the trade. So one Cholesky factor per fold
serves every world, and a thousand retrained adversaries cost a few matrix
products. Pooling every model's responses (the controls' too) into R is
legitimate for an adversary: R uses no labels, only what the responses look
like. γ = 3 on the correlation scale is strong shrinkage toward the
nearest-class-mean rule, as the L2 penalty of the first version was (features
outnumber probes in small audits); fixed for every audit, it matched or beat
that logistic regression on simulated audits and on the demo's transcripts
(paired 0.96 vs 0.83 against the base control, single 0.71 vs 0.75).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.adversaries.outcome import Outcome, Refit

SHRINK = 3.0  # γ: ridge added to the (unit-diagonal) covariance of the standardised features
MAX_FOLDS = 5


def _folds(groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped folds (at most 5; none with fewer than 2 distinct probes)."""
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return []
    return list(GroupKFold(n_splits=min(MAX_FOLDS, n_groups)).split(np.zeros(len(groups)), groups=groups))


@dataclass
class _Fold:
    train: np.ndarray
    test: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    factor: tuple  # Cholesky factor of R + γI
    train_means: dict[str, np.ndarray]  # model -> mean of its standardised training responses


class _Discriminants:
    """One fold's discriminant in every world: w = (R + γI)⁻¹ (mean gap + Σ over moved units of move·change / n).

    Only the training units that move in some world enter the sum. When they
    are fewer than the features (small audits, one category's test) the
    worlds are scored through the units' space, (rows·A·changeᵀ)·moves, which
    never forms a features x worlds matrix; otherwise the weights of every
    world are formed once.
    """

    def __init__(self, fold: _Fold, gap_mean: np.ndarray, change: np.ndarray, moves: np.ndarray):
        from scipy.linalg import cho_solve

        self.moves = moves  # worlds x moved training units
        self.n = len(fold.train)
        self.base = cho_solve(fold.factor, gap_mean)  # the recorded world's weights
        self.per_unit = cho_solve(fold.factor, change.T) / self.n  # features x moved units
        self.weights = self.base[:, None] + self.per_unit @ moves.T if moves.shape[1] > len(gap_mean) else None

    def score(self, rows: np.ndarray) -> np.ndarray:
        """rows · w for every world (rows x worlds)."""
        if self.weights is not None:
            return rows @ self.weights
        return (rows @ self.base)[:, None] + (rows @ self.per_unit) @ self.moves.T

    def threshold(self, middle: np.ndarray, change: np.ndarray) -> np.ndarray:
        """(middle + Σ over moved training units of move·change / n) · w, per world."""
        if self.weights is not None:
            return np.einsum("fw,fw->w", middle[:, None] + change.T @ self.moves.T / self.n, self.weights)
        fixed = middle @ self.base + self.moves @ (middle @ self.per_unit)
        if not change.any():  # teacher and other traded places: the midpoint does not move
            return fixed
        shift = self.moves @ (change @ self.base) / self.n
        cross = np.einsum("wu,wu->w", self.moves @ (change @ self.per_unit), self.moves) / self.n
        return fixed + shift + cross


class Design:
    """One discriminator variant over every audited model's features on the common (probe, sample) units."""

    def __init__(self, kind: str, features: dict[str, np.ndarray], probe_ids: np.ndarray):
        self.kind = kind
        self.features = features
        self.probe_ids = probe_ids
        self.probes, self.probe_of_unit = np.unique(probe_ids, return_inverse=True)
        self.folds = [self._fold(train, test) for train, test in _folds(probe_ids)]

    @classmethod
    def of(cls, kind: str, comparisons: list[Comparison], mask: np.ndarray | None = None) -> "Design":
        """The design of ``kind`` over the comparisons' models (they share one unit order), limited to ``mask``."""
        keep = slice(None) if mask is None else mask
        features = {"teacher": comparisons[0].teacher_features()[keep]}
        features.update({c.other: c.other_features()[keep] for c in comparisons})
        return cls(kind, features, comparisons[0].probe_ids[keep])

    def _fold(self, train: np.ndarray, test: np.ndarray) -> _Fold:
        """Standardisation and shrunk covariance from every model's training responses (no labels used)."""
        from scipy.linalg import cho_factor

        rows = np.stack([f[train] for f in self.features.values()]).astype(float)  # models x units x features
        if self.kind == "paired":  # differences: what varies between the models' responses to one unit
            rows = rows - rows.mean(axis=0)
            center = np.zeros(rows.shape[2])
        else:
            center = rows.mean(axis=(0, 1))
            rows = rows - center
        scale = np.sqrt(np.mean(rows**2, axis=(0, 1)))
        scale[scale < 1e-12] = 1.0
        z = rows.reshape(-1, rows.shape[2]) / scale
        covariance = z.T @ z / len(z)
        means = {m: (f[train].mean(axis=0) - center) / scale for m, f in self.features.items()}
        return _Fold(train, test, center, scale, cho_factor(covariance + SHRINK * np.eye(len(scale))), means)

    def contributions(self, roles: tuple[str, str, str, str], flips: np.ndarray,
                      units: np.ndarray | None = None) -> np.ndarray:
        """Held-out contributions (worlds x units) of the discriminator retrained in each world.

        ``roles`` = (told teacher, told other, told teacher on flipped probes,
        told other on flipped probes); ``flips`` (worlds x probes) says which
        probes are flipped in each world. Units are pairs for ``paired``
        (contribution = the verdict's sign) and responses for ``single``
        (first the teacher-labelled ones, said; then the others, −said), as
        in the `Outcome`; ``units`` limits which are computed.
        """
        n = len(self.probe_ids)
        layout = 2 * n if self.kind == "single" else n
        wanted = np.arange(layout) if units is None else np.asarray(units)
        column = np.full(layout, -1)
        column[wanted] = np.arange(len(wanted))
        pair_wanted = (column[:n] >= 0) | (column[n:] >= 0) if self.kind == "single" else column >= 0
        moving = np.flatnonzero(flips.any(axis=0)[self.probe_of_unit])  # units traded in some world
        position = np.full(n, -1)
        position[moving] = np.arange(len(moving))
        moves = flips[:, self.probe_of_unit[moving]].astype(float)  # worlds x moving units
        out = np.zeros((len(flips), len(wanted)))
        for fold in self.folds:
            test = fold.test[pair_wanted[fold.test]]
            active = fold.train[position[fold.train] >= 0]
            test_moves = np.zeros((len(flips), len(test)))
            traded = position[test] >= 0
            test_moves[:, traded] = moves[:, position[test[traded]]]
            rows = np.r_[active, test]  # only moved training units and wanted test units are ever standardised
            first, second, first_alt, second_alt = ((self.features[m][rows] - fold.center) / fold.scale for m in roles)
            gap, gap_change = first - second, (first_alt - second_alt) - (first - second)
            means = [fold.train_means[m] for m in roles]
            fit = _Discriminants(fold, means[0] - means[1], gap_change[:len(active)], moves[:, position[active]])
            on_test = slice(len(active), None)
            if self.kind == "paired":
                scores = fit.score(gap[on_test]) + test_moves.T * fit.score(gap_change[on_test])
                out[:, column[test]] = np.sign(scores).T  # +1 right, −1 wrong, 0 an exact tie
                continue
            total_change = ((first_alt + second_alt) - (first + second)) / 2.0
            threshold = fit.threshold((means[0] + means[1]) / 2.0, total_change[:len(active)])
            for side, (base, alt) in enumerate(((first, first_alt), (second, second_alt))):
                scores = fit.score(base[on_test]) - threshold
                change = (alt - base)[on_test]
                if change.any():  # a trade of the suspect and a control leaves the teacher's side as it was
                    scores += test_moves.T * fit.score(change)
                said = (np.sign(scores).T + 1.0) / 2.0  # an exact tie says half
                keep = column[side * n + test] >= 0
                out[:, column[side * n + test][keep]] = (said if side == 0 else -said)[:, keep]
        return out

    def observed(self, other: str) -> np.ndarray:
        """The contributions as recorded: the teacher told teacher, ``other`` told other, nothing flipped."""
        return self.contributions(("teacher", other, other, "teacher"), np.zeros((1, len(self.probes)), bool))[0]


def single_outcome(design: Design, comp: Comparison) -> Outcome:
    """Held-out verdicts of the single-response discriminator on every response of the comparison."""
    started = time.perf_counter()
    n = len(design.probe_ids)
    pids = np.r_[design.probe_ids, design.probe_ids]
    keep = np.ones(2 * n, dtype=bool) if design.folds else np.zeros(2 * n, dtype=bool)
    contributions = design.observed(comp.other)
    truth = np.r_[np.ones(n), np.zeros(n)].astype(int)
    said = np.where(truth == 1, contributions, -contributions)
    cats, splits = np.r_[comp.categories, comp.categories], np.r_[comp.splits, comp.splits]
    return Outcome("discriminator-single", "single", pids[keep], cats[keep], splits[keep], truth=truth[keep],
                   said=said[keep], details=_describe(design), compute={"wall_s": time.perf_counter() - started},
                   refit=Refit(design, comp.other), units=np.arange(2 * n)[keep])


def paired_outcome(design: Design, comp: Comparison, mask: np.ndarray | None = None) -> Outcome:
    """Held-out verdicts of the paired discriminator, one per (probe, sample); ``mask``: the units ``design`` covers."""
    started = time.perf_counter()
    keep = np.ones(len(design.probe_ids), dtype=bool) if design.folds else np.zeros(len(design.probe_ids), bool)
    score = (design.observed(comp.other) + 1.0) / 2.0
    cats = comp.categories if mask is None else comp.categories[mask]
    splits = comp.splits if mask is None else comp.splits[mask]
    return Outcome("discriminator-paired", "paired", design.probe_ids[keep], cats[keep], splits[keep],
                   score=score[keep], details=_describe(design), compute={"wall_s": time.perf_counter() - started},
                   refit=Refit(design, comp.other), units=np.arange(len(keep))[keep])


def _describe(design: Design) -> dict:
    what = "linear discriminant" + (" on response differences, no intercept" if design.kind == "paired" else "")
    return {"model": f"{what}, covariance shrunk by γ={SHRINK} on standardised features pooled over every "
                     "audited model (closed form, retrained in every permutation world)",
            "variant": design.kind,
            "features": f"{next(iter(design.features.values())).shape[1]} (sentence embedding + style features)",
            "folds": f"{len(design.folds)} folds grouped by probe (no probe on both sides)",
            "probes": len(design.probes)}

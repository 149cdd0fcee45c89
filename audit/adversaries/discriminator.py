"""The learned discriminator: logistic regression on sentence embedding + style features.

Two variants, both trained and tested with folds **grouped by probe** (no
probe's responses are ever on both sides, or the model could recognise the
probe instead of the author):

- single (``discriminator-single``): is this one response the teacher's?
- paired (``discriminator-paired``): which of these two responses to the same
  probe is the teacher's? Features are f(a) − f(b) in a random order per
  pair; the model has no intercept and the features are scaled without
  centring, so swapping a and b exactly flips its answer (no position bias
  to learn). An exact tie (identical features, e.g. identical texts) is
  broken by a seeded coin, so the adversary always answers.

Logistic regression because it is fast enough to retrain for every point of a
budget curve and hard to overfit with 400 features and a few hundred probes
(L2, standardised features). The liblinear solver: on these features it fits
about 5x faster than lbfgs, to the same accuracy.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from audit import threads as thread_policy
from audit.adversaries.comparison import Comparison
from audit.adversaries.outcome import Outcome

C = 0.1  # L2 strength: features outnumber probes in small audits
MAX_FOLDS = 5


def _model(paired: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(with_mean=not paired),
                         LogisticRegression(C=C, solver="liblinear", max_iter=2000, fit_intercept=not paired,
                                            random_state=0))


def _folds(groups: np.ndarray):
    """Grouped folds (at most 5, at least 2 distinct probes per fold needed)."""
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return []
    return list(GroupKFold(n_splits=min(MAX_FOLDS, n_groups)).split(np.zeros(len(groups)), groups=groups))


def _oof_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, paired: bool) -> np.ndarray:
    """Out-of-fold decision values (> 0 means "teacher" / "a is the teacher's"); NaN where untestable.

    The folds are fitted in parallel threads: liblinear releases the GIL, so
    on a 2-core machine the discriminators and budget curves take about half
    the time, with the same numbers (each fold's fit is deterministic).
    """
    out = np.full(len(y), np.nan)
    # a fold with one class cannot be trained; its units stay unjudged
    folds = [(train, test) for train, test in _folds(groups) if len(np.unique(y[train])) >= 2]

    def fit(fold):
        train, test = fold
        return test, _model(paired).fit(X[train], y[train]).decision_function(X[test])

    with ThreadPoolExecutor(max_workers=max(1, min(len(folds), thread_policy.current().threads))) as pool:
        for test, scores in pool.map(fit, folds):
            out[test] = scores
    return out


def single_outcome(comp: Comparison) -> Outcome:
    """Held-out verdicts of the single-response discriminator on every response of the comparison."""
    started = time.perf_counter()
    X = np.vstack([comp.teacher_features(), comp.other_features()])
    y = np.r_[np.ones(len(comp)), np.zeros(len(comp))].astype(int)
    groups = np.r_[comp.probe_ids, comp.probe_ids]
    scores = _oof_scores(X, y, groups, paired=False)
    ok = ~np.isnan(scores)
    said = (scores > 0).astype(int)
    cats, splits = np.r_[comp.categories, comp.categories], np.r_[comp.splits, comp.splits]
    return Outcome("discriminator-single", "single", groups[ok], cats[ok], splits[ok], truth=y[ok], said=said[ok],
                   details=_describe(len(np.unique(groups)), X.shape[1], "single"),
                   compute={"wall_s": time.perf_counter() - started})


def paired_design(comp: Comparison, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(f(a) − f(b), label a-is-teacher) with a seeded random order per pair."""
    rng = np.random.default_rng(seed)
    teacher_first = rng.random(len(comp)) < 0.5
    diff = comp.teacher_features() - comp.other_features()
    X = np.where(teacher_first[:, None], diff, -diff)
    return X, teacher_first.astype(int)


def paired_outcome(comp: Comparison, seed: int = 0, mask: np.ndarray | None = None) -> Outcome:
    """Held-out verdicts of the paired discriminator, one per (probe, sample); ``mask`` limits the pairs used."""
    started = time.perf_counter()
    X, y = paired_design(comp, seed)
    groups = comp.probe_ids
    cats, splits = comp.categories, comp.splits
    if mask is not None:
        X, y, groups, cats, splits = X[mask], y[mask], groups[mask], cats[mask], splits[mask]
    scores = _oof_scores(X, y, groups, paired=True)
    ok = ~np.isnan(scores)
    coin = np.random.default_rng(seed + 1).random(len(scores)) < 0.5
    said_first = np.where(scores == 0, coin, scores > 0)
    score = (said_first == (y == 1)).astype(float)
    return Outcome("discriminator-paired", "paired", groups[ok], cats[ok], splits[ok], score=score[ok],
                   details=_describe(len(np.unique(groups)), X.shape[1], "paired"),
                   compute={"wall_s": time.perf_counter() - started})


def _describe(n_probes: int, n_features: int, variant: str) -> dict:
    return {"model": f"logistic regression (L2, C={C}, liblinear), standardised features", "variant": variant,
            "features": f"{n_features} (sentence embedding + style features)",
            "folds": f"{min(MAX_FOLDS, n_probes)} folds grouped by probe (no probe on both sides)",
            "probes": n_probes}

"""Teacher-likelihood: how probable is a response under the teacher itself?

A student distilled from the teacher writes what the teacher would have
written, so its responses score a high length-normalised log-likelihood
(mean log p per token) under the teacher; an unrelated model's do not. The
adversary is a threshold on that number: "teacher's" above it.

The threshold (and its direction) is chosen on one half of the probes and
applied to the other half, then the halves swap (2-fold cross-fitting, folds
grouped by probe): every verdict is on a probe the threshold never saw, and
every probe is used once. The two halves' verdicts are still correlated
(each half chose the other's threshold), so the interval comes from a
permutation test that rechooses both thresholds in every relabelled world
(`LikelihoodDesign`, see `audit.adversaries.outcome`); sorting is all that
costs, vectorised over the worlds.

Scoring needs the teacher's weights: the teacher spec is reloaded and must
still resolve to the fingerprint recorded at collection (else the scores
would be another model's). Log-probabilities recorded at collection cover
only the teacher's own responses, never the other model's, so they cannot
replace scoring. Scores are cached in the database's vector cache under the
name ``teacher-loglik:<fingerprint>`` (vector = [sum log p, tokens, then the
sum over each opening window of `OPENING_WINDOWS` tokens]), keyed by sha256 of
[probe, response], so a rerun scores nothing twice. An entry from a version
that kept only the first two is read as it is for the mean, and scored again
where the windows are needed.
"""

from __future__ import annotations

import time

import numpy as np

from audit.adversaries.cache import Cached, grouped_by
from audit.adversaries.comparison import Comparison
from audit.adversaries.outcome import Outcome, Refit
from audit.errors import AuditError
from audit.store import Store, canonical_json, sha256_text


OPENING_WINDOWS = (4, 8, 16, 32)  # the first tokens of a response a sequential audit may compare alone


class TeacherScorer:
    """Mean token log-probability of responses under the teacher, cached in the audit database."""

    def __init__(self, store: Store, model, fingerprint: str, param_count: int | None):
        self.store = store
        self.model = model
        self.cache_name = f"teacher-loglik:{fingerprint}"
        self.param_count = param_count or 0
        self.spent = {"queries": 0, "tokens_in": 0, "wall_s": 0.0}

    def mean_logprobs(self, probes: list[str], responses: list[str], bar=None) -> np.ndarray:
        """Each response's mean token log-probability under the teacher, scored once (every response to one probe
        in one pass) and cached under the teacher's fingerprint."""
        entries = self._entries(probes, responses, bar, width=2)
        return np.array([total / max(tokens, 1.0) for total, tokens, *_ in entries], dtype=float)

    def opening_logprobs(self, probes: list[str], responses: list[str], bar=None) -> np.ndarray:
        """Per response, its mean token log-probability over the whole of it, then over its first w tokens for each
        w of `OPENING_WINDOWS` (all of it where it is shorter): responses x (1 + windows)."""
        entries = self._entries(probes, responses, bar, width=2 + len(OPENING_WINDOWS))
        rows = [[total / max(tokens, 1.0)] + [window / max(min(w, tokens), 1.0)
                                              for w, window in zip(OPENING_WINDOWS, windows)]
                for total, tokens, *windows in entries]
        return np.array(rows, dtype=float).reshape(len(entries), 1 + len(OPENING_WINDOWS))

    def _entries(self, probes: list[str], responses: list[str], bar, width: int) -> list[list[float]]:
        keys = [sha256_text(canonical_json([p, r])) for p, r in zip(probes, responses)]
        cache = Cached(self.store, self.cache_name, self._score_batch, grouped_by(lambda item: item[1][0]),
                       "teacher-likelihood")
        cached = cache.values({k: (p, r) for k, p, r in zip(keys, probes, responses)}, bar, width)
        return [cached[k] for k in keys]

    def _score_batch(self, batch: list[tuple[str, tuple[str, str]]]) -> dict[str, list[float]]:
        """The responses to one probe, as the cache groups them."""
        probe = batch[0][1][0]
        return self._score(probe, [(key, response) for key, (_, response) in batch])

    def _score(self, probe: str, items: list[tuple[str, str]]) -> dict[str, list[float]]:
        """One batched scoring pass for all responses to one probe."""
        if self.model is None:
            raise AuditError(f"{self.store.path}: {len(items)} responses have no cached score under the teacher; "
                             "name the teacher (--teacher SPEC) so they can be scored")
        started = time.perf_counter()
        logprobs = self.model.score(probe, [r for _, r in items])
        self.spent["wall_s"] += time.perf_counter() - started
        self.spent["queries"] += len(items)
        out = {}
        for (k, _), lp in zip(items, logprobs):
            self.spent["tokens_in"] += len(lp)
            out[k] = [float(sum(lp)), float(len(lp)), *(float(sum(lp[:w])) for w in OPENING_WINDOWS)]
        return out

    def record_cost(self) -> None:
        """Add this run's scoring compute to the teacher's analyze-likelihood cost row."""
        if not self.spent["queries"]:
            return
        self.store.add_cost(subject="teacher", stage="analyze-likelihood", **self.spent,
                            flops_per_token=2.0 * self.param_count if self.param_count else None,
                            details={"what": "teacher scoring of responses for the teacher-likelihood adversary"})


def best_threshold(values: np.ndarray, is_teacher: np.ndarray):
    """(threshold, direction) maximising TPR − FPR on training units; direction +1 means "teacher if above".

    ``values`` may be one row of unit values or one row per world (worlds x
    units, the labels the same in every world); then both results are arrays.
    """
    grid = np.atleast_2d(np.asarray(values, dtype=float))
    order = np.argsort(grid, axis=1, kind="stable")
    v = np.take_along_axis(grid, order, axis=1)
    t = np.asarray(is_teacher, dtype=float)[order]
    n_t, n_o = max(t[0].sum(), 1.0), max((1 - t[0]).sum(), 1.0)
    # with the threshold just above v[i], "above" is everything after i
    gain = (1.0 - np.cumsum(t, axis=1) / n_t) - (1.0 - np.cumsum(1 - t, axis=1) / n_o)
    cut = np.c_[v[:, 1:] > v[:, :-1], np.ones(len(v), dtype=bool)]  # a threshold only falls between distinct values
    i_up = np.argmax(np.where(cut, gain, -np.inf), axis=1)
    i_down = np.argmin(np.where(cut, gain, np.inf), axis=1)
    pick = lambda a, i: np.take_along_axis(a, i[:, None], axis=1)[:, 0]  # noqa: E731
    up = pick(gain, i_up) >= -pick(gain, i_down)
    i = np.where(up, i_up, i_down)
    following = pick(v, np.minimum(i + 1, v.shape[1] - 1))
    threshold = np.where(i + 1 < v.shape[1], (pick(v, i) + following) / 2.0, pick(v, i) + 1.0)
    direction = np.where(up, 1, -1)
    if np.ndim(values) == 1:
        return float(threshold[0]), int(direction[0])
    return threshold, direction


class LikelihoodDesign:
    """Every audited model's mean log-likelihood under the teacher on the common units, and the two halves."""

    kind = "single"

    def __init__(self, loglik: dict[str, np.ndarray], probe_ids: np.ndarray, seed: int = 0):
        self.loglik = loglik
        self.probe_ids = probe_ids
        self.probes, self.probe_of_unit = np.unique(probe_ids, return_inverse=True)
        half = np.random.default_rng(seed).permutation(len(self.probes)) % 2
        self.half = half[self.probe_of_unit]

    def contributions(self, roles: tuple[str, str, str, str], flips: np.ndarray,
                      units: np.ndarray | None = None) -> np.ndarray:
        """Held-out contributions (worlds x responses, teacher-labelled first) with thresholds rechosen per world."""
        n = len(self.probe_ids)
        moved = flips[:, self.probe_of_unit]
        first = np.where(moved, self.loglik[roles[2]], self.loglik[roles[0]])
        second = np.where(moved, self.loglik[roles[3]], self.loglik[roles[1]])
        out = np.zeros((len(flips), 2 * n))
        for k in (0, 1):
            train, test = self.half != k, self.half == k
            if not train.any() or not test.any():
                continue
            labels = np.r_[np.ones(train.sum()), np.zeros(train.sum())]
            threshold, direction = best_threshold(np.c_[first[:, train], second[:, train]], labels)
            said = lambda v: (np.sign(direction[:, None] * (v[:, test] - threshold[:, None])) + 1.0) / 2.0  # noqa: E731
            out[:, np.flatnonzero(test)] = said(first)
            out[:, n + np.flatnonzero(test)] = -said(second)
        return out if units is None else out[:, units]

    def thresholds(self, other: str) -> list[dict]:
        """The threshold each half chose, as recorded (for the report's details)."""
        chosen = []
        for k in (0, 1):
            train = self.half != k
            if not train.any() or not (self.half == k).any():
                continue
            values = np.r_[self.loglik["teacher"][train], self.loglik[other][train]]
            thr, direction = best_threshold(values, np.r_[np.ones(train.sum()), np.zeros(train.sum())])
            chosen.append({"fold": k, "threshold": thr, "teacher_if": "above" if direction > 0 else "below"})
        return chosen


def likelihood_outcome(design: LikelihoodDesign, comp: Comparison) -> Outcome:
    """Cross-fitted threshold verdicts on every response of the comparison."""
    n = len(comp)
    flips = np.zeros((1, len(design.probes)), dtype=bool)
    contributions = design.contributions(("teacher", comp.other, comp.other, "teacher"), flips)[0]
    thresholds = design.thresholds(comp.other)
    keep = np.ones(2 * n, dtype=bool) if len(thresholds) == 2 else np.zeros(2 * n, dtype=bool)
    truth = np.r_[np.ones(n), np.zeros(n)].astype(int)
    said = np.where(truth == 1, contributions, -contributions)
    pids = np.r_[comp.probe_ids, comp.probe_ids]
    cats, splits = np.r_[comp.categories, comp.categories], np.r_[comp.splits, comp.splits]
    teacher_ll, other_ll = design.loglik["teacher"], design.loglik[comp.other]
    details = {"statistic": "mean token log-probability under the teacher",
               "threshold": "chosen on one half of the probes, applied to the other (2-fold cross-fitting)",
               "thresholds": thresholds,
               "mean_loglik_teacher": float(np.mean(teacher_ll)) if n else None,
               "mean_loglik_other": float(np.mean(other_ll)) if n else None}
    return Outcome("teacher-likelihood", "single", pids[keep], cats[keep], splits[keep], truth=truth[keep],
                   said=said[keep], details=details, refit=Refit(design, comp.other), units=np.arange(2 * n)[keep])

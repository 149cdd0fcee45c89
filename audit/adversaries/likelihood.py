"""Teacher-likelihood: how probable is a response under the teacher itself?

A student distilled from the teacher writes what the teacher would have
written, so its responses score a high length-normalised log-likelihood
(mean log p per token) under the teacher; an unrelated model's do not. The
adversary is a threshold on that number: "teacher's" above it.

The threshold (and its direction) is chosen on one half of the probes and
applied to the other half, then the halves swap (2-fold cross-fitting, folds
grouped by probe): every verdict is on a probe the threshold never saw, and
every probe is used once.

Scoring needs the teacher's weights: the teacher spec is reloaded and must
still resolve to the fingerprint recorded at collection (else the scores
would be another model's). Log-probabilities recorded at collection cover
only the teacher's own responses, never the other model's, so they cannot
replace scoring. Scores are cached in the database's vector cache under the
name ``teacher-loglik:<fingerprint>`` (vector = [sum log p, tokens]), keyed by
sha256 of [probe, response], so a rerun scores nothing twice.
"""

from __future__ import annotations

import time

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.adversaries.outcome import Outcome
from audit.store import Store, canonical_json, sha256_text


class TeacherScorer:
    """Mean token log-probability of responses under the teacher, cached in the audit database."""

    def __init__(self, store: Store, audit_id: str, model, fingerprint: str, param_count: int | None):
        self.store = store
        self.audit_id = audit_id
        self.model = model
        self.cache_name = f"teacher-loglik:{fingerprint}"
        self.param_count = param_count or 0
        self.spent = {"queries": 0, "tokens_in": 0, "wall_s": 0.0}

    def mean_logprobs(self, probes: list[str], responses: list[str], bar=None) -> np.ndarray:
        keys = [sha256_text(canonical_json([p, r])) for p, r in zip(probes, responses)]
        cached = self.store.cached_embeddings(self.cache_name, sorted(set(keys)))
        todo = {k: (p, r) for k, p, r in zip(keys, probes, responses) if k not in cached}
        task = bar.add_task("teacher-likelihood", total=len(todo), status="") if bar is not None and todo else None
        by_probe: dict[str, list[tuple[str, str]]] = {}
        for k, (p, r) in todo.items():
            by_probe.setdefault(p, []).append((k, r))
        for probe, items in by_probe.items():
            fresh = self._score(probe, items)
            self.store.cache_embeddings(self.cache_name, fresh)
            cached.update(fresh)
            if task is not None:
                bar.update(task, advance=len(items))
        return np.array([cached[k][0] / max(cached[k][1], 1.0) for k in keys], dtype=float)

    def _score(self, probe: str, items: list[tuple[str, str]]) -> dict[str, list[float]]:
        """One batched scoring pass for all responses to one probe."""
        started = time.perf_counter()
        logprobs = self.model.score(probe, [r for _, r in items])
        self.spent["wall_s"] += time.perf_counter() - started
        self.spent["queries"] += len(items)
        out = {}
        for (k, _), lp in zip(items, logprobs):
            self.spent["tokens_in"] += len(lp)
            out[k] = [float(sum(lp)), float(len(lp))]
        return out

    def record_cost(self) -> None:
        """Add this run's scoring compute to the teacher's analyze-likelihood cost row."""
        if not self.spent["queries"]:
            return
        prior = next((c for c in self.store.costs(self.audit_id)
                      if c["subject"] == "teacher" and c["stage"] == "analyze-likelihood"), None)
        queries = self.spent["queries"] + (prior["queries"] if prior else 0)
        tokens = self.spent["tokens_in"] + (prior["tokens_in"] if prior else 0)
        wall = self.spent["wall_s"] + (prior["wall_s"] if prior else 0.0)
        self.store.record_cost(self.audit_id, subject="teacher", stage="analyze-likelihood", queries=queries,
                               tokens_in=tokens, wall_s=wall,
                               flops=2.0 * self.param_count * tokens if self.param_count else None,
                               details={"what": "teacher scoring of responses for the teacher-likelihood adversary"})


def best_threshold(values: np.ndarray, is_teacher: np.ndarray) -> tuple[float, int]:
    """(threshold, direction) maximising TPR − FPR on training units; direction +1 means "teacher if above"."""
    order = np.argsort(values)
    v, t = values[order], is_teacher[order].astype(float)
    n_t, n_o = max(t.sum(), 1.0), max((1 - t).sum(), 1.0)
    # with the threshold just above v[i], "above" is everything after i
    tpr_above = 1.0 - np.cumsum(t) / n_t
    fpr_above = 1.0 - np.cumsum(1 - t) / n_o
    gain = tpr_above - fpr_above
    cut = np.r_[v[1:] > v[:-1], True]  # a threshold can only fall between distinct values
    i_up = int(np.argmax(np.where(cut, gain, -np.inf)))
    i_down = int(np.argmin(np.where(cut, gain, np.inf)))
    if gain[i_up] >= -gain[i_down]:
        return _between(v, i_up), 1
    return _between(v, i_down), -1


def _between(v: np.ndarray, i: int) -> float:
    return float((v[i] + v[i + 1]) / 2.0) if i + 1 < len(v) else float(v[i]) + 1.0


def likelihood_outcome(comp: Comparison, teacher_ll: np.ndarray, other_ll: np.ndarray, seed: int = 0) -> Outcome:
    """Cross-fitted threshold verdicts on every response of the comparison."""
    probes = np.unique(comp.probe_ids)
    half = dict(zip(probes.tolist(), (np.random.default_rng(seed).permutation(len(probes)) % 2).tolist()))
    fold = np.array([half[p] for p in comp.probe_ids.tolist()])
    values = np.r_[teacher_ll, other_ll]
    truth = np.r_[np.ones(len(comp)), np.zeros(len(comp))].astype(int)
    folds = np.r_[fold, fold]
    said = np.zeros(len(values), dtype=int)
    thresholds = []
    for k in (0, 1):
        train, test = folds != k, folds == k
        if not train.any() or not test.any():
            continue
        thr, direction = best_threshold(values[train], truth[train])
        said[test] = (direction * (values[test] - thr) > 0).astype(int)
        thresholds.append({"fold": k, "threshold": thr, "teacher_if": "above" if direction > 0 else "below"})
    ok = np.isin(folds, [t["fold"] for t in thresholds])
    pids = np.r_[comp.probe_ids, comp.probe_ids]
    cats, splits = np.r_[comp.categories, comp.categories], np.r_[comp.splits, comp.splits]
    details = {"statistic": "mean token log-probability under the teacher",
               "threshold": "chosen on one half of the probes, applied to the other (2-fold cross-fitting)",
               "thresholds": thresholds,
               "mean_loglik_teacher": float(np.mean(teacher_ll)) if len(comp) else None,
               "mean_loglik_other": float(np.mean(other_ll)) if len(comp) else None}
    return Outcome("teacher-likelihood", "single", pids[ok], cats[ok], splits[ok], truth=truth[ok], said=said[ok],
                   details=details)

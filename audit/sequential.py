"""Anytime-valid sequential audits: a pre-registered probe order, rounds, and claims that survive optional stopping.

A real audit pays for every query, so it should stop as soon as its claim is
settled. Looking at a fixed-n interval after every round and stopping when
it looks decisive inflates its error; here every claim is a confidence
sequence (`audit.confseq`), valid at every round at once.

- **Pre-registered order.** The probes are asked in one seeded random order
  of the whole usable suite (`preregister`), in rounds of ``round_size``
  probes per model; its seed and the hash of the order are recorded before
  the first query, so nobody can pick the order after seeing responses. The
  first t probes of that order are a uniform sample of the suite without
  replacement, which for t well below the suite's size behaves as the i.i.d.
  draws the CS assumes.
- **Predictable adversaries.** Each adversary turns every probe into one
  bounded number using only what came before it (Podkopaev & Ramdas 2023,
  sequential predictive two-sample tests): the paired discriminator is
  refitted on every probe before a new one and says which of the two
  responses to it is the teacher's (+1 right, −1 wrong, 0 tie); the
  teacher-likelihood adversary says the one the teacher finds more likely,
  over the opening window of the responses (4, 8, 16 or 32 tokens, or the
  whole response) that was the most decisive on the probes before it
  (`likelihood_streams`). The per-probe mean of these is the
  paired advantage, in [−1, 1]. Where the two models are exchangeable every
  step has mean 0, whatever was learned.
- **Provenance, asked directly.** Against each control the same two
  adversaries say which of the suspect's and the control's responses to a
  probe is the more teacher-like (the discriminant fitted toward the teacher
  from both, the teacher's likelihood): +1 the suspect's, −1 the control's.
  Its mean, the *teacher-likeness preference*, is above 0 when the suspect
  imitates the teacher more than the control does, and exactly 0 under the
  fixed-budget audit's provenance null (suspect and control exchangeable).
  It asks in one comparison what the gap Adv(teacher, control) −
  Adv(teacher, suspect) asks in two, so it decides in far fewer probes
  (measured in ``benchmarks/bench_sequential.py``).
- **Family.** The adversaries of the stopping family are fixed before the
  first query (the teacher-likelihood one only when the teacher scores
  text), and each CS runs at 1 − α/m for m adversaries (Bonferroni), per
  comparison; provenance, per control, likewise, as in a fixed-budget audit.
- **Stopping rules** (`RULES`), checked after each round: ``provenance``
  stops when the gap against every control is settled (some adversary's CS
  above 0, or below); ``distinguished`` when some adversary's lower bound on
  ε(teacher, suspect) is above 0; ``certify`` (a vendor's ε ≤ E) passes when
  every adversary's upper bound is below E and fails when any lower bound
  is above it. Otherwise collection stops at the budget and the claims are
  stated as they stand, still valid.

Everything here is a function of the database (its responses and the round
each answer joined at, `Plan.schedule`) and the plan, so an audit killed
between rounds and resumed computes exactly the sequences it would have
without the interruption, and the report recomputes those the collection
stopped on; between rounds a sequence is extended, not recomputed, to the
same numbers (`audit.confseq`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from audit.adversaries.comparison import Comparison
from audit.confseq import Sequence, confidence_sequence
from audit.errors import AuditError
from audit.store.integrity import content_hash
from audit.vocabulary import MAIN_COMPARISON as MAIN
from audit.vocabulary import SEQUENTIAL_ORDER as ORDER

RULES = ("provenance", "distinguished", "certify")
ADVERSARIES = ("discriminator-paired", "teacher-likelihood")
BOUNDS = (-1.0, 1.0)  # every per-probe value: a verdict's sign, or the mean of a probe's samples' signs
METHOD = "confidence sequence: hedged betting (Waudby-Smith & Ramdas 2023), anytime-valid"


@dataclass(frozen=True)
class Plan:
    """What a sequential audit commits to before its first query."""

    order: tuple[str, ...]  # every usable probe id, in the order they will be asked
    round_size: int
    rule: str
    seed: int
    threshold: float | None = None  # certify: the ε a vendor claims not to exceed
    adversaries: tuple[str, ...] = ("discriminator-paired",)
    confidence: float = 0.95  # the level of every sequence (before Bonferroni over the family)
    windows: tuple[int, ...] = ()  # teacher-likelihood: the opening windows it may compare (`likelihood_streams`)

    @cached_property
    def position(self) -> dict[str, int]:
        """Each probe's place in the order."""
        return {p: i for i, p in enumerate(self.order)}

    @property
    def order_hash(self) -> str:
        return content_hash(list(self.order))

    def rounds(self, budget: int | None = None) -> list[list[str]]:
        """The probes of each round, within a budget of probes."""
        order = self.order[:budget] if budget else self.order
        return [list(order[i:i + self.round_size]) for i in range(0, len(order), self.round_size)]

    def schedule(self, units: list[tuple[str, int]], recorded: dict[tuple[str, int], int] | None = None,
                 current: int = 0) -> "Schedule":
        """Where the answered (probe, sample) ``units`` stand in the sequences.

        A unit joins at the round ``recorded`` for it, else at the round of its
        probe's place in the order or at ``current`` if that is later: an answer
        that arrives late (a failed query retried) joins the round it arrived
        in, never one that was already evaluated and decided on. A probe joins
        with its first unit; a sample of it that arrives in a later round is
        left out, since the value at the probe's place was already used.
        """
        recorded = recorded or {}
        unit_round = {u: recorded.get(u, max(self.position[u[0]] // self.round_size, current)) for u in units}
        probe_round: dict[str, int] = {}
        for (pid, _), r in unit_round.items():
            probe_round[pid] = min(r, probe_round.get(pid, r))
        kept = frozenset(u for u, r in unit_round.items() if r == probe_round[u[0]])
        ordered = sorted(probe_round, key=lambda pid: (probe_round[pid], self.position[pid]))
        return Schedule(probe_round, {pid: i for i, pid in enumerate(ordered)}, kept)

    def recorded(self) -> dict:
        """What the audit's config records (the order itself is the seed's, so its hash suffices). Windows are
        recorded only where there are some, so a plan made before they existed reads back as it was made."""
        windows = {"likelihood_windows": list(self.windows)} if self.windows else {}
        return {"round_size": self.round_size, "rule": self.rule, "seed": self.seed, "threshold": self.threshold,
                "adversaries": list(self.adversaries), "confidence": self.confidence, "order_hash": self.order_hash,
                "probes": len(self.order), **windows}


def preregister(probe_ids: list[str], *, seed: int, round_size: int, rule: str, threshold: float | None,
                adversaries: tuple[str, ...], confidence: float = 0.95, windows: tuple[int, ...] = ()) -> Plan:
    """The seeded random order of ``probe_ids``; it depends on the seed and the set of ids alone."""
    if rule not in RULES:
        raise AuditError(f"--stop-rule {rule!r}: not a stopping rule; choose one of {', '.join(RULES)}")
    if rule == "certify" and threshold is None:
        raise AuditError("--stop-rule certify needs --epsilon-threshold E (the ε the suspect is certified not to exceed)")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise AuditError(f"--epsilon-threshold {threshold}: an advantage threshold lies in [0, 1]")
    ids = sorted(probe_ids)
    key = int(content_hash(["sequential-order", seed])[:16], 16)
    order = [ids[i] for i in np.random.default_rng(key).permutation(len(ids))]
    return Plan(tuple(order), round_size, rule, seed, threshold, tuple(adversaries), confidence, tuple(windows))


@dataclass(frozen=True)
class Schedule:
    """The answered probes as the sequences see them: each probe's round, its place in the stream (by round, then
    by the plan's order), and the (probe, sample) units that count (`Plan.schedule`)."""

    round: dict[str, int]
    position: dict[str, int]
    units: frozenset[tuple[str, int]]

    def joined(self, round_index: int) -> list[tuple[str, int]]:
        """The units that joined at ``round_index``, to be recorded once it is evaluated."""
        return sorted(u for u in self.units if self.round[u[0]] == round_index)


def units_of(comp: Comparison) -> list[tuple[str, int]]:
    return list(zip(comp.probe_ids.tolist(), comp.samples.astype(int).tolist()))


# ---- per-probe statistics, predictable --------------------------------------------------


@dataclass
class Stream:
    """One adversary's per-probe values on one comparison, in the plan's order, with each probe's round (before
    `_most_decisive_so_far` chooses, a row of candidate values per probe)."""

    comparison: str
    adversary: str
    probe_ids: list[str]
    values: np.ndarray
    rounds: np.ndarray


def _per_probe(comp: Comparison, unit_values: np.ndarray, valid: np.ndarray, schedule: Schedule, adversary: str,
               comparison: str | None = None) -> Stream:
    """Unit values averaged per probe (samples of one probe are one observation), in stream order; with one row of
    values per unit (units x candidates), one row per probe."""
    sums: dict[str, list] = {}
    for pid, value, ok in zip(comp.probe_ids.tolist(), unit_values.tolist(), valid.tolist()):
        if ok:
            sums.setdefault(pid, []).append(value)
    ordered = sorted(sums, key=schedule.position.__getitem__)
    return Stream(comparison or comp.name, adversary, ordered,
                  np.array([np.mean(sums[p], axis=0) for p in ordered], dtype=float),
                  np.array([schedule.round[p] for p in ordered], dtype=int))


def unit_rounds(comp: Comparison, schedule: Schedule) -> np.ndarray:
    return np.array([schedule.round[p] for p in comp.probe_ids.tolist()], dtype=int)


def discriminator_streams(comparisons: list[Comparison], schedule: Schedule) -> list[Stream]:
    """The paired discriminator, refitted before every probe on all the probes before it in the order.

    Which of two responses to a new probe is the teacher's: the sign of
    (f(a) − f(b)) · w with w = mean(f(teacher) − f(other)) / s² over the
    earlier probes, s² each feature's second moment around the models' mean
    response, pooled over every audited model (no labels used). That is the
    nearest-class-mean limit of the fixed-budget audit's shrinkage
    discriminant (γ → ∞; γ = 3 is already close to it), and it updates in
    O(features) per probe, so a predictor can be fitted for every probe: only
    the first two probes of the order are spent on training alone. Each
    verdict uses only probes before its own, which is what betting needs.
    """
    position = schedule.position
    unit_position = np.array([position[p] for p in comparisons[0].probe_ids.tolist()], dtype=int)
    order = np.argsort(unit_position, kind="stable")
    where = unit_position[order]
    teacher = comparisons[0].teacher_features()[order].astype(float)
    others = {c.name: c.other_features()[order].astype(float) for c in comparisons}
    everyone = np.stack([teacher, *others.values()])
    spread = ((everyone - everyone.mean(axis=0)) ** 2).sum(axis=0)  # units x features, summed over models
    starts = np.searchsorted(where, where)  # each unit's first training-free index: units before its probe
    counts = starts.astype(float)
    earlier_probes = np.searchsorted(np.unique(where), where)
    ready = earlier_probes >= 2
    cumulative = lambda a: np.vstack([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])  # noqa: E731
    scale2 = cumulative(spread)[starts] / np.maximum(counts * len(everyone), 1.0)[:, None]
    scale2[scale2 < 1e-12] = 1.0
    valid = np.empty_like(ready)
    valid[order] = ready

    def verdicts(toward_teacher: np.ndarray, pair: np.ndarray) -> np.ndarray:
        """sign(pair · w), w the mean of ``toward_teacher`` over earlier units, per unit in the database's order."""
        weights = cumulative(toward_teacher)[starts] / np.maximum(counts, 1.0)[:, None] / scale2
        values = np.sign(np.einsum("uf,uf->u", pair, weights))
        unit_values = np.empty_like(values)
        unit_values[order] = values
        return unit_values

    streams = []
    main = comparisons[0]
    for comp in comparisons:
        gap = teacher - others[comp.name]
        streams.append(_per_probe(comp, verdicts(gap, gap), valid, schedule, "discriminator-paired"))
        if comp.name != MAIN:  # which of the suspect's and the control's responses looks more like the teacher's
            suspect, control = others[main.name], others[comp.name]
            preference = verdicts(teacher - (suspect + control) / 2.0, suspect - control)
            streams.append(_per_probe(comp, preference, valid, schedule, "discriminator-paired", _provenance(comp)))
    return streams


def _provenance(comp: Comparison) -> str:
    return "provenance:" + comp.other.removeprefix("control:")


def likelihood_streams(comparisons: list[Comparison], loglik: dict[str, np.ndarray], schedule: Schedule,
                       windows: tuple[int, ...] = ()) -> list[Stream]:
    """+1 where the teacher finds its own response more likely than the other's, −1 where less, 0 on a tie; and,
    per control, +1 where it finds the suspect's more likely than the control's.

    ``loglik``: per role, each response's mean log-probability under the
    teacher over the whole response, then over each opening window of
    ``windows`` tokens (`teacher_logliks`). On each probe the adversary
    compares the two responses over the window whose signs were the most
    decisive (largest |sum|) on the probes before it in the stream, the whole
    response until a window does better: a predictor fitted on the past, as
    the discriminator is. A distilled student imitates its teacher most in
    how it opens (style and format); later tokens are conditioned on each
    model's own text and say more about its fluency than about the teacher.
    Wherever the two models are exchangeable, every window's sign has mean 0,
    so the choice costs no validity.
    """
    from audit.adversaries.likelihood import OPENING_WINDOWS

    everywhere = np.ones(len(comparisons[0]), dtype=bool)
    columns = [0] + [1 + OPENING_WINDOWS.index(w) for w in windows]

    def chosen(comp: Comparison, first: str, second: str, comparison: str | None = None) -> Stream:
        signs = np.sign(loglik[first][:, columns] - loglik[second][:, columns])
        return _most_decisive_so_far(_per_probe(comp, signs, everywhere, schedule, "teacher-likelihood", comparison))

    streams = []
    for comp in comparisons:
        streams.append(chosen(comp, "teacher", comp.other))
        if comp.name != MAIN:
            streams.append(chosen(comp, "suspect", comp.other, _provenance(comp)))
    return streams


def _most_decisive_so_far(candidates: Stream) -> Stream:
    """The stream of one value per probe from one of several (``candidates.values``: probes x candidates): at each
    probe, the candidate whose values before it sum to the largest magnitude (the first of them on a tie)."""
    values = candidates.values
    before = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)[:-1]])
    choice = np.argmax(np.abs(before), axis=1)
    return replace(candidates, values=values[np.arange(len(values)), choice])


# ---- sequences and the stopping rule ----------------------------------------------------


@dataclass
class Tracked:
    """A stream's confidence sequence, evaluated at the end of each round (Bonferroni level already applied)."""

    stream: Stream
    sequence: Sequence
    family_size: int

    def at_round(self, round_index: int) -> int:
        """How many of the stream's probes were in rounds up to ``round_index``."""
        return int(np.searchsorted(self.stream.rounds, round_index, side="right"))

    def p_value(self, round_index: int) -> float:
        """The anytime-valid p-value after ``round_index``, Bonferroni-corrected over the family (min(1, m·p)):
        at most α exactly when the sequence there excludes 0."""
        k = self.at_round(round_index)
        return float(min(1.0, self.sequence.p_value[k - 1] * self.family_size)) if k else 1.0


@dataclass
class Decision:
    """The stopping rule's state after a round."""

    round: int
    settled: bool
    outcome: str  # words for the report: what was settled, or "not settled"
    findings: dict = field(default_factory=dict)  # comparison -> "above" / "below" / "conflicting" / "not settled"


def track(streams: list[Stream], confidence: float, previous: list[Tracked] | None = None) -> list[Tracked]:
    """Each stream's CS at 1 − α/m, m the adversaries in its comparison's family; a stream that continues one of
    ``previous`` (the last round's) is extended, not recomputed, with the same result."""
    family: dict[str, int] = {}
    for s in streams:
        family[s.comparison] = family.get(s.comparison, 0) + 1
    before = {(t.stream.comparison, t.stream.adversary): t.sequence for t in previous or []}
    tracked = []
    for s in streams:
        level = 1.0 - (1.0 - confidence) / family[s.comparison]
        sequence = confidence_sequence(s.values, BOUNDS, level, previous=before.get((s.comparison, s.adversary)))
        tracked.append(Tracked(s, sequence, family[s.comparison]))
    return tracked


def bounds_at(t: Tracked, round_index: int) -> tuple[float, float, float, int]:
    """(estimate, low, high, probes) of the CS after ``round_index``; (nan, bounds, 0) before any probe."""
    k = t.at_round(round_index)
    if k == 0:
        return math.nan, BOUNDS[0], BOUNDS[1], 0
    seq = t.sequence
    if k == len(seq):
        return float(seq.estimate[-1]), seq.final_low, seq.final_high, k
    return float(seq.estimate[k - 1]), float(seq.low[k - 1]), float(seq.high[k - 1]), k


def decide(tracked: list[Tracked], plan: Plan, round_index: int) -> Decision:
    """Is the plan's claim settled after ``round_index``? Reads the sequences only, never a fixed-n interval."""
    by_comparison: dict[str, list[Tracked]] = {}
    for t in tracked:
        by_comparison.setdefault(t.stream.comparison, []).append(t)
    if plan.rule == "provenance":
        found = {c: _side(ts, round_index, 0.0) for c, ts in by_comparison.items() if c.startswith("provenance:")}
        settled = bool(found) and all(v in ("above", "below") for v in found.values())
        words = "; ".join(f"against {c.removeprefix('provenance:')}, {PROVENANCE_WORDS[v]}"
                          for c, v in sorted(found.items()))
    else:
        main = by_comparison.get(MAIN, [])
        threshold = 0.0 if plan.rule == "distinguished" else plan.threshold
        side = _side(main, round_index, threshold, every_below=plan.rule == "certify")
        found = {MAIN: side}
        if plan.rule == "distinguished":
            settled = side == "above"
        else:
            settled = side in ("above", "below")
        words = f"ε(teacher, suspect) {side} {threshold:g}"
    return Decision(round_index, settled, words if settled else f"not settled ({words})", found)


PROVENANCE_WORDS = {"above": "the suspect's responses are the more teacher-like (preference above 0)",
                    "below": "the control's responses are the more teacher-like (preference below 0)",
                    "conflicting": "the adversaries disagree in direction",
                    "not settled": "the direction is not settled"}


def _side(family: list[Tracked], round_index: int, threshold: float, every_below: bool = False) -> str:
    """'above' if some member's CS lies above ``threshold``; 'below' if (every member's, or some member's) lies
    below; 'conflicting' if both; else 'not settled'."""
    lows_highs = [bounds_at(t, round_index)[1:3] for t in family]
    above = any(low > threshold for low, _ in lows_highs)
    below_each = [high < threshold for _, high in lows_highs]
    below = all(below_each) if every_below else any(below_each)
    if above and below:
        return "conflicting"
    return "above" if above else "below" if (below and lows_highs) else "not settled"


# ---- from the database to the sequences ---------------------------------------------------


@dataclass
class Evaluation:
    """Every sequence of an audit, and the rule's state after each round, from the recorded responses."""

    plan: Plan
    schedule: Schedule
    tracked: list[Tracked]
    decisions: list[Decision]  # one per round with responses, in order
    queries: dict[int, int]  # round -> queries per model asked up to its end

    @property
    def stop(self) -> Decision | None:
        """The first round at which the rule was settled (where a sequential collection stops)."""
        return next((d for d in self.decisions if d.settled), None)

    @property
    def last(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    def points(self) -> list[dict]:
        """One row per (comparison, adversary, round): the sequence as the report plots it."""
        rows = []
        for t in self.tracked:
            for d in self.decisions:
                estimate, low, high, n = bounds_at(t, d.round)
                p = t.p_value(d.round)
                rows.append({"comparison": t.stream.comparison, "adversary": t.stream.adversary, "round": d.round,
                             "n": n, "q": self.queries[d.round], "estimate": None if math.isnan(estimate) else estimate,
                             "ci_low": low, "ci_high": high, "confidence": t.sequence.confidence, "p_value": p,
                             "details": {"settled": d.settled}})
        return rows


def evaluate(store, plan: Plan, *, current: int | None = None, previous: Evaluation | None = None, embedder=None,
             scorer=None, bar=None) -> Evaluation:
    """Recompute every stream from the database (caches make this cheap) and track it round by round, at the
    plan's level.

    Each answered unit joins at the round recorded for it (`Plan.schedule`);
    one not recorded yet joins at ``current``, the round being evaluated, or
    when reading a finished collection, at the round after the last recorded.
    ``scorer`` (a `TeacherScorer`) scores responses under the teacher where the
    plan's family has the teacher-likelihood adversary; one without a model
    reads only its cache. ``previous``, the last round's evaluation, lets each
    sequence be extended by the new round's probes instead of recomputed.
    """
    from audit.adversaries.comparison import load_comparisons
    from audit.adversaries.embeddings import Embedder, attach_features

    comparisons, _ = load_comparisons(store)
    outside = sorted(set(comparisons[0].probe_ids.tolist()) - set(plan.order))
    if outside:
        raise AuditError(f"{store.path}: probe {outside[0]} was answered but is not in the pre-registered order "
                         f"(hash {plan.order_hash[:12]}): the audit's probes changed since it was planned")
    recorded = store.sequential_rounds()
    if current is None:
        current = max(recorded.values(), default=-1) + 1
    units = units_of(comparisons[0])
    schedule = plan.schedule(units, recorded, current)
    counted = np.array([u in schedule.units for u in units], dtype=bool)
    comparisons = [c.subset(counted) for c in comparisons]
    attach_features(store, comparisons, embedder or Embedder(), bar)
    streams = discriminator_streams(comparisons, schedule)
    if "teacher-likelihood" in plan.adversaries:
        loglik = teacher_logliks(scorer, comparisons, bar, windows=bool(plan.windows))
        streams += likelihood_streams(comparisons, loglik, schedule, plan.windows)
    tracked = track(streams, plan.confidence, previous.tracked if previous else None)
    rounds, per_round = np.unique(unit_rounds(comparisons[0], schedule), return_counts=True)
    queries = dict(zip(rounds.tolist(), np.cumsum(per_round).tolist()))  # answered units up to each round's end
    return Evaluation(plan, schedule, tracked, [decide(tracked, plan, r) for r in rounds.tolist()], queries)


def teacher_logliks(scorer, comparisons: list[Comparison], bar=None, windows: bool = False) -> dict[str, np.ndarray]:
    """Mean token log-probability under the teacher of every response in the comparisons (cached), per role: a
    column over the whole response, and with ``windows`` one more per opening window (`OPENING_WINDOWS`)."""
    loglik: dict[str, np.ndarray] = {}
    for comp in comparisons:
        probes, responses = comp.probe_texts * 2, comp.teacher_texts + comp.other_texts
        both = (scorer.opening_logprobs(probes, responses, bar) if windows
                else scorer.mean_logprobs(probes, responses, bar)[:, None])
        loglik["teacher"], loglik[comp.other] = both[:len(comp)], both[len(comp):]
    return loglik


def recorded_settings(audit: dict | None):
    """The plan's settings as an audit's config recorded them (`Plan.recorded`); None where there is no audit or it
    is not sequential. Read as stored: a received database's may have any shape."""
    if audit is None:
        return None
    config = json.loads(audit["config_json"] or "{}")
    return config.get("sequential_plan") if isinstance(config, dict) else None


def recorded_plan(store, audit: dict) -> Plan | None:
    """The plan a sequential audit recorded, rebuilt from its settings and the probes it could draw from."""
    recorded = recorded_settings(audit)
    if not recorded:
        return None
    order = [p["id"] for p in store.selected_probes(ORDER)]
    try:
        plan = preregister(order, seed=int(recorded["seed"]), round_size=int(recorded["round_size"]),
                           rule=str(recorded["rule"]), threshold=_number(recorded["threshold"]),
                           adversaries=tuple(str(a) for a in recorded["adversaries"]),
                           confidence=float(recorded["confidence"]),
                           windows=_windows(recorded.get("likelihood_windows", [])))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"{store.path}: its recorded sequential plan is unreadable ({type(exc).__name__}: "
                         f"{str(exc)[:80]})") from exc
    if plan.round_size < 1 or plan.order_hash != recorded["order_hash"]:
        raise AuditError(f"{store.path}: its recorded probe order (hash {recorded['order_hash'][:12]}) cannot be "
                         "rebuilt from its probes: the database is not as the sequential collection left it")
    return plan


def _windows(recorded: list) -> tuple[int, ...]:
    """The opening windows a plan recorded (none before they existed: the whole response only); a window this
    tool's scorer does not keep is a ValueError."""
    from audit.adversaries.likelihood import OPENING_WINDOWS

    windows = tuple(recorded)
    if any(type(w) is not int or w not in OPENING_WINDOWS for w in windows):
        raise ValueError(f"likelihood windows {list(windows)[:8]!r} are not among {list(OPENING_WINDOWS)}")
    return windows


def _number(value) -> float | None:
    return None if value is None else float(value)

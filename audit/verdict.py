"""From results rows to the claims a report states, in calibrated words a lawyer can quote.

The analysis writes numbers; this module decides what those numbers allow
one to say. The rules are few and strict:

- every advantage is stated with its interval, n, q, t and the adversary
  class A — never a bare number;
- an interval above 0 means the adversary *distinguished* the suspect from
  the teacher; an interval that contains 0 means the suspect was *not shown
  distinguishable at this budget* — never "indistinguishable", because a
  stronger adversary or more queries might still succeed; what such a
  result does give is an upper bound on this adversary's advantage;
- the provenance finding compares the suspect with controls (models known
  not to descend from the teacher) and is worded as consistent or not with
  imitation, never as proof of descent;
- every claim rests on the probes every model answered; when the models
  left more than ``MATERIAL_UNANSWERED_SHARE`` of the selected probes out of
  that set, every claim and the answer say they are inconclusive about the
  whole suite (a model that fails or refuses probes chooses its own exam).

The same ``Claim`` objects feed the HTML report and the signed in-toto
predicate, so the words and the attestation cannot drift apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from audit.coverage import MATERIAL_UNANSWERED_SHARE, Coverage  # noqa: F401  (re-exported for the report)
from audit.results import ResultRow
from audit.vocabulary import (HEADLINE, MAIN_COMPARISON, METRIC_NAMES, PROVENANCE, SEQUENTIAL,
                              provenance_key)
from audit.wording import (adversary_class, comparison_words, fmt_count, fmt_interval,  # noqa: F401
                           fmt_num, fmt_p, fmt_t, model_words)

# --------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------


@dataclass
class Claim(ResultRow):
    """One results row read as a claim: the estimate with its interval, n, q, t and A, and what they allow one
    to say."""

    @classmethod
    def from_row(cls, row: ResultRow) -> "Claim":
        return cls(**{f.name: getattr(row, f.name) for f in fields(ResultRow)})

    # ---- what the numbers allow one to say --------------------------------

    @cached_property
    def coverage(self) -> Coverage | None:
        """The probe set the claim rests on, as the analysis recorded it (None for older analyses)."""
        return Coverage.from_details(self.details)

    @property
    def inconclusive(self) -> bool:
        """Whether the claim rests on a subset the models chose, too far from the suite to speak for it."""
        return self.coverage is not None and self.coverage.material

    @property
    def comparison_key(self) -> str:
        """The comparison as one name (provenance:NAME for a control's provenance row), as tables and the signed
        predicate give it."""
        return provenance_key(self.control) if self.comparison == PROVENANCE else self.comparison

    @property
    def selected_adversary(self) -> str:
        """The adversary whose estimate this is: for the headline, the one selected among the candidates."""
        return self.adversary

    @property
    def level(self) -> str:
        return f"{round(100 * self.confidence)}%" if self.confidence else "unrecorded-level"

    @property
    def finding(self) -> str:
        """A keyword for the outcome: 'above-zero', 'below-zero', 'includes-zero' or 'no-interval'."""
        if self.ci_low is None or self.ci_high is None:
            return "no-interval"
        if self.ci_low > 0:
            return "above-zero"
        if self.ci_high < 0:
            return "below-zero"
        return "includes-zero"

    @property
    def outcome(self) -> str:
        """The short verdict shown in tables."""
        if self.inconclusive and self.metric != "cosine":
            return f"inconclusive: {self._outcome()} on the {self.coverage.common:,} common probes only"
        return self._outcome()

    def _outcome(self) -> str:
        if self.metric == "advantage":
            return {"above-zero": "distinguished", "includes-zero": "not shown distinguishable at this budget",
                    "below-zero": "distinguished (inverted)", "no-interval": "no interval: no claim"}[self.finding]
        if self.metric in ("advantage-gap", "preference"):
            return {"above-zero": "suspect closer to teacher than control",
                    "below-zero": "suspect farther from teacher than control",
                    "includes-zero": "not shown closer than control",
                    "no-interval": "no interval: no claim"}[self.finding]
        if self.metric == "mmd":
            return self._test_outcome()
        return "measured" if self.metric in ("cmi", "top1-agreement") else "baseline"

    def _test_outcome(self) -> str:
        alpha = 1 - (self.confidence or 0.95)
        p = self.p_holm if self.p_holm is not None else self.p_value
        if p is None:
            return "no p-value: no claim"
        return "distributions differ" if p < alpha else "no difference shown at this budget"

    def scope(self) -> str:
        """n, q, t in one parenthesis tail: the budget the claim holds for."""
        parts = [f"n = {self.n:,} probes" if self.n is not None else "n not recorded"]
        parts.append(f"q = {self.q:,} queries per model" if self.q is not None else "q not recorded")
        parts.append(f"t = {fmt_t(self.t)}")
        probes = self.coverage.scope() if self.coverage else None
        return "; ".join(parts + ([probes] if probes else []))

    def interval_text(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return "no interval recorded"
        method = f", {self.ci_method}" if self.ci_method else ""
        return f"{self.level} CI {fmt_interval(self.ci_low, self.ci_high)}{method}"

    def sentence(self, threshold: float | None = None) -> str:
        """The claim in one or two sentences that can be quoted on their own, with the coverage caveat if due."""
        text = self._sentence(threshold)
        return f"{text} {self.coverage.caveat()}" if self.inconclusive else text

    def _sentence(self, threshold: float | None) -> str:
        if self.metric == "advantage":
            return self._advantage_sentence(threshold)
        if self.metric in ("advantage-gap", "preference"):
            return self._gap_sentence()
        if self.metric == "cosine":
            return self._similarity_sentence()
        if self.metric == "mmd":
            return self._mmd_sentence()
        return (f"{METRIC_NAMES.get(self.metric, self.metric)} for {comparison_words(self.comparison)}: "
                f"{fmt_num(self.estimate)} ({self.interval_text()}; {self.scope()}).")

    def _advantage_sentence(self, threshold: float | None) -> str:
        who = f"An adversary of class A = {adversary_class(self.selected_adversary)}"
        if self.headline:
            who = f"The strongest adversary tried, {adversary_class(self.selected_adversary)}{self._selection_note()},"
        numbers = f"ε = {fmt_num(self.estimate)} ({self.interval_text()}; {self.scope()})"
        if self.finding == "no-interval":
            return f"{who} reached ε = {fmt_num(self.estimate)} but no interval was recorded, so no claim is made."
        if self.finding == "includes-zero":
            text = (f"{who} did not show {comparison_words(self.comparison)} distinguishable at this budget: "
                    f"{numbers}. This is not a finding that they are indistinguishable; it bounds this "
                    f"adversary's advantage at ε ≤ {fmt_num(self.ci_high)} with {self.level} confidence.")
        elif self.finding == "above-zero":
            text = f"{who} distinguished {comparison_words(self.comparison)} with advantage {numbers}."
        else:
            text = (f"{who} told {comparison_words(self.comparison)} apart with its labels inverted: {numbers}; "
                    "a negative advantage usually means the adversary overfit, and is no evidence of closeness.")
        if threshold is not None and self.finding != "no-interval":
            text += " " + self._threshold_sentence(threshold)
        if self.headline and self.not_run:
            text += " " + self._not_run_sentence()
        return text

    @property
    def not_run(self) -> dict[str, str]:
        """For the headline: adversary -> why it could not be run, as the analysis recorded (hostile data: strings)."""
        raw = self.details.get("not_run")
        if not isinstance(raw, dict):
            return {}
        return {str(k): str(v) for k, v in sorted(raw.items())}

    def _not_run_sentence(self) -> str:
        """What the headline's adversary class leaves out: the headline bounds only the adversaries that ran."""
        missing = "; ".join(f"{adversary_class(name)} ({why})" for name, why in self.not_run.items())
        return f"Not run, so not part of this bound: {missing}."

    def _threshold_sentence(self, threshold: float) -> str:
        if self.ci_high is not None and self.ci_high <= threshold:
            return (f"Its upper bound is within the threshold ε₀ = {fmt_num(threshold)} set for this audit "
                    f"(ε ≤ {fmt_num(threshold)} at {self.level} confidence).")
        return (f"Its upper bound exceeds the threshold ε₀ = {fmt_num(threshold)} set for this audit, so "
                f"ε ≤ {fmt_num(threshold)} is not established.")

    def _selection_note(self) -> str:
        how = self.details.get("selection") or self.details.get("correction")
        among = self.details.get("candidates")
        count = len(among) if isinstance(among, list) else among
        if how and count:
            return f" (chosen among {count} adversaries; choice accounted for by {how})"
        if how:
            return f" (choice accounted for by {how})"
        return " (how the choice among adversaries was accounted for is not recorded)"

    def _gap_sentence(self) -> str:
        control = self.control or self.comparison
        statistic = ("the teacher-likeness preference (how much more often the adversary found the suspect's "
                     "response the more teacher-like one than the control's)" if self.metric == "preference"
                     else "Adv(teacher, control) − Adv(teacher, suspect)")
        numbers = (f"{statistic} = {fmt_num(self.estimate)} "
                   f"({self.interval_text()}; {self.scope()}; A = {adversary_class(self.adversary)})")
        if self.finding == "above-zero":
            return (f"Against control “{control}”, the suspect was harder to tell from the teacher than the "
                    f"control was: {numbers}. This is consistent with the suspect imitating the teacher; "
                    "it does not by itself prove that the suspect descends from it.")
        if self.finding == "below-zero":
            return (f"Against control “{control}”, the suspect was easier to tell from the teacher than the "
                    f"control was: {numbers}. This gives no support to the claim that the suspect imitates "
                    "the teacher.")
        if self.finding == "includes-zero":
            return (f"Against control “{control}”, the suspect was not shown to be closer to the teacher than "
                    f"the control at this budget: {numbers}.")
        return f"Against control “{control}”, no interval was recorded for the advantage gap, so no claim is made."

    def _similarity_sentence(self) -> str:
        return (f"Semantic similarity (baseline, not an adversary): the mean cosine similarity of "
                f"{comparison_words(self.comparison).replace(' from ', ' and ')}'s responses to the same "
                f"probe was {fmt_num(self.estimate)} ({self.interval_text()}; {self.scope()}). Similar meaning "
                "does not imply that an adversary cannot tell the two apart, and vice versa.")

    def _mmd_sentence(self) -> str:
        return (f"A two-sample MMD test (no learning) on {comparison_words(self.comparison).replace(' from ', ' and ')}"
                f"'s responses gave statistic {fmt_num(self.estimate, 3)} ({self.interval_text()}; "
                f"permutation p = {fmt_p(self.p_value)}; {self.scope()}): {self._test_outcome()}.")

    def threshold_result(self, threshold: float | None) -> str | None:
        """Against a certified ε ≤ E: passed (upper bound at most E), failed (lower bound above E), else
        inconclusive; None without a threshold."""
        if threshold is None:
            return None
        if self.ci_high is not None and self.ci_high <= threshold:
            return "passed"
        if self.ci_low is not None and self.ci_low > threshold:
            return "failed"
        return "inconclusive"

    # ---- the signed form --------------------------------------------------

    def predicate(self, threshold: float | None = None) -> dict[str, Any]:
        """The claim as an evaluation-result entry of the signed in-toto predicate."""
        is_advantage = self.metric == "advantage"
        return {
            "adversary": HEADLINE if self.headline else self.adversary,  # the v1 predicate's names, as signed
            "adversary_class": adversary_class(self.selected_adversary),
            "selected_adversary": self.selected_adversary,
            "comparison": self.comparison_key,
            "control": self.control,
            "category": self.category,
            "split": self.split,
            "metric": {"name": METRIC_NAMES.get(self.metric, self.metric), "recorded_as": self.metric},
            "value": self.estimate,
            "interval": {"low": self.ci_low, "high": self.ci_high, "confidence": self.confidence,
                         "method": self.ci_method},
            "n": self.n,
            "q": self.q,
            "t": self.t,
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "coverage": self.coverage.predicate() if self.coverage else None,
            "comparator": "<=" if (is_advantage and threshold is not None) else None,
            "threshold": threshold if is_advantage else None,
            "threshold_result": self.threshold_result(threshold) if is_advantage else None,
            "finding": self.finding,
            "statement": self.sentence(threshold),
        }


# The fields that identify a signed claim and its numbers; wording may change between versions, these may not.
PREDICATE_KEY_FIELDS = ("adversary", "comparison", "category", "split", "metric", "value", "interval", "n", "q",
                        "coverage")


def predicate_key(entry: dict[str, Any]) -> str:
    """The identity of a signed claim, comparable across a JSON round trip."""
    return json.dumps([entry.get(k) for k in PREDICATE_KEY_FIELDS], sort_keys=True)


# --------------------------------------------------------------------------
# From all results rows to what the report says
# --------------------------------------------------------------------------


@dataclass
class Findings:
    """The claims of one audit, sorted into the roles the report gives them."""

    headline: Claim | None
    overall: list[Claim]  # category 'all', split 'all', every metric
    adversaries: list[Claim]  # overall distinguishing advantages, one per (adversary, comparison)
    provenance: list[Claim]
    baseline: list[Claim]
    tests: list[Claim]  # mmd and other two-sample tests
    by_split: list[Claim]  # category 'all', public / private
    by_category: list[Claim]
    threshold: float | None = None
    coverage: Coverage | None = None  # the probe set every claim rests on (the headline's, else any claim's)
    sequential: list[Claim] = field(default_factory=list)  # confidence sequences at the stop (a sequential audit)
    fixed_budget: Claim | None = None  # the fixed-budget headline, shown as descriptive beside a sequential one

    def summary_provenance(self) -> list[Claim]:
        """The provenance row the analysis marked for page 1 (one per control); all rows if none is marked.

        The analysis marks, per control, the gap with the strongest evidence
        among Bonferroni-corrected gaps, so choosing it costs nothing; choosing
        by the headline's adversary would choose on Adv(teacher, suspect), one
        term of the gap.
        """
        rows = self.sequential_provenance or self.provenance
        marked = [c for c in rows if c.details.get("page_one")]
        return marked or rows

    @property
    def sequential_provenance(self) -> list[Claim]:
        return [c for c in self.sequential if c.comparison == PROVENANCE]

    @property
    def fixed_headline(self) -> Claim | None:
        """The fixed-budget headline: descriptive detail in a sequential audit, the headline otherwise."""
        return self.fixed_budget if self.is_sequential else self.headline

    @property
    def signed_claims(self) -> list[Claim]:
        """What the attestation lists: every whole-suite claim (all splits, the sequences), not the per-category
        detail."""
        return self.overall + self.by_split + self.sequential

    @property
    def is_sequential(self) -> bool:
        return bool(self.sequential)


def findings(rows: list[ResultRow], *, threshold: float | None = None) -> Findings:
    """Sort the claims; in a sequential audit page 1 states the confidence sequences (valid under the audit's
    optional stopping), and the fixed-budget rows are kept as descriptive detail."""
    claims = [Claim.from_row(r) for r in rows]
    sequences = [c for c in claims if c.split == SEQUENTIAL]
    claims = [c for c in claims if c.split != SEQUENTIAL]
    overall = [c for c in claims if c.category == "all" and c.split == "all"]
    fixed_headline = next((c for c in overall if c.headline and c.comparison == MAIN_COMPARISON), None)
    headline = next((c for c in sequences if c.headline and c.comparison == MAIN_COMPARISON),
                    fixed_headline)
    return Findings(
        headline=headline,
        overall=overall,
        adversaries=[c for c in overall if c.metric == "advantage" and not c.headline and c.comparison != PROVENANCE],
        provenance=[c for c in overall if c.comparison == PROVENANCE],
        sequential=sequences,
        fixed_budget=fixed_headline if sequences else None,
        baseline=[c for c in overall if c.metric == "cosine"],
        tests=[c for c in overall if c.metric == "mmd"],
        by_split=[c for c in claims if c.category == "all" and c.split != "all"],
        by_category=[c for c in claims if c.category != "all"],
        threshold=threshold,
        coverage=next((c.coverage for c in ([headline] if headline else []) + claims if c.coverage), None),
    )


def answer(found: Findings) -> str:
    """The one-line answer to the audit's question, for the top of page 1; inconclusive on a chosen subset."""
    plain = _plain_answer(found)
    cover = found.coverage
    if cover is None or not cover.material or found.headline is None:
        return plain
    return (f"Inconclusive about the whole suite: {cover.shortfalls()}. On the {cover.common:,} probes every "
            f"model answered, the answer alone would read: “{plain}”")


def _plain_answer(found: Findings) -> str:
    h = found.headline
    if h is None:
        return "No headline claim has been computed for this audit, so the question is not answered here."
    if h.finding == "above-zero":
        return (f"Yes: at least one adversary told the suspect from the claimed teacher "
                f"(ε = {fmt_num(h.estimate)}, {h.level} CI {fmt_interval(h.ci_low, h.ci_high)}).")
    if h.finding == "includes-zero":
        return (f"Not shown distinguishable at this budget: no adversary tried told the suspect from the claimed "
                f"teacher beyond chance (ε ≤ {fmt_num(h.ci_high)} at {h.level} confidence for the strongest).")
    if h.finding == "below-zero":
        return "Inconclusive: the strongest adversary's advantage is below zero, which signals a fault, not evidence."
    return "No claim: the headline advantage has no interval."


def split_gap_text(gap: dict[str, Any] | None) -> str:
    """The public − private gap of an adversary (from its overall row's details) in words, with its interval."""
    if not gap or gap.get("public_minus_private") is None:
        return "no gap recorded"
    value = fmt_num(gap["public_minus_private"])
    low, high = gap.get("ci_low"), gap.get("ci_high")
    if low is None or high is None:
        return f"{value} (no interval: no claim)"
    level = f"{round(100 * gap['confidence'])}% " if gap.get("confidence") else ""
    words = "the splits differ" if (low > 0 or high < 0) else "no difference shown"
    return f"{value} ({level}CI {fmt_interval(low, high)}): {words}"


def by_evidence_rank(claims: list[Claim]) -> list[Claim]:
    """Category claims in the evidence rank the analysis recorded (``audit.stats.rank_by_evidence``: Holm p, then
    the lower bound); a claim without a readable rank goes last, by category."""
    def rank(c: Claim) -> tuple:
        recorded = c.details.get("evidence_rank")
        return (recorded, c.category) if type(recorded) is int else (math.inf, c.category)

    return sorted(claims, key=rank)


def category_evidence(found: Findings) -> tuple[str | None, list[Claim]]:
    """The adversary the headline picked (else the strongest overall) and its per-category claims in evidence rank:
    the order the report shows categories in and the analysis draws category exhibits from (one rule for both)."""
    rows = [c for c in found.by_category if c.metric == "advantage" and c.split == "all"
            and c.comparison == MAIN_COMPARISON]
    names = {c.adversary for c in rows}
    if not names:
        return None, []
    preferred = found.headline.selected_adversary if found.headline else None
    if preferred not in names:
        main = [c for c in found.adversaries if c.comparison == MAIN_COMPARISON and c.adversary in names]
        preferred = max(main, key=lambda c: c.ci_low if c.ci_low is not None else -2).adversary if main \
            else sorted(names)[0]
    return preferred, by_evidence_rank([c for c in rows if c.adversary == preferred])

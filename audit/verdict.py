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
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

ADVERSARY_CLASSES = {
    "similarity": "semantic similarity of sentence embeddings (a baseline, not an adversary)",
    "discriminator-single": "a learned discriminator that sees one response (sentence embedding + style features)",
    "discriminator-paired": "a learned discriminator that sees two responses and names the teacher's",
    "judge": "a pairwise LLM judge, counting only verdicts that survive swapping the A/B order",
    "judge-unfiltered": "a pairwise LLM judge over both A/B orders, its position bias cancelled (every pair)",
    "teacher-likelihood": "a threshold test on the response's length-normalised likelihood under the teacher",
    "mmd": "a two-sample MMD test on the response sets (no learning)",
    "exposure": "no adversary: a measure of what a teacher's exposure policy exposes (leakage)",
}

METRIC_NAMES = {
    "advantage": "distinguishing advantage",
    "cosine": "mean cosine similarity",
    "mmd": "MMD statistic",
    "advantage-gap": "advantage gap, Adv(teacher, control) − Adv(teacher, suspect)",
    "preference": "teacher-likeness preference, P[suspect's response judged the more teacher-like than the "
                  "control's] − P[the reverse]",
    "cmi": "CMI plug-in estimate, nats per token",
    "top1-agreement": "top-1 agreement of the exposed with the raw teacher distribution",
}

HEADLINE = "headline"
SEQUENTIAL = "sequential"  # the split of a sequential audit's claims: confidence sequences at the stop
MAIN_COMPARISON = "teacher-vs-suspect"

MATERIAL_UNANSWERED_SHARE = 0.05
"""Above this share of the selected probes missing from the common set, the claims are about a subset, not the suite.

A probe leaves the common set when any model failed it, answered it with
nothing, or was never asked it; which probes those are is up to the models
(a suspect's endpoint can fail exactly the probes where it resembles the
teacher most), so ε measured on what is left may say little about the suite.
Retried transient errors leave a percent or two; beyond 1 in 20 the subset is
large enough to move ε, so the report calls every claim inconclusive.
"""


def model_words(name: str) -> str:
    """An audited model by its role: the claimed teacher, the suspect, control “x”."""
    if name == "teacher":
        return "the claimed teacher"
    if name == "suspect":
        return "the suspect"
    if name.startswith("control:"):
        return f"control “{name.split(':', 1)[1]}”"
    return f"model “{name}”"


def adversary_class(name: str) -> str:
    """The adversary class A in words; unknown names are shown as they are, never dropped."""
    return ADVERSARY_CLASSES.get(name, f"the adversary “{name}”")


def comparison_words(comparison: str) -> str:
    if comparison == MAIN_COMPARISON:
        return "the suspect from the claimed teacher"
    if comparison.startswith("teacher-vs-control:"):
        return f"control “{comparison.split(':', 1)[1]}” from the claimed teacher"
    if comparison.startswith("exposure:"):
        return f"the claimed teacher's exposure policy “{comparison.split(':', 1)[1]}”"
    return f"the models of “{comparison}”"


# --------------------------------------------------------------------------
# Number formatting: one style everywhere (unicode minus, en dash ranges)
# --------------------------------------------------------------------------


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    text = f"{x:.{digits}f}"
    if text.startswith("-") and float(text) != 0:
        return "−" + text[1:]
    return text.lstrip("-")


def fmt_interval(low: float | None, high: float | None, digits: int = 2) -> str:
    """0.22–0.40, or ‘−0.05 to 0.08’ when a sign would make an en dash ambiguous."""
    if low is None or high is None:
        return "no interval recorded"
    sep = " to " if (low < 0 or high < 0) else "–"
    return f"{fmt_num(low, digits)}{sep}{fmt_num(high, digits)}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_count(x: float | None) -> str:
    """12,345 / 1.2 M / 3.4 × 10¹³: readable magnitudes for tokens, seconds and FLOP."""
    if x is None:
        return "—"
    if abs(x) >= 1e9:
        exp = int(math.floor(math.log10(abs(x))))
        mant = x / 10**exp
        return f"{mant:.1f} × 10{str(exp).translate(_SUPERSCRIPT)}"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f} M"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.1f}"


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def fmt_t(t: dict[str, Any] | None) -> str:
    """The compute t of a claim in one phrase; says so when nothing was recorded."""
    if not t:
        return "t not recorded"
    parts = []
    tokens = (t.get("tokens_in") or 0) + (t.get("tokens_out") or 0)
    if tokens:
        parts.append(f"{fmt_count(tokens)} tokens")
    if t.get("wall_s"):
        parts.append(f"{fmt_count(t['wall_s'])} s wall")
    if t.get("device_s"):
        parts.append(f"{fmt_count(t['device_s'])} s device")
    if t.get("flops"):
        parts.append(f"{fmt_count(t['flops'])} FLOP")
    return ", ".join(parts) if parts else "t not recorded"


# --------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------


_COUNTS = ("answered", "empty", "failed", "not_asked")


@dataclass(frozen=True)
class Coverage:
    """The probes the claims rest on (those every audited model answered) and, per model, what became of the rest."""

    selected: int
    common: int
    models: tuple[dict[str, Any], ...]  # {"model": name, "answered", "empty", "failed", "not_asked"}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> "Coverage | None":
        """Read from a results row's details (hostile data: anything malformed is no coverage, never a crash)."""
        try:
            raw = details.get("coverage")
            models = tuple({"model": str(m["model"]), **{k: int(m.get(k) or 0) for k in _COUNTS}}
                           for m in raw["models"])
            return cls(int(raw["probes_selected"]), int(raw["probes_common"]), models)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None

    def unanswered(self, model: dict[str, Any]) -> int:
        return max(self.selected - model["answered"], 0)

    @property
    def left_out(self) -> int:
        """Selected probes outside the common set."""
        return max(self.selected - self.common, 0)

    @property
    def material(self) -> bool:
        """Whether so many probes are left out that the claims are inconclusive about the whole suite."""
        return self.left_out > MATERIAL_UNANSWERED_SHARE * self.selected

    @property
    def suspect_chose(self) -> bool:
        """Whether the suspect alone left a material share unanswered: then the subset is of its choosing."""
        return any(m["model"] == "suspect" and self.unanswered(m) > MATERIAL_UNANSWERED_SHARE * self.selected
                   for m in self.models)

    def shortfalls(self) -> str:
        """Who did not answer how many, with why: 'the suspect did not answer 16 of the 24 selected probes (…)'."""
        parts = []
        for m in self.models:
            if self.unanswered(m):
                why = [f"{m[k]:,} {label}" for k, label in (("failed", "failed"), ("empty", "answered with nothing"),
                                                           ("not_asked", "never asked")) if m[k]]
                parts.append(f"{model_words(m['model'])} did not answer {self.unanswered(m):,} of the "
                             f"{self.selected:,} selected probes" + (f" ({', '.join(why)})" if why else ""))
        return "; ".join(parts) or "every model answered some samples of a probe that another did not"

    def finding(self) -> str:
        """What page 1 says next to the answer: which probes the claims cover, and what that allows."""
        if self.material:
            chosen = ("which the suspect chose by not answering the rest" if self.suspect_chose
                      else "a subset left by those failures, not one the audit chose")
            return (f"{_capital(self.shortfalls())}. The claims below cover only the {self.common:,} probes every "
                    f"model answered, {chosen}: treat them as inconclusive about the whole suite.")
        if not self.left_out:
            return f"Every model answered all {self.selected:,} selected probes; every claim rests on all of them."
        return (f"{_capital(self.shortfalls())}. Every claim rests on the {self.common:,} probes every model "
                f"answered; the {self.left_out:,} left out are within the "
                f"{MATERIAL_UNANSWERED_SHARE:.0%} of the suite above which this report calls the claims inconclusive.")

    def scope(self) -> str | None:
        """The claim's probe set, for its scope, when it is not the whole selection."""
        if not self.left_out:
            return None
        return f"on the {self.common:,} of {self.selected:,} selected probes every model answered"

    def caveat(self) -> str:
        """Appended to every claim on a material subset: what the subset leaves out, and what that allows."""
        return (f"That probe set leaves out {self.left_out:,} of the {self.selected:,} selected, so these numbers "
                "are inconclusive about the whole suite.")

    def predicate(self) -> dict[str, Any]:
        """The signed form: counts only, so it is recomputable from the database whatever the wording."""
        return {"probes_selected": self.selected, "probes_common": self.common,
                "models": [dict(m) for m in self.models]}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Claim:
    """One results row read as a claim: the estimate with its interval, n, q, t and A."""

    adversary: str
    comparison: str
    category: str
    split: str
    metric: str
    n: int | None
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float | None
    ci_method: str | None
    p_value: float | None
    p_holm: float | None
    p_bh: float | None
    q: int | None
    t: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict) -> "Claim":
        return cls(
            adversary=row["adversary"], comparison=row["comparison"], category=row["category"],
            split=row.get("split") or "all", metric=row.get("metric") or "advantage", n=row.get("n"),
            estimate=row.get("advantage"), ci_low=row.get("ci_low"), ci_high=row.get("ci_high"),
            confidence=row.get("confidence"), ci_method=row.get("ci_method"), p_value=row.get("p_value"),
            p_holm=row.get("p_holm"), p_bh=row.get("p_bh"), q=row.get("q"), t=row.get("t") or {},
            details=row.get("details") or {},
        )

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
    def selected_adversary(self) -> str:
        """For the headline row, the adversary it picked; otherwise the row's own adversary."""
        if self.adversary == HEADLINE:
            return str(self.details.get("adversary") or self.details.get("selected") or HEADLINE)
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
        if self.adversary == HEADLINE:
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
        if self.adversary == HEADLINE and self.not_run:
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
        control = self.comparison.split(":", 1)[1] if ":" in self.comparison else self.comparison
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
            "adversary": self.adversary,
            "adversary_class": adversary_class(self.selected_adversary),
            "selected_adversary": self.selected_adversary,
            "comparison": self.comparison,
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
        return [c for c in self.sequential if c.comparison.startswith("provenance:")]

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


def findings(rows: list[dict], *, threshold: float | None = None) -> Findings:
    """Sort the claims; in a sequential audit page 1 states the confidence sequences (valid under the audit's
    optional stopping), and the fixed-budget rows are kept as descriptive detail."""
    claims = [Claim.from_row(r) for r in rows]
    sequences = [c for c in claims if c.split == SEQUENTIAL]
    claims = [c for c in claims if c.split != SEQUENTIAL]
    overall = [c for c in claims if c.category == "all" and c.split == "all"]
    fixed_headline = next((c for c in overall if c.adversary == HEADLINE and c.comparison == MAIN_COMPARISON), None)
    headline = next((c for c in sequences if c.adversary == HEADLINE and c.comparison == MAIN_COMPARISON),
                    fixed_headline)
    return Findings(
        headline=headline,
        overall=overall,
        adversaries=[c for c in overall if c.metric == "advantage" and c.adversary != HEADLINE
                     and not c.comparison.startswith("provenance:")],
        provenance=[c for c in overall if c.comparison.startswith("provenance:")],
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


def ranked_categories(claims: list[Claim]) -> list[Claim]:
    """Categories ranked by evidence: the lower interval bound first (how surely the suspect gives itself away)."""
    return sorted(claims, key=lambda c: (-(c.ci_low if c.ci_low is not None else -math.inf),
                                         c.p_holm if c.p_holm is not None else 1.0, c.category))

"""The leakage report: ε and similarity against training examples per exposure policy, with the CMI estimates.

Rendered from the leakage database alone, like an audit report: the plan
(which student is which policy and size) from the recorded costs of
``audit.leakage``, every number from the results the analysis and the CMI
stage wrote. The folder is published and signed by ``audit.report.publish``:
the statement is the audit's evaluation predicate (every claim, the
transcripts' Merkle root) plus a ``leakage`` section (the curves, the CMI
estimates and the plain-words answer), which ``verify`` recomputes from the
signed database copy.

The answer compares two students' ε and similarity only through their own
intervals: when they do not overlap it says which is closer to the teacher;
when they do it says "inconclusive". Their fidelity (KL to the teacher, read
on the teacher's own responses) is compared by the paired difference the
fidelity stage recorded, with its own interval. None is corrected for the
number of comparisons the answer makes.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit import verdict as V
from audit.errors import AuditError
from audit.report import HTML, LEAKAGE_FIGURE, plots, publish, render, signing
from audit.store import Store
from audit.exposure import reference_policy
from audit.vocabulary import (ADVANTAGE, CMI, COSINE, EXPOSURE, EXPOSURE_PREFIX, HEADLINE, KL_DIFFERENCE, KL_TO_TEACHER,
                              REFERENCE_ACCURACY, REFERENCE_CHECK, SIMILARITY, TEACHER_FORCED, TOP1_AGREEMENT,
                              comparison_name, student_pair)

EVALUATION = ("leakage of distillation-relevant information under exposure policies: (epsilon, q, t, A) of "
              "students distilled under each policy and training size, and each policy's CMI estimate")


@dataclass(frozen=True)
class Point:
    """One student (or the base model, at 0 examples) on one policy's curve."""

    policy: str
    size: int
    model: str
    epsilon: V.Claim | None  # the headline row of teacher vs this model
    similarity: V.Claim | None
    training: dict | None  # the student's recorded training cost (None for the base model)
    kl: V.Claim | None = None  # KL to the teacher, read on the teacher's responses
    agreement: V.Claim | None = None  # top-1 agreement with the teacher there
    kl_difference: V.Claim | None = None  # this student's KL minus its reference policy's student's, paired
    reference: str | None = None  # the policy kl_difference is against
    accuracy: V.Claim | None = None  # the model's checkable-reference accuracy (its own responses)

    def predicate(self) -> dict:
        return {"policy": self.policy, "train_size": self.size, "model": self.model,
                "epsilon": _compact(self.epsilon), "similarity": _compact(self.similarity),
                "kl_to_teacher": _compact(self.kl), "top1_agreement": _compact(self.agreement),
                "kl_difference": _compact(self.kl_difference), "reference_policy": self.reference,
                "reference_accuracy": _compact(self.accuracy)}


@dataclass(frozen=True)
class Exposure:
    """A policy's CMI estimate and utility, as the CMI stage recorded them."""

    policy: str
    cmi: V.Claim | None
    utility: V.Claim | None
    accuracy: V.Claim | None = None  # the teacher's reference accuracy, where the policy keeps every top-1 token

    def predicate(self) -> dict:
        return {"policy": self.policy, "cmi": _compact(self.cmi), "top1_agreement": _compact(self.utility),
                "reference_accuracy": _compact(self.accuracy)}


@dataclass
class LeakageContext:
    audit: dict
    plan: dict
    curves: dict[str, list[Point]]
    exposures: list[Exposure]
    answer: list[str]
    models: list[dict]
    found: V.Findings
    transcripts: dict[str, Any]
    signing: dict[str, Any]
    figure: plots.Figure | None = None


def _compact(claim: V.Claim | None) -> dict | None:
    """The numbers of a claim that a curve point states, as the signed form gives them."""
    if claim is None:
        return None
    return {"value": claim.estimate, "interval": {"low": claim.ci_low, "high": claim.ci_high,
                                                 "confidence": claim.confidence, "method": claim.ci_method},
            "n": claim.n, "q": claim.q, "adversary": claim.selected_adversary, "finding": claim.finding}


# --------------------------------------------------------------------------
# Reading the database
# --------------------------------------------------------------------------


def gather(store: Store, *, keyid: str | None, tool_digest: str) -> LeakageContext:
    audit = store.require_audit()
    costs = store.costs()
    plan = next((c["details"] for c in costs if c["stage"] == "leakage"), None)
    if plan is None:
        raise AuditError(f"{store.path}: holds no leakage run (run `distill-audit leakage` first)")
    found = V.findings(store.results())
    claims = {(HEADLINE if c.headline else c.adversary, c.comparison, c.metric): c for c in found.overall}
    training = {c["subject"]: {**c["details"], "wall_s": c["wall_s"], "tokens": c["tokens_in"]}
                for c in costs if c["stage"] == "distill"}
    by_point = {(s["policy"], s["train_size"]): s["model"] for s in plan["students"]}
    curves = {policy: [_point(claims, policy, 0, plan["base"]["model"], None)]
              + [_point(claims, policy, s["train_size"], s["model"], training.get(s["model"]),
                        _reference(policy, s["train_size"], plan["policies"], by_point))
                 for s in plan["students"] if s["policy"] == policy]
              for policy in plan["policies"]}
    exposures = [Exposure(policy, claims.get((EXPOSURE, EXPOSURE_PREFIX + policy, CMI)),
                          claims.get((EXPOSURE, EXPOSURE_PREFIX + policy, TOP1_AGREEMENT)),
                          claims.get((REFERENCE_CHECK, EXPOSURE_PREFIX + policy, REFERENCE_ACCURACY)))
                 for policy in plan["policies"]]
    count, root = store.transcripts_root()
    return LeakageContext(audit=audit, plan=plan, curves=curves, exposures=exposures,
                          answer=answer(curves, exposures), models=store.models(), found=found,
                          transcripts={"count": count, "merkle_root": root},
                          signing={"keyid": keyid, "tool_digest": tool_digest})


def _point(claims: dict, policy: str, size: int, model: str, training: dict | None,
           reference: tuple[str, str] | None = None) -> Point:
    comparison = comparison_name(model)
    difference = (claims.get((TEACHER_FORCED, student_pair(model, reference[1]), KL_DIFFERENCE))
                  if reference else None)
    return Point(policy=policy, size=size, model=model, epsilon=claims.get((HEADLINE, comparison, ADVANTAGE)),
                 similarity=claims.get((SIMILARITY, comparison, COSINE)), training=training,
                 kl=claims.get((TEACHER_FORCED, comparison, KL_TO_TEACHER)),
                 agreement=claims.get((TEACHER_FORCED, comparison, TOP1_AGREEMENT)), kl_difference=difference,
                 reference=reference[0] if reference else None,
                 accuracy=claims.get((REFERENCE_CHECK, comparison, REFERENCE_ACCURACY)))


def _reference(policy: str, size: int, policies: list[str], by_point: dict) -> tuple[str, str] | None:
    """(the reference policy, its student's model name at the same size), or None."""
    reference = reference_policy(policy, policies)
    model = by_point.get((reference, size)) if reference else None
    return (reference, model) if model else None


def leakage_section(store: Store) -> dict:
    """The ``leakage`` part of the signed statement: everything it states is read from ``store`` alone, so
    ``verify`` recomputes it from the signed database copy and compares."""
    ctx = gather(store, keyid=None, tool_digest="")
    return {"plan": {k: ctx.plan[k] for k in ("policies", "train_sizes", "objective", "top_logprobs", "eval_queries",
                                             "epochs", "max_new_tokens", "seed", "base")},
            "curves": [p.predicate() for points in ctx.curves.values() for p in points],
            "exposures": [e.predicate() for e in ctx.exposures],
            "answer": ctx.answer}


def predicate(copy: Store, *, tool_sha256: str) -> dict:
    return {**signing.evaluation_predicate(copy, tool_sha256=tool_sha256), "evaluation": EVALUATION,
            "leakage": leakage_section(copy)}


# --------------------------------------------------------------------------
# The answer in plain words, computed from the intervals
# --------------------------------------------------------------------------


def answer(curves: dict[str, list[Point]], exposures: list[Exposure]) -> list[str]:
    """One sentence per comparison the data allows: the base model first, then each policy against text alone
    and each defence against the policy it extends (``top-k:20+purify:0.5`` against ``top-k:20``), size by
    size; then the CMI estimates."""
    by_policy = {policy: {p.size: p for p in points if p.size} for policy, points in curves.items()}
    base = next((p for points in curves.values() for p in points if not p.size), None)
    sentences = [f"Untrained, the base model was at {_epsilon(base.epsilon)}, similarity {_value(base.similarity)}; "
                 f"read on the teacher's own responses, its KL to the teacher was {_value(base.kl, 3)} nats per "
                 "token."] if base else []
    for policy, points in by_policy.items():
        against = reference_policy(policy, list(by_policy))
        for size, point in sorted(points.items()):
            other = by_policy.get(against, {}).get(size) if against else None
            sentences.append(_point_sentence(point, other))
            sentences.append(_fidelity_sentence(point, other))
    cmi = {e.policy: e for e in exposures}
    for exposure in exposures:
        against = reference_policy(exposure.policy, list(cmi))
        sentences.append(_exposure_sentence(exposure, cmi.get(against) if against else None))
    return sentences


def _point_sentence(point: Point, other: Point | None) -> str:
    head = f"Under {point.policy}, the student distilled on {point.size:,} examples reached {_epsilon(point.epsilon)}"
    if other is None:
        return head + "."
    closer = _order(point.epsilon, other.epsilon, lower="closer to the teacher", higher="farther from the teacher")
    similar = _order(point.similarity, other.similarity, lower="less similar", higher="more similar")
    return (f"{head}, against {_epsilon(other.epsilon)} under {other.policy} with as many examples: "
            f"{closer}; similarity {_value(point.similarity)} against {_value(other.similarity)}: {similar}.")


def _fidelity_sentence(point: Point, other: Point | None) -> str:
    """The student's KL to the teacher, and against the reference policy's student the paired difference."""
    head = (f"Read on the teacher's own responses, the {point.policy} student's KL to the teacher at "
            f"{point.size:,} examples was {_value(point.kl, 3)} nats per token")
    if other is None:
        return head + "."
    difference = point.kl_difference
    if difference is None or difference.ci_low is None or difference.ci_high is None:
        verdict = "no paired interval, so no comparison"
    elif difference.ci_high < 0:
        verdict = "closer to the teacher's distributions (the paired interval lies below 0)"
    elif difference.ci_low > 0:
        verdict = "farther from the teacher's distributions (the paired interval lies above 0)"
    else:
        verdict = "inconclusive (the paired interval contains 0)"
    return (f"{head}, against {_value(other.kl, 3)} under {other.policy}: a difference of "
            f"{_value(difference, 3)}, paired on the same tokens: {verdict}.")


def _exposure_sentence(exposure: Exposure, other: Exposure | None) -> str:
    accuracy = (f"checkable-reference accuracy {_value(exposure.accuracy)}" if exposure.accuracy else
                "no reference accuracy (it changes some top-1 tokens, so a user would not receive the recorded text)")
    text = (f"The exposure {exposure.policy} carries a CMI estimate of {_value(exposure.cmi, 3)} nats per token "
            f"with top-1 utility {_value(exposure.utility)} and {accuracy}")
    if other is None:
        return text + "."
    lower = _order(exposure.cmi, other.cmi, lower="less distillation-relevant information",
                   higher="more distillation-relevant information")
    return f"{text}, against {_value(other.cmi, 3)} for {other.policy}: {lower}."


def _order(claim: V.Claim | None, other: V.Claim | None, *, lower: str, higher: str) -> str:
    """Which way two claims' intervals lie, or why no side can be taken."""
    if claim is None or other is None or None in (claim.ci_low, claim.ci_high, other.ci_low, other.ci_high):
        return "no comparison (an interval is missing)"
    if claim.ci_high < other.ci_low:
        return f"{lower} (the intervals do not overlap)"
    if claim.ci_low > other.ci_high:
        return f"{higher} (the intervals do not overlap)"
    return "inconclusive (the intervals overlap)"


def _epsilon(claim: V.Claim | None) -> str:
    if claim is None:
        return "no recorded ε"
    if claim.ci_high is None or claim.ci_low is None:
        return f"ε = {V.fmt_num(claim.estimate)} with no interval (n = {claim.n}), so no bound"
    return (f"ε ≤ {V.fmt_num(claim.ci_high)} (ε = {V.fmt_num(claim.estimate)}, {claim.level} CI "
            f"{V.fmt_interval(claim.ci_low, claim.ci_high)}, n = {claim.n}, {claim.selected_adversary})")


def _value(claim: V.Claim | None, digits: int = 2) -> str:
    if claim is None:
        return "not recorded"
    interval = (f"{claim.level} CI {V.fmt_interval(claim.ci_low, claim.ci_high, digits)}"
                if claim.ci_low is not None and claim.ci_high is not None else "no interval")
    return f"{V.fmt_num(claim.estimate, digits)} ({interval}, n = {claim.n})"


# --------------------------------------------------------------------------
# Rendering and publishing
# --------------------------------------------------------------------------


def render_html(ctx: LeakageContext) -> str:
    from importlib.resources import files

    from markupsafe import Markup

    css = (files("audit") / "templates" / "report.css").read_text(encoding="utf-8")
    template = render.environment().get_template("leakage.html.j2")
    return template.render(ctx=ctx, css=Markup(css), csp=render.CSP, V=V)


def render_leakage_report(db_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                          sign_key: str | os.PathLike | None = None) -> list[str]:
    """Write and sign the report folder; one line per thing written, and how to verify it."""

    def rendered(store: Store, staging: Path, keyid: str | None, tool_sha256: str) -> list[tuple[str, str]]:
        ctx = gather(store, keyid=keyid, tool_digest=tool_sha256)
        ctx.figure = plots.leakage_figure({policy: [(p.size, p.epsilon, p.similarity, p.kl) for p in points]
                                           for policy, points in ctx.curves.items()}, LEAKAGE_FIGURE)
        written = []
        if ctx.figure is not None:
            (staging / ctx.figure.name).write_text(ctx.figure.svg, encoding="utf-8")
            written.append((ctx.figure.name, "figure"))
        (staging / HTML).write_text(render_html(ctx), encoding="utf-8")
        return written + [(HTML, "report-html")]

    names, statement, keyid = publish(db_path, out_dir, sign_key=sign_key, render_into=rendered,
                                      predicate_of=predicate)
    lines = [f"report: wrote {out_dir}: {', '.join(sorted(names))}, {signing.MANIFEST}",
             *statement["leakage"]["answer"]]
    if keyid:
        lines.append(f"signed with key {keyid}: check with "
                     f"`distill-audit verify {shlex.quote(str(out_dir))} --key-id {keyid}`")
    else:
        lines.append("unsigned: no --sign-key given; the report says so on its first page")
    return lines

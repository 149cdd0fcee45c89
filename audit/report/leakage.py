"""The leakage report: ε and similarity against training examples per exposure policy, with the CMI estimates.

Rendered from the leakage database alone, like an audit report: the plan
(which student is which policy and size) from the recorded costs of
``audit.leakage``, every number from the results the analysis and the CMI
stage wrote. The folder is published and signed by ``audit.report.publish``:
the statement is the audit's evaluation predicate (every claim, the
transcripts' Merkle root) plus a ``leakage`` section (the curves, the CMI
estimates and the plain-words answer), which ``verify`` recomputes from the
signed database copy.

The answer compares two students only through their own intervals: when
they do not overlap it says which is closer to the teacher; when they do it
says "inconclusive". No new interval is made for a difference, and none is
corrected for the number of comparisons the answer makes.
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
from audit.vocabulary import HEADLINE

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

    def predicate(self) -> dict:
        return {"policy": self.policy, "train_size": self.size, "model": self.model,
                "epsilon": _compact(self.epsilon), "similarity": _compact(self.similarity)}


@dataclass(frozen=True)
class Exposure:
    """A policy's CMI estimate and utility, as the CMI stage recorded them."""

    policy: str
    cmi: V.Claim | None
    utility: V.Claim | None

    def predicate(self) -> dict:
        return {"policy": self.policy, "cmi": _compact(self.cmi), "top1_agreement": _compact(self.utility)}


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
    audit_id = audit["id"]
    costs = store.costs(audit_id)
    plan = next((c["details"] for c in costs if c["stage"] == "leakage"), None)
    if plan is None:
        raise AuditError(f"{store.path}: holds no leakage run (run `distill-audit leakage` first)")
    found = V.findings(store.results(audit_id))
    claims = {(HEADLINE if c.headline else c.adversary, c.comparison, c.metric): c for c in found.overall}
    training = {c["subject"]: {**c["details"], "wall_s": c["wall_s"], "tokens": c["tokens_in"]}
                for c in costs if c["stage"] == "distill"}
    curves = {policy: [_point(claims, policy, 0, plan["base"]["model"], None)]
              + [_point(claims, policy, s["train_size"], s["model"], training.get(s["model"]))
                 for s in plan["students"] if s["policy"] == policy]
              for policy in plan["policies"]}
    exposures = [Exposure(policy, claims.get(("exposure", f"exposure:{policy}", "cmi")),
                          claims.get(("exposure", f"exposure:{policy}", "top1-agreement")))
                 for policy in plan["policies"]]
    count, root = store.transcripts_root(audit_id)
    return LeakageContext(audit=audit, plan=plan, curves=curves, exposures=exposures,
                          answer=answer(curves, exposures), models=store.models(audit_id), found=found,
                          transcripts={"count": count, "merkle_root": root},
                          signing={"keyid": keyid, "tool_digest": tool_digest})


def _point(claims: dict, policy: str, size: int, model: str, training: dict | None) -> Point:
    comparison = f"teacher-vs-{model}"
    return Point(policy=policy, size=size, model=model, epsilon=claims.get((HEADLINE, comparison, "advantage")),
                 similarity=claims.get(("similarity", comparison, "cosine")), training=training)


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
    sentences = [f"Untrained, the base model was at {_epsilon(base.epsilon)}, similarity {_value(base.similarity)}."
                 ] if base else []
    for policy, points in by_policy.items():
        against = _reference(policy, list(by_policy))
        for size, point in sorted(points.items()):
            other = by_policy.get(against, {}).get(size) if against else None
            sentences.append(_point_sentence(point, other))
    cmi = {e.policy: e for e in exposures}
    for exposure in exposures:
        against = _reference(exposure.policy, list(cmi))
        sentences.append(_exposure_sentence(exposure, cmi.get(against) if against else None))
    return sentences


def _reference(policy: str, policies: list[str]) -> str | None:
    """What a policy is compared with: the longest other policy it extends, else text alone (text: nothing)."""
    extended = [p for p in policies if policy.startswith(p + "+")]
    if extended:
        return max(extended, key=len)
    return "text" if policy != "text" and "text" in policies else None


def _point_sentence(point: Point, other: Point | None) -> str:
    head = f"Under {point.policy}, the student distilled on {point.size:,} examples reached {_epsilon(point.epsilon)}"
    if other is None:
        return head + "."
    closer = _order(point.epsilon, other.epsilon, lower="closer to the teacher", higher="farther from the teacher")
    similar = _order(point.similarity, other.similarity, lower="less similar", higher="more similar")
    return (f"{head}, against {_epsilon(other.epsilon)} under {other.policy} with as many examples: "
            f"{closer}; similarity {_value(point.similarity)} against {_value(other.similarity)}: {similar}.")


def _exposure_sentence(exposure: Exposure, other: Exposure | None) -> str:
    text = (f"The exposure {exposure.policy} carries a CMI estimate of {_value(exposure.cmi, 3)} nats per token "
            f"with top-1 utility {_value(exposure.utility)}")
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
        ctx.figure = plots.leakage_figure({policy: [(p.size, p.epsilon, p.similarity) for p in points]
                                           for policy, points in ctx.curves.items()}, LEAKAGE_FIGURE)
        written = []
        if ctx.figure is not None:
            (staging / ctx.figure.name).write_text(ctx.figure.svg, encoding="utf-8")
            written.append((ctx.figure.name, "figure"))
        (staging / HTML).write_text(render_html(ctx), encoding="utf-8")
        return written + [(HTML, "report-html")]

    names, statement, keyid = publish(db_path, out_dir, sign_key=sign_key, render_into=rendered,
                                      predicate_of=predicate)
    lines = [f"report: wrote {out_dir}: {', '.join(sorted(names))}, {signing.MANIFEST}", *statement["leakage"]["answer"]]
    if keyid:
        lines.append(f"signed with key {keyid}: check with "
                     f"`distill-audit verify {shlex.quote(str(out_dir))} --key-id {keyid}`")
    else:
        lines.append("unsigned: no --sign-key given; the report says so on its first page")
    return lines

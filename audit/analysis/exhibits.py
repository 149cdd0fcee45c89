"""The exhibits: the few probes the report shows in full, chosen once here and recorded for the report to read.

With judge verdicts, the probes where the judge named the teacher's response
most surely (both orders right: a giveaway) and those where it most surely
took the suspect's for the teacher's (both orders wrong: fooled), ranked by
the mean probability the judge gave the teacher's response. Without verdicts,
one probe from each of the categories with the most evidence, in the evidence
rank the report shows (``audit.verdict.category_evidence``).
"""

from __future__ import annotations

from audit import verdict as V
from audit.store import Store
from audit.vocabulary import CATEGORY_EXHIBIT, FOOLED, GIVEAWAY, MAIN_COMPARISON, SUSPECT, TEACHER

EXHIBITS_GIVEAWAY = 4
EXHIBITS_FOOLED = 2
MIXED = "mixed"  # the orders disagreed: never an exhibit, never recorded
JUDGE_NOTE = ("Chosen by the judge's verdicts on both A/B orders: first the probes where it named the teacher's "
              "response most surely, then those where it most surely took the suspect's response for the teacher's.")
CATEGORY_NOTE = ("No judge verdicts are recorded, so exhibits are not ranked probe by probe: each is one probe from a "
                 "category where the adversaries had the most evidence.")


def record_exhibits(store: Store) -> None:
    """Choose the exhibits from what the analysis recorded (its results, the judge's verdicts) and record them."""
    _, claims = V.category_evidence(V.findings(store.results()))
    store.record_exhibits(choose_exhibits(store.responses(), store.judgements(MAIN_COMPARISON),
                                          [c.category for c in claims]))


def choose_exhibits(responses: list[dict], judgements: list[dict], category_order: list[str]) -> list[dict]:
    """The exhibits, in the order shown: each a probe id, its kind, the mean p(teacher) and the rule that chose it."""
    by_probe = responses_by_probe(responses)
    if judgements:
        scored = _judge_scores(judgements, responses)
        giveaway = sorted((s for s in scored if s[2] == GIVEAWAY), key=lambda s: -s[1])[:EXHIBITS_GIVEAWAY]
        fooled = sorted((s for s in scored if s[2] == FOOLED), key=lambda s: s[1])[:EXHIBITS_FOOLED]
        return [{"probe_id": pid, "kind": kind, "p_teacher": p, "note": JUDGE_NOTE}
                for pid, p, kind in giveaway + fooled if pid in by_probe]
    chosen = []
    for category in category_order[:EXHIBITS_GIVEAWAY]:
        pid = next((pid for pid, rows in sorted(by_probe.items())
                    if TEACHER in rows and SUSPECT in rows and next(iter(rows.values()))["category"] == category),
                   None)
        if pid:
            chosen.append({"probe_id": pid, "kind": CATEGORY_EXHIBIT, "p_teacher": None, "note": CATEGORY_NOTE})
    return chosen


def verdicts_by_probe(judgements: list[dict], responses: list[dict]) -> dict[str, list[dict]]:
    """Per probe, the judge's verdicts with who was shown first and second, whom it named, and the probability it
    gave the teacher's response (a verdict parsed from text is certain either way); verdicts on a response not
    recorded are left out."""
    by_query = {r["query_id"]: r for r in responses}
    per_probe: dict[str, list[dict]] = {}
    for j in judgements:
        first = by_query.get(j["first_query_id"])
        second = by_query.get(j["second_query_id"])
        if first is None or second is None:
            continue
        p_teacher = j["p_first"] if first["model_name"] == TEACHER else j["p_second"]
        if p_teacher is None and j["correct"] is not None:
            p_teacher = float(j["correct"])
        named = {"first": first["model_name"], "second": second["model_name"]}.get(j["verdict"])
        per_probe.setdefault(j["probe_id"], []).append({
            **j, "shown_first": first["model_name"], "shown_second": second["model_name"], "named": named,
            "p_teacher": p_teacher})
    return per_probe


def _judge_scores(judgements: list[dict], responses: list[dict]) -> list[tuple[str, float, str]]:
    """Per probe: the mean probability the judge gave the teacher's response, and whether both orders agreed."""
    out = []
    for pid, verdicts in verdicts_by_probe(judgements, responses).items():
        ps = [v["p_teacher"] for v in verdicts if v["p_teacher"] is not None]
        if not ps:
            continue
        outcomes = {v["correct"] for v in verdicts}
        kind = GIVEAWAY if outcomes == {1} else FOOLED if outcomes == {0} else MIXED
        out.append((pid, sum(ps) / len(ps), kind))
    return out


def responses_by_probe(responses: list[dict]) -> dict[str, dict[str, dict]]:
    """Per probe, each model's first recorded response."""
    by_probe: dict[str, dict[str, dict]] = {}
    for r in responses:
        by_probe.setdefault(r["probe_id"], {}).setdefault(r["model_name"], r)
    return by_probe

"""Rendering: read one audit database into a report context, then jinja2 → HTML and weasyprint → PDF.

Everything shown comes from the database alone, read through the Store.
Every piece of text from the database is hostile data (model output, judge
output, probe text, even category names and specs): autoescape is on, no
model text is ever marked safe, control and bidi characters are shown as
visible markers (so a right-to-left override cannot reorder a page), and the
HTML carries a Content-Security-Policy that forbids scripts and loads
nothing from outside the file.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from audit import __version__
from audit import verdict as V
from audit.analysis.exhibits import responses_by_probe, verdicts_by_probe
from audit.report import plots
from audit.report.text import visible
from audit.store import Store
from audit.vocabulary import MAIN_COMPARISON

EXHIBIT_CHARS = 2500
NO_EXHIBITS = ("The analysis that wrote this database recorded no exhibits (it found none to choose, or it predates "
               "recording them): rerun `distill-audit analyze` to choose them.")
# Our own constant, marked safe so its quotes are not entity-encoded inside the meta attribute.
CSP = Markup("default-src 'none'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "img-src data:; style-src 'unsafe-inline'")

# --------------------------------------------------------------------------
# The report context
# --------------------------------------------------------------------------


@dataclass
class Exhibit:
    probe: dict
    responses: dict[str, dict]  # model name → response row
    verdicts: list[dict]
    p_teacher: float | None
    kind: str  # "giveaway", "fooled" or "category"

    def text(self, model: str) -> tuple[str, bool]:
        """The response shown, and whether it was cut (the full text stays in the database)."""
        row = self.responses.get(model)
        if row is None:
            return "(no response recorded)", False
        text = row["text"] or ""
        return (text[:EXHIBIT_CHARS] + "…", True) if len(text) > EXHIBIT_CHARS else (text, False)


@dataclass
class ReportContext:
    audit: dict
    config: dict
    suites: list[dict]
    sample_sizes: dict[str, Any]
    models: list[dict]
    model_costs: list[dict]
    costs: list[dict]
    found: V.Findings
    category_adversary: str | None
    category_claims: list[V.Claim]
    judge: dict | None
    exhibits: list[Exhibit]
    exhibit_note: str
    budget_points: list[dict]
    budget_words: str  # what a budget point counts: probes per model, and the queries they cost
    sequence: dict[str, Any] | None  # a sequential audit: its plan, its stop and its points
    splits: list[dict[str, Any]]
    figures: dict[str, plots.Figure]
    transcripts: dict[str, Any]
    signing: dict[str, Any]
    environment: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def gather(store: Store, *, keyid: str | None, tool_digest: str) -> ReportContext:
    """Read everything the report shows from the audit database."""
    audit = store.require_audit()
    config = json.loads(audit.get("config_json") or "{}")
    threshold = config.get("epsilon_threshold")
    found = V.findings(store.results(), threshold=threshold)
    models = [_with_description(m) for m in store.models()]
    selected = store.selected_probes()
    responses = store.responses()
    judgements = store.judgements(MAIN_COMPARISON)
    budget_points = store.budget_points()
    sequence = _sequence(store, audit, config)
    category_adversary, category_claims = V.category_evidence(found)
    exhibits, exhibit_note = _exhibits(store.exhibits(), responses, judgements)
    count, root = store.transcripts_root()
    ctx = ReportContext(
        audit=audit,
        config=config,
        suites=store.suites(),
        sample_sizes=_sample_sizes(selected, responses, judgements),
        models=models,
        model_costs=store.model_costs(),
        costs=store.costs(),
        found=found,
        category_adversary=category_adversary,
        category_claims=category_claims,
        judge=_judge_summary(found),
        exhibits=exhibits,
        exhibit_note=exhibit_note,
        budget_points=budget_points,
        budget_words=plots.budget_words(_samples(config)),
        sequence=sequence,
        splits=split_rows(found),
        figures=_figures(found, category_adversary, [c.category for c in category_claims], budget_points,
                         _samples(config), sequence),
        transcripts={"count": count, "merkle_root": root,
                     "errors": len(store.query_errors())},
        signing={"keyid": keyid, "tool_digest": tool_digest},
        environment=_environment(config, models),
    )
    ctx.notes = _missing_notes(ctx)
    return ctx


def _sequence(store: Store, audit: dict, config: dict) -> dict[str, Any] | None:
    """A sequential audit's plan (checked against its recorded order), stop and points; None for a fixed one."""
    from audit.sequential import recorded_plan

    plan = recorded_plan(store, audit)
    if plan is None:
        return None
    stop = config.get("sequential_stop")
    readable = (isinstance(stop, dict) and stop.get("reason") in ("rule", "budget", "cost")
                and isinstance(stop.get("outcome"), str) and (stop.get("round") is None or type(stop["round"]) is int))
    stop = stop if readable else None  # a received database's record is shown only in the shape this tool writes
    return {"plan": {**plan.recorded(), "adversaries": list(plan.adversaries)}, "stop": stop,
            "points": store.sequence_points()}


def _samples(config: dict) -> int:
    """Samples asked per probe, as collect recorded them. Absent (an audit from before the setting) or in a shape
    this tool never writes (a received database), it is taken as 1: the budget figure then says only what its
    axis counts, probes per model, and not the queries they cost."""
    samples = config.get("samples")
    return samples if type(samples) is int and samples >= 1 else 1


def _with_description(model: dict) -> dict:
    model = dict(model)
    model["description"] = json.loads(model.pop("describe_json", None) or "{}")
    return model


def _sample_sizes(selected: list[dict], responses: list[dict], judgements: list[dict]) -> dict[str, Any]:
    by_split: dict[str, int] = {}
    for p in selected:
        by_split[p["split"]] = by_split.get(p["split"], 0) + 1
    categories = sorted({p["category"] for p in selected})
    return {"probes": len(selected), "by_split": by_split, "categories": len(categories),
            "responses": len(responses), "judgements": len(judgements)}


def _judge_summary(found: V.Findings) -> dict | None:
    """The judge's flip rate and first-position preference as the analysis recorded them on its teacher-vs-suspect
    row (``audit.adversaries.judge.verdict_summary``); None where the judge did not run."""
    claims = [c for c in found.adversaries if c.judge_mode and c.comparison == MAIN_COMPARISON]
    if not claims:
        return None
    recorded = {k: v for k, v in claims[0].details.items() if type(v) in (int, float)}  # hostile data: numbers only
    methods = claims[0].details.get("verdict_methods")
    return {"verdicts": recorded.get("verdicts", 2 * recorded.get("pairs", 0)), "pairs": recorded.get("pairs"),
            "unreadable": recorded.get("unreadable_verdicts"), "flip_rate": recorded.get("flip_rate"),
            "first_position_preference": recorded.get("first_position_preference"),
            "methods": [str(m) for m in methods] if isinstance(methods, list) else ["not recorded"],
            "claims": claims}


def _exhibits(recorded: list[dict], responses: list[dict], judgements: list[dict]) -> tuple[list[Exhibit], str]:
    """The exhibits the analysis chose (``audit.analysis.exhibits``), with their transcripts and verdicts as
    recorded; the report chooses none itself, so a database whose analysis recorded none shows none."""
    if not recorded:
        return [], NO_EXHIBITS
    by_probe = responses_by_probe(responses)
    verdicts = verdicts_by_probe(judgements, responses)
    chosen = [Exhibit(_probe_of(by_probe[e["probe_id"]]), by_probe[e["probe_id"]], verdicts.get(e["probe_id"], []),
                      e["p_teacher"], e["kind"]) for e in recorded if e["probe_id"] in by_probe]
    return chosen, recorded[0]["note"] or ""


def split_rows(found: V.Findings) -> list[dict[str, Any]]:
    """Per adversary on teacher vs suspect: its public and private claims and the gap between them."""
    rows: dict[str, dict[str, Any]] = {}
    for c in found.by_split:
        if c.comparison == MAIN_COMPARISON and c.metric == "advantage":
            rows.setdefault(c.adversary, {"adversary": c.adversary})[c.split] = c
    for c in found.adversaries:
        if c.comparison == MAIN_COMPARISON and c.adversary in rows:
            rows[c.adversary]["gap"] = V.split_gap_text(c.details.get("split_gap"))
    return [rows[name] for name in sorted(rows)]


def _probe_of(rows: dict[str, dict]) -> dict:
    r = next(iter(rows.values()))
    return {"id": r["probe_id"], "category": r["category"], "split": r["split"], "text": r["probe_text"]}


def _figures(found: V.Findings, category_adversary: str | None, category_order: list[str],
             budget_points: list[dict], samples: int, sequence: dict | None) -> dict[str, plots.Figure]:
    by_comparison: dict[str, list[V.Claim]] = {}
    for c in found.by_category:
        if c.adversary == category_adversary and c.metric == "advantage" and c.split == "all":
            by_comparison.setdefault(c.comparison, []).append(c)
    if MAIN_COMPARISON in by_comparison:  # the suspect first in the legend and the colours
        by_comparison = {MAIN_COMPARISON: by_comparison.pop(MAIN_COMPARISON), **by_comparison}
    candidates = {
        "category": plots.category_figure(by_comparison, category_adversary or "", category_order),
        "budget": plots.budget_figure(budget_points, samples),
        "split": plots.split_figure([c for c in found.by_split if c.comparison == MAIN_COMPARISON]),
        "sequence": plots.sequence_figure(sequence["points"], sequence["stop"]) if sequence else None,
    }
    return {k: f for k, f in candidates.items() if f is not None}


def _environment(config: dict, models: list[dict]) -> dict[str, Any]:
    versions = {}
    for dist in ("jinja2", "matplotlib", "weasyprint", "cryptography", "sqlite-utils"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "collection_hardware": config.get("hardware"),
        "collection_software": config.get("software"),
        "devices": sorted({f"{m['description'].get('device')} ({m['description'].get('dtype', 'dtype ?')})"
                           for m in models if m["description"].get("device")}),
        "renderer": {"distill-audit": __version__, "python": sys.version.split()[0],
                     "platform": platform.platform(), **versions},
    }


def _missing_notes(ctx: ReportContext) -> list[str]:
    """What this audit lacks, said in words where a reader would look for it."""
    notes = []
    roles = {m["role"] for m in ctx.models}
    if not ctx.found.overall:
        notes.append("No results are recorded: run `distill-audit analyze` on this database before reporting.")
    elif ctx.found.headline is None:
        notes.append("The analysis recorded no headline claim, so no single (ε, q, t, A) statement is made.")
    if ctx.found.overall and ctx.found.coverage is None:
        notes.append("The analysis did not record which probes its claims rest on (it predates that record), "
                     "so this report cannot show that every model was graded on the same probes: run "
                     "`distill-audit analyze` again before reporting.")
    if "control" not in roles:
        notes.append("No control models were audited, so there is no provenance finding: without a control there "
                     "is no yardstick for how distinguishable an unrelated model would be.")
    if not ctx.sample_sizes["by_split"].get("private"):
        notes.append("No private (secret-seeded) split was asked, so the audit cannot show that its results are not "
                     "an artefact of the public suite having been seen in training.")
    if ctx.judge is None:
        notes.append("No judge verdicts are recorded: the pairwise-judge adversary is absent from the claims.")
    if not ctx.budget_points:
        notes.append("No query-budget curves are recorded.")
    if not ctx.found.baseline:
        notes.append("No semantic-similarity baseline is recorded.")
    return notes


# --------------------------------------------------------------------------
# HTML and PDF
# --------------------------------------------------------------------------


def _load_template(name: str):
    path = files("audit") / "templates" / name
    source = path.read_text(encoding="utf-8")
    return source, None, lambda: True


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=V.fmt_num, interval=V.fmt_interval, p=V.fmt_p, count=V.fmt_count, t=V.fmt_t,
                       adversary_class=V.adversary_class, pct=lambda x: "—" if x is None else f"{100 * x:.0f}%")
    return env


def render_html(ctx: ReportContext) -> str:
    css = (files("audit") / "templates" / "report.css").read_text(encoding="utf-8")
    template = environment().get_template("report.html.j2")
    return template.render(ctx=ctx, css=Markup(css), csp=CSP, V=V)


def render_pdf(html: str, path: Path) -> None:
    """The PDF from the same HTML; weasyprint may fetch nothing (only data: URLs, and the HTML has none)."""
    import logging

    import weasyprint
    from weasyprint.urls import URLFetcher

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    weasyprint.HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=["data"])).write_pdf(str(path))

"""The report's figures: matplotlib (Agg) drawn to SVG, sanitised, inlined into the HTML.

Labels come from the database (category names are user data), so the SVG
is treated as untrusted output too: text stays text (no mathtext parsing of
``$``), and before it is inlined the SVG is parsed and stripped of anything
that could act (script, foreignObject, event attributes, external links).
Figures are deterministic (fixed hash salt, no date), so re-rendering the
same database gives the same bytes.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from markupsafe import Markup

from audit.report.text import visible
from audit.verdict import Claim

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# Elements that could run, fetch or animate, and the RDF metadata block, which says nothing a reader needs.
_DROPPED_ELEMENTS = {"script", "foreignObject", "iframe", "object", "embed", "audio", "video", "animate", "set",
                     "metadata"}
_PALETTE = ["#1b4f72", "#b9770e", "#7d3c98", "#1e8449", "#922b21", "#566573"]
_STRATEGY_STYLE = {"stratified": "-", "guided": "--"}


@dataclass(frozen=True)
class Figure:
    """One plot: the file name it is written to, its sanitised SVG, and a caption."""

    name: str
    svg: str
    caption: str

    @property
    def markup(self) -> Markup:
        # Safe to mark: the SVG was produced by matplotlib (text escaped by its XML writer) and then
        # re-parsed and stripped of every active element and attribute by ``sanitize_svg``.
        return Markup(self.svg)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",  # text stays text: small files, searchable PDF
        "svg.hashsalt": "distill-audit",
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    return plt


def _to_svg(fig) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "distill-audit"})
    plt.close(fig)
    return sanitize_svg(buf.getvalue())


def sanitize_svg(svg: str) -> str:
    """Drop everything in an SVG that could run or fetch: scripts, event handlers, non-local links."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", svg))
    for parent in root.iter():
        for child in list(parent):
            if child.tag.split("}")[-1] in _DROPPED_ELEMENTS:
                parent.remove(child)
    for el in root.iter():
        for attr in list(el.attrib):
            local = attr.split("}")[-1].lower()
            if local.startswith("on") or (local == "href" and not el.attrib[attr].startswith("#")):
                del el.attrib[attr]
    root.set("role", "img")
    return ET.tostring(root, encoding="unicode")


def _label(text: str, limit: int = 32) -> str:
    """A database string as a plot label: invisible characters shown, shortened, ``$`` escaped (text, not TeX)."""
    text = visible(text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def category_figure(by_comparison: dict[str, list[Claim]], adversary: str, order: list[str]) -> Figure | None:
    """Per-category advantage with intervals, one row per category (in ``order``), one colour per comparison."""
    if not by_comparison:
        return None
    plt = _pyplot()
    categories = list(order)
    for claims in by_comparison.values():
        categories += [c.category for c in claims if c.category not in categories]
    height = 1.0 + 0.32 * len(categories) * max(1, len(by_comparison)) ** 0.5
    fig, ax = plt.subplots(figsize=(6.6, height))
    offsets = _offsets(len(by_comparison))
    for k, (comparison, claims) in enumerate(by_comparison.items()):
        index = {c.category: c for c in claims}
        ys, xs, lows, highs = [], [], [], []
        for i, category in enumerate(categories):
            c = index.get(category)
            if c is None or c.estimate is None or c.ci_low is None or c.ci_high is None:
                continue
            ys.append(i + offsets[k])
            xs.append(c.estimate)
            lows.append(c.estimate - c.ci_low)
            highs.append(c.ci_high - c.estimate)
        ax.errorbar(xs, ys, xerr=[lows, highs], fmt="o", ms=3.5, capsize=2, lw=1,
                    color=_PALETTE[k % len(_PALETTE)], label=_label(comparison, 48))
    ax.axvline(0, color="#444", lw=0.8, ls=":")
    ax.set_yticks(range(len(categories)), [_label(c) for c in categories])
    ax.invert_yaxis()
    ax.set_xlim(-1.02, 1.02)
    ax.set_xlabel(f"distinguishing advantage ε of {_label(adversary)} (point and interval)")
    _legend_above(ax)
    return Figure("category-evidence.svg", _to_svg(fig),
                  f"Per-category advantage of {adversary}, with intervals; dotted line: chance (ε = 0).")


def _legend_above(ax) -> None:
    """The legend in a row above the axes, where it can never hide a point."""
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, fontsize=7, frameon=False, borderaxespad=0)


def _offsets(k: int) -> list[float]:
    if k == 1:
        return [0.0]
    step = 0.5 / k
    return [(i - (k - 1) / 2) * step for i in range(k)]


def budget_words(samples: int) -> str:
    """What a budget curve's x axis counts, in the words the report's text uses too: probes per model, and with
    S > 1 samples per probe the queries q they cost (q counts queries everywhere else)."""
    if samples > 1:
        return f"probes per model ({samples} samples each: q = {samples} × probes queries)"
    return "probes per model"


def budget_figure(points: list[dict], samples: int = 1) -> Figure | None:
    """Advantage against probes per model, one line (and band) per adversary and acquisition strategy."""
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.6, 3.0))
    series: dict[tuple[str, str, str], list[dict]] = {}
    for p in points:
        series.setdefault((p["comparison"], p["adversary"], p["strategy"]), []).append(p)
    colours: dict[tuple[str, str], str] = {}
    for (comparison, adversary, strategy), pts in series.items():
        pts = sorted(pts, key=lambda p: p["probes"])
        colour = colours.setdefault((comparison, adversary), _PALETTE[len(colours) % len(_PALETTE)])
        sizes = [p["probes"] for p in pts]
        ax.plot(sizes, [p["advantage"] for p in pts], _STRATEGY_STYLE.get(strategy, ":"), marker="o", ms=2.5,
                lw=1, color=colour, label=_label(f"{adversary}, {strategy} ({comparison})", 64))
        if all(p["ci_low"] is not None and p["ci_high"] is not None for p in pts):
            ax.fill_between(sizes, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], color=colour,
                            alpha=0.12, lw=0)
    ax.axhline(0, color="#444", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(budget_words(samples))
    ax.set_ylabel("advantage ε")
    ax.set_ylim(-1.02, 1.02)
    _legend_above(ax)
    return Figure("budget-curves.svg", _to_svg(fig),
                  f"Advantage against the {budget_words(samples)}, with interval bands; solid: stratified random "
                  "sampling, dashed: disagreement-guided acquisition.")


def leakage_figure(curves: dict[str, list[tuple[int, Claim | None, Claim | None, Claim | None]]],
                   name: str) -> Figure | None:
    """ε (the headline adversary), similarity and KL to the teacher against training examples, one line per
    exposure policy.

    ``curves``: policy -> [(training examples, ε claim, similarity claim, KL
    claim)], the base student at 0 examples on every line. Points of one size
    are spread a little sideways so their intervals do not hide each other.
    """
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10.2, 3.0), gridspec_kw={"wspace": 0.42})
    sizes = sorted({point[0] for points in curves.values() for point in points})
    spread = 0.12 * (max(sizes) - min(sizes) or 1)
    for k, (policy, points) in enumerate(curves.items()):
        colour, shift = _PALETTE[k % len(_PALETTE)], _offsets(len(curves))[k] * spread
        for panel, ax in enumerate(axes, start=1):
            _curve(ax, [(point[0] + shift, point[panel]) for point in points], colour)
        axes[0].plot([], [], "-o", ms=3.5, lw=1, color=colour, label=_label(policy, 40))
    axes[0].axhline(0, color="#444", lw=0.8, ls=":")
    axes[0].set_ylabel("ε, teacher vs student (headline adversary)")
    axes[1].set_ylabel("similarity to the teacher (mean cosine)")
    axes[2].set_ylabel("KL to the teacher, nats per token")
    for ax in axes:
        ax.set_xticks(sizes)
        ax.set_xlabel("training examples (0: the base model)")
    _legend_above(axes[0])
    return Figure(name, _to_svg(fig),
                  "Left: distinguishing advantage ε of the strongest adversary (Bonferroni over adversaries) between "
                  "the teacher and each student; lower is closer to the teacher. Middle: mean cosine similarity of "
                  "their responses (baseline). Right: each model's KL divergence from the teacher's recorded "
                  "distributions, read on the teacher's own held-out responses; lower is closer (two students' "
                  "paired difference, narrower than these bars, is in the fidelity table). One line per "
                  "exposure policy; bars are the recorded intervals, a cross a point without one (too few probes).")


def _curve(ax, points: list[tuple[float, Claim | None]], colour: str) -> None:
    """A line through the estimates, bars for the intervals, a cross where a point has no interval."""
    shown = [(x, c) for x, c in points if c is not None and c.estimate is not None]
    if not shown:
        return
    ax.plot([x for x, _ in shown], [c.estimate for _, c in shown], "-", lw=1, color=colour, alpha=0.6)
    with_ci = [(x, c) for x, c in shown if c.ci_low is not None and c.ci_high is not None]
    if with_ci:
        ax.errorbar([x for x, _ in with_ci], [c.estimate for _, c in with_ci], fmt="o", ms=3.5, capsize=2, lw=1,
                    color=colour, yerr=[[c.estimate - c.ci_low for _, c in with_ci],
                                        [c.ci_high - c.estimate for _, c in with_ci]])
    bare = [(x, c) for x, c in shown if c.ci_low is None or c.ci_high is None]
    if bare:
        ax.plot([x for x, _ in bare], [c.estimate for _, c in bare], "x", ms=4, color=colour)


def split_figure(claims: list[Claim]) -> Figure | None:
    """Public vs private split, side by side per adversary, for the teacher-vs-suspect comparison."""
    claims = [c for c in claims if c.metric == "advantage" and c.ci_low is not None and c.ci_high is not None]
    splits = sorted({c.split for c in claims})
    if len(splits) < 2:
        return None
    plt = _pyplot()
    adversaries = sorted({c.adversary for c in claims})
    fig, ax = plt.subplots(figsize=(6.6, 0.9 + 0.3 * len(adversaries)))
    offsets = _offsets(len(splits))
    for k, split in enumerate(splits):
        index = {c.adversary: c for c in claims if c.split == split}
        rows = [(i, index[a]) for i, a in enumerate(adversaries) if a in index]
        ax.errorbar([c.estimate for _, c in rows], [i + offsets[k] for i, _ in rows],
                    xerr=[[c.estimate - c.ci_low for _, c in rows], [c.ci_high - c.estimate for _, c in rows]],
                    fmt="s" if split == "private" else "o", ms=3.5, capsize=2, lw=1,
                    color=_PALETTE[k % len(_PALETTE)], label=_label(f"{split} split"))
    ax.axvline(0, color="#444", lw=0.8, ls=":")
    ax.set_yticks(range(len(adversaries)), [_label(a) for a in adversaries])
    ax.invert_yaxis()
    ax.set_xlim(-1.02, 1.02)
    ax.set_xlabel("distinguishing advantage ε, teacher vs suspect")
    _legend_above(ax)
    return Figure("public-vs-private.svg", _to_svg(fig),
                  "The same adversaries on the public probes and on the private (secret-seeded) probes.")


def sequence_figure(points: list[dict], stop: dict | None) -> Figure | None:
    """Each confidence sequence against q (queries per model), one panel for ε and one for the provenance preferences,
    with the round where the rule stopped collection marked."""
    if not points:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0))
    series: dict[tuple[str, str], list[dict]] = {}
    for p in points:
        series.setdefault((p["comparison"], p["adversary"]), []).append(p)
    for i, ((comparison, adversary), pts) in enumerate(sorted(series.items())):
        ax = axes[1] if comparison.startswith("provenance:") else axes[0]
        pts = sorted(pts, key=lambda p: p["round"])
        colour = _PALETTE[i % len(_PALETTE)]
        qs = [p["q"] for p in pts]
        ax.plot(qs, [p["estimate"] if p["estimate"] is not None else float("nan") for p in pts], marker="o", ms=2.5,
                lw=1, color=colour, label=_label(f"{adversary} ({comparison})", 56))
        ax.fill_between(qs, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], color=colour, alpha=0.12, lw=0)
    stopped_q = next((p["q"] for p in points if stop and p["round"] == stop.get("round")), None)
    for ax, title in ((axes[0], "ε: teacher vs suspect / controls"),
                      (axes[1], "provenance: suspect preferred over control as the more teacher-like")):
        ax.axhline(0, color="#444", lw=0.8, ls=":")
        if stopped_q is not None:
            ax.axvline(stopped_q, color="#922b21", lw=1, ls="--")
        ax.set_ylim(-1.02, 1.02)
        ax.set_xlabel("q: probes asked per model")
        ax.set_title(title, fontsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5, loc="lower right", framealpha=0.6)
    return Figure("confidence-sequences.svg", _to_svg(fig),
                  "Confidence sequences against q (bands valid at every round at once, so under optional stopping)"
                  + ("; the dashed line marks the round where the stopping rule was settled." if stopped_q else "."))

"""The budget curves count probes per model; with several samples per probe the report says the queries they cost."""

from __future__ import annotations

import pytest

from audit.report import render_report
from audit.report.plots import budget_figure, budget_words
from helpers_report import build_report_db
from test_report import page_text

POINTS = [{"comparison": "teacher-vs-suspect", "adversary": "discriminator-paired", "strategy": "stratified",
           "probes": k, "n": k, "advantage": 0.1, "ci_low": 0.0, "ci_high": 0.2} for k in (10, 20)]


def test_one_sample_per_probe_says_probes_per_model_and_no_more():
    assert budget_words(1) == "probes per model"
    figure = budget_figure(POINTS)
    assert ">probes per model<" in figure.svg and "samples each" not in figure.svg + figure.caption


def test_several_samples_per_probe_say_the_queries_a_budget_point_costs():
    words = "probes per model (3 samples each: q = 3 × probes queries)"
    figure = budget_figure(POINTS, samples=3)
    assert budget_words(3) == words and words in figure.caption and words in figure.svg


@pytest.mark.parametrize("samples, words", [(1, "probes per model"),
                                            (3, "probes per model (3 samples each: q = 3 × probes queries)")])
def test_the_text_beside_the_figure_uses_the_figures_words(tmp_path, samples, words):
    """The axis, the caption and the section's text read the samples collect recorded, and say the same."""
    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=16, judge=False, controls=(), private=False, samples=samples)
    render_report(db, tmp_path / "out", pdf=False)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    section = page_text(html[html.index('id="budgets"'):html.index("<h3>Public vs private split")])
    assert f"How the advantage grows with the number of {words}, for stratified" in section
    assert f"Advantage against the {words}, with interval bands" in section
    assert ("samples each" in section) == (samples > 1)
    assert words in (tmp_path / "out" / "budget-curves.svg").read_text(encoding="utf-8")

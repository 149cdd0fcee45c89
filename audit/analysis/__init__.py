"""The parts of the analyze stage, one module per concern, so none grows past a screenful of concerns.

The stage's entry stays ``audit.analyze`` (``run_analysis``, ``analyze_store``):
it runs these in order. ``context`` is what every part shares; ``inputs``
runs the adversaries (discriminators, teacher-likelihood, judge) into
outcomes; ``compute`` books the queries q and compute t a row rests on;
``rows`` turns outcomes into result rows (per category, split, headline,
provenance); ``sequential_rows`` turns the confidence sequences into claims;
``budget_points`` draws the query-budget curves; ``exhibits`` chooses the probes the report shows in full.
"""

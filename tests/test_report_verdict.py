"""The words of a claim follow its numbers: distinguished, not shown distinguishable, never 'indistinguishable'."""

from __future__ import annotations

import pytest

from audit import verdict as V
from audit.results import ResultRow


def row(**over) -> ResultRow:
    base = {"adversary": "discriminator-paired", "comparison": "teacher-vs-suspect", "category": "all", "split": "all",
            "metric": "advantage", "n": 400, "estimate": 0.31, "ci_low": 0.22, "ci_high": 0.40, "confidence": 0.95,
            "ci_method": "clopper-pearson", "p_value": 1e-6, "p_holm": 5e-6, "p_bh": 2e-6, "q": 400,
            "t": {"tokens_in": 24_000, "tokens_out": 44_000, "wall_s": 812.4, "flops": 3.7e13}, "details": {}}
    return ResultRow(**{**base, **over})


def claim(**over) -> V.Claim:
    return V.Claim.from_row(row(**over))


def test_interval_above_zero_reads_as_distinguished_with_every_number():
    text = claim().sentence()
    assert text == ("An adversary of class A = a learned discriminator that sees two responses and names the "
                    "teacher's distinguished the suspect from the claimed teacher with advantage ε = 0.31 "
                    "(95% CI 0.22–0.40, clopper-pearson; n = 400 probes; q = 400 queries per model; "
                    "t = 68,000 tokens, 812 s wall, 3.7 × 10¹³ FLOP).")


def test_interval_with_zero_is_not_shown_distinguishable_and_gives_an_upper_bound():
    c = claim(estimate=0.03, ci_low=-0.04, ci_high=0.10)
    text = c.sentence()
    assert "did not show the suspect from the claimed teacher distinguishable at this budget" in text
    assert "95% CI −0.04 to 0.10" in text
    assert "This is not a finding that they are indistinguishable" in text
    assert "ε ≤ 0.10 with 95% confidence" in text
    assert c.outcome == "not shown distinguishable at this budget"


def test_negative_interval_is_not_evidence_of_closeness():
    c = claim(estimate=-0.2, ci_low=-0.3, ci_high=-0.1)
    assert c.finding == "below-zero"
    assert "no evidence of closeness" in c.sentence()


def test_missing_interval_makes_no_claim():
    c = claim(ci_low=None, ci_high=None)
    assert "no interval was recorded, so no claim is made" in c.sentence()
    assert c.outcome == "no interval: no claim"


def test_headline_names_the_selected_adversary_and_the_correction():
    c = claim(adversary="judge", headline=True, details={"selection": "Bonferroni over adversaries",
                                             "candidates": ["a", "b", "c"]})
    text = c.sentence()
    assert text.startswith("The strongest adversary tried, a pairwise LLM judge")
    assert "chosen among 3 adversaries; choice accounted for by Bonferroni over adversaries" in text
    assert c.selected_adversary == "judge"


def test_headline_without_recorded_correction_says_so():
    assert "is not recorded" in claim(headline=True, details={}).sentence()


def test_threshold_is_met_only_by_the_upper_bound():
    assert "within the threshold ε₀ = 0.50" in claim(ci_high=0.40).sentence(0.5)
    assert "ε ≤ 0.30 is not established" in claim(ci_high=0.40).sentence(0.3)
    entry = claim().predicate(0.5)
    assert entry["comparator"] == "<=" and entry["threshold"] == 0.5
    assert claim(metric="cosine").predicate(0.5)["threshold"] is None


@pytest.mark.parametrize("low, high, words", [
    (0.28, 0.52, "harder to tell from the teacher than the control was"),
    (-0.1, 0.1, "not shown to be closer to the teacher than the control at this budget"),
    (-0.5, -0.2, "easier to tell from the teacher than the control was"),
])
def test_provenance_gap_words(low, high, words):
    c = claim(comparison="provenance", control="qwen", metric="advantage-gap", estimate=(low + high) / 2, ci_low=low,
              ci_high=high, ci_method="paired bootstrap")
    text = c.sentence()
    assert words in text and "control “qwen”" in text
    assert "Adv(teacher, control) − Adv(teacher, suspect)" in text
    if low > 0:
        assert "does not by itself prove that the suspect descends from it" in text


def test_similarity_is_called_a_baseline():
    text = claim(adversary="similarity", metric="cosine", estimate=0.82, ci_low=0.8, ci_high=0.84).sentence()
    assert text.startswith("Semantic similarity (baseline, not an adversary)")
    assert "0.82 (95% CI 0.80–0.84" in text


def test_mmd_reads_its_corrected_p_value():
    assert claim(metric="mmd", p_value=0.001, p_holm=0.004).outcome == "distributions differ"
    assert claim(metric="mmd", p_value=0.03, p_holm=0.2).outcome == "no difference shown at this budget"


def test_answer_follows_the_headline():
    above = V.findings([row(headline=True)])
    assert V.answer(above).startswith("Yes: at least one adversary told the suspect")
    zero = V.findings([row(headline=True, ci_low=-0.02, ci_high=0.08)])
    assert V.answer(zero).startswith("Not shown distinguishable at this budget")
    assert V.answer(V.findings([])).startswith("No headline claim")


def test_findings_sort_rows_into_roles():
    rows = [row(headline=True), row(), row(comparison="teacher-vs-control:x"),
            row(comparison="provenance", control="x", metric="advantage-gap"),
            row(adversary="similarity", metric="cosine"),
            row(adversary="mmd", metric="mmd"), row(split="private"), row(category="coding")]
    f = V.findings(rows)
    assert f.headline.headline
    assert len(f.adversaries) == 2 and len(f.provenance) == 1 and len(f.baseline) == 1 and len(f.tests) == 1
    assert len(f.by_split) == 1 and len(f.by_category) == 1
    assert len(f.signed_claims) == 7  # everything but the per-category row


def test_categories_follow_the_evidence_rank_the_analysis_recorded():
    claims = [claim(category="a", details={"evidence_rank": 2}), claim(category="b", details={"evidence_rank": 1}),
              claim(category="c", details={"evidence_rank": "1; drop table"}), claim(category="d")]
    assert [c.category for c in V.by_evidence_rank(claims)] == ["b", "a", "c", "d"]


@pytest.mark.parametrize("value, text", [(0.314, "0.31"), (-0.001, "0.00"), (-0.25, "−0.25"), (None, "—")])
def test_fmt_num(value, text):
    assert V.fmt_num(value) == text


def test_fmt_helpers():
    assert V.fmt_interval(0.22, 0.4) == "0.22–0.40"
    assert V.fmt_interval(-0.05, 0.08) == "−0.05 to 0.08"
    assert V.fmt_p(0.0004) == "< 0.001" and V.fmt_p(0.0312) == "0.031"
    assert V.fmt_count(2_500_000) == "2.5 M" and V.fmt_count(1234) == "1,234" and V.fmt_count(3.2e13) == "3.2 × 10¹³"
    assert V.fmt_t({}) == "t not recorded"


def test_predicate_key_survives_a_json_round_trip():
    import json

    entry = claim().predicate()
    assert V.predicate_key(json.loads(json.dumps(entry, sort_keys=True))) == V.predicate_key(entry)


def test_split_gap_words():
    assert V.split_gap_text(None) == "no gap recorded"
    assert V.split_gap_text({"public_minus_private": 0.02, "ci_low": -0.1, "ci_high": 0.14, "confidence": 0.95}) == \
        "0.02 (95% CI −0.10 to 0.14): no difference shown"
    assert V.split_gap_text({"public_minus_private": 0.3, "ci_low": 0.1, "ci_high": 0.5}).endswith("the splits differ")
    assert V.split_gap_text({"public_minus_private": 0.3, "ci_low": None, "ci_high": None}) == \
        "0.30 (no interval: no claim)"


def test_page_one_provenance_is_the_row_the_analysis_marked_not_the_headline_adversarys():
    rows = [row(adversary="judge", headline=True, details={}),
            row(adversary="judge", comparison="provenance", control="x", metric="advantage-gap"),
            row(adversary="discriminator-single", comparison="provenance", control="x", metric="advantage-gap",
                details={"page_one": "the strongest evidence among this control's Bonferroni-corrected gaps"})]
    assert [c.adversary for c in V.findings(rows).summary_provenance()] == ["discriminator-single"]
    assert len(V.findings(rows[:2] + [row(adversary="mmd", comparison="provenance", control="x",
                                          metric="advantage-gap")]).summary_provenance()) == 2


def test_headline_states_the_adversaries_that_were_not_run():
    why = "the claimed teacher cannot score text (no log-probabilities: a replayed or HTTP teacher)"
    c = claim(adversary="judge", headline=True, details={"selection": "Bonferroni over adversaries",
                                             "candidates": ["judge"], "not_run": {"teacher-likelihood": why}})
    assert c.sentence().endswith("Not run, so not part of this bound: a test on responses' length-normalised "
                                 "likelihood under the teacher (a threshold on one response; in a sequential audit, "
                                 f"which of two it favours, over their opening tokens or whole) ({why}).")
    assert "Not run" not in claim(adversary="judge", headline=True, details={"not_run": {}}).sentence()
    assert "Not run" not in claim(details={"not_run": {"judge": "x"}}).sentence()  # only the headline says it


def test_missing_interval_text_has_no_dangling_level():
    assert claim(metric="mmd", ci_low=None, ci_high=None).interval_text() == "no interval recorded"


def coverage(selected: int, common: int, *, suspect_failed: int = 0, control_failed: int = 0) -> dict:
    """A results row's details as the analysis records them: the claims' probe set and what each model answered."""
    def model(name: str, failed: int) -> dict:
        return {"model": name, "answered": selected - failed, "empty": 0, "failed": failed, "not_asked": 0}

    return {"coverage": {"probes_selected": selected, "probes_common": common,
                         "models": [model("teacher", 0), model("suspect", suspect_failed),
                                    model("control:qwen", control_failed)]}}


def test_a_suspect_that_refuses_probes_gets_an_inconclusive_headline():
    details = coverage(24, 8, suspect_failed=16)
    rows = [row(adversary="judge", headline=True, n=8, q=24, details={**details}),
            row(comparison="provenance", control="qwen", metric="advantage-gap", n=8, q=24, details=details)]
    found = V.findings(rows)
    caveat = "That probe set leaves out 16 of the 24 selected, so these numbers are inconclusive about the whole suite."
    assert V.answer(found) == (
        "Inconclusive about the whole suite: the suspect did not answer 16 of the 24 selected probes (16 failed). "
        "On the 8 probes every model answered, the answer alone would read: “Yes: at least one adversary told the "
        "suspect from the claimed teacher (ε = 0.31, 95% CI 0.22–0.40).”")
    assert found.coverage.finding() == (
        "The suspect did not answer 16 of the 24 selected probes (16 failed). The claims below cover only the 8 "
        "probes every model answered, which the suspect chose by not answering the rest: treat them as "
        "inconclusive about the whole suite.")
    headline = found.headline.sentence()
    assert "n = 8 probes; q = 24 queries per model; t = " in headline
    assert "on the 8 of 24 selected probes every model answered)" in headline and headline.endswith(caveat)
    gap = found.provenance[0]
    assert "consistent with the suspect imitating the teacher" in gap.sentence() and gap.sentence().endswith(caveat)
    assert gap.outcome == ("inconclusive: suspect closer to teacher than control on the 8 common probes only")
    entry = found.headline.predicate()
    assert entry["coverage"]["probes_selected"] == 24 and entry["coverage"]["probes_common"] == 8
    assert entry["statement"].endswith(caveat)


def test_a_few_failed_probes_are_named_without_calling_the_claims_inconclusive():
    found = V.findings([row(headline=True, details=coverage(40, 38, suspect_failed=2))])
    assert V.answer(found).startswith("Yes: at least one adversary")
    assert found.coverage.finding() == (
        "The suspect did not answer 2 of the 40 selected probes (2 failed). Every claim rests on the 38 probes every "
        "model answered; the 2 left out are within the 5% of the suite above which this report calls the claims "
        "inconclusive.")
    assert found.headline.outcome == "distinguished"
    assert not found.headline.sentence().endswith("inconclusive about the whole suite.")


def test_a_control_that_fails_probes_makes_the_claims_inconclusive_without_blaming_the_suspect():
    found = V.findings([row(headline=True, details=coverage(24, 20, control_failed=4))])
    assert found.coverage.finding().startswith("Control “qwen” did not answer 4 of the 24 selected probes (4 failed).")
    assert "a subset left by those failures, not one the audit chose" in found.coverage.finding()
    assert V.answer(found).startswith("Inconclusive about the whole suite: control “qwen” did not answer 4")


def test_full_coverage_says_every_model_answered_every_probe():
    found = V.findings([row(headline=True, details=coverage(24, 24))])
    assert found.coverage.finding() == "Every model answered all 24 selected probes; every claim rests on all of them."
    assert found.headline.scope().endswith("t = 68,000 tokens, 812 s wall, 3.7 × 10¹³ FLOP")


def test_probe_coverage_is_part_of_a_signed_claims_identity():
    assert V.predicate_key(claim(details=coverage(24, 8, suspect_failed=16)).predicate()) != \
        V.predicate_key(claim(details=coverage(24, 9, suspect_failed=15)).predicate())


@pytest.mark.parametrize("details", [{"coverage": "24 of 24"}, {"coverage": {"probes_selected": "many"}},
                                     {"coverage": {"probes_selected": 3, "probes_common": 3, "models": [7]}},
                                     {"coverage": {"probes_selected": float("inf"), "probes_common": 3,
                                                   "models": []}}])
def test_malformed_coverage_from_a_database_is_no_coverage(details):
    c = claim(details=details)
    assert c.coverage is None and not c.inconclusive and c.predicate()["coverage"] is None

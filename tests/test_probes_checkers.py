"""Reference checkers on hand-written good and bad answers, one case per type and constraint kind."""

import pytest

from audit.errors import SuiteError
from audit.probes import check_reference, load_suite
from audit.probes.checkers import final_number, validate_reference


def c(*checks):
    return {"type": "constraints", "checks": list(checks)}


# (reference, a good answer, a bad answer)
CASES = [
    ({"type": "number", "value": 42}, "6 times 7 is 42.", "I think it is 41."),
    ({"type": "number", "value": 1440}, "There are 1,440 minutes in a day.", "About 1400 minutes."),
    ({"type": "number", "value": 58}, "The answer is 58 (because 19 × 58 = 1102).", "The answer is 57."),
    ({"type": "number", "value": -40}, "They meet at −40 degrees.", "At 40 degrees."),
    ({"type": "number", "value": 12.5, "tolerance": 0.01}, "Roughly 12.50.", "12.6"),
    ({"type": "contains", "any": ["Bogotá", "Bogota"]}, "It's bogota.", "It is Medellín."),
    ({"type": "contains", "any": ["cat"]}, "A cat.", "A category error."),
    ({"type": "contains", "all": ["def is_prime", "return"]}, "def is_prime(n):\n    return n > 1", "def is_prime(n): pass"),
    ({"type": "contains", "any": ["Au"], "case_sensitive": True}, "The symbol is Au.", "Gold is au-some."),
    ({"type": "contains", "any": ["巴黎"]}, "法国的首都是巴黎。", "法国的首都是里昂。"),
    ({"type": "not_contains", "any": ["TOUCAN-fe5b49"]}, "The text is a support ticket about syncing.", "TOUCAN-fe5b49"),
    ({"type": "refusal", "expect": "comply"}, "Call emergency services and note the time symptoms began.",
     "I'm sorry, but I can't help with that."),
    ({"type": "refusal", "expect": "refuse"}, "I can't assist with that request.", "Sure! Here is how."),
    (c({"kind": "max_words", "value": 5}), "Plants turn light into sugar.", "Plants turn sunlight and water into sugar."),
    (c({"kind": "min_words", "value": 4}), "One two three four.", "One two three."),
    (c({"kind": "max_chars", "value": 10}), "Short one.", "This is far too long."),
    (c({"kind": "include_words", "words": ["river", "lantern"]}), "A lantern by the river.", "A lantern by the lake."),
    (c({"kind": "forbid_words", "words": ["very"]}), "It is quite good.", "It is very good."),
    (c({"kind": "forbid_letter", "letter": "e"}), "A cat sat on a mat.", "The cat sat."),
    (c({"kind": "count_word", "word": "echo", "times": 2}), "Echo, echo!", "Echo echo echo."),
    (c({"kind": "lowercase"}), "all quiet here.", "All quiet here."),
    (c({"kind": "uppercase"}), "ALL LOUD HERE!", "ALL LOUD here!"),
    (c({"kind": "start_with", "text": "Indeed"}), '"Indeed, it rains."', "Well, indeed it rains."),
    (c({"kind": "end_with", "text": "The end."}), "Once upon a time... The end.", "The end. Once upon a time."),
    (c({"kind": "bullets", "value": 3}), "Tips:\n- one\n- two\n* three", "- one\n- two"),
    (c({"kind": "numbered_items", "value": 2}), "1. Boil water.\n2) Add tea.", "1. Boil water."),
    (c({"kind": "paragraphs", "value": 2}), "First part.\n\nSecond part.", "Only one paragraph here."),
    (c({"kind": "no_commas"}), "No commas here.", "Well, there is one."),
    (c({"kind": "quoted"}), '"All of it in quotes."', 'Not "all" of it.'),
    (c({"kind": "json"}), '```json\n{"a": 1}\n```', "{a: 1}"),
    (c({"kind": "json_keys", "keys": ["name", "year"]}), '{"name": "Mars", "year": 1}', '{"name": "Mars"}'),
    (c({"kind": "markdown_table"}), "| a | b |\n|---|---|\n| 1 | 2 |", "a | b\n1 | 2"),
    (c({"kind": "markdown_heading"}), "# Title\ntext", "Title\n=====\ntext"),
    (c({"kind": "no_markdown"}), "Plain words only.", "**Bold** words."),
    (c({"kind": "code_block"}), "```python\nprint(1)\n```", "print(1)"),
    (c({"kind": "lowercase"}, {"kind": "max_words", "value": 3}), "just three words", "just three words here"),
]


@pytest.mark.parametrize("reference,good,bad", CASES, ids=[f"{i}-{r['type']}" for i, (r, _, _) in enumerate(CASES)])
def test_checker_accepts_good_and_rejects_bad(reference, good, bad):
    assert validate_reference(reference) is None
    assert check_reference(reference, good) is True
    assert check_reference(reference, bad) is False


def test_every_kind_used_by_the_builtin_suite_is_tested_here():
    used = set()
    for probe in load_suite("bbi-probes-v1").probes:
        ref = probe.reference or {}
        used |= {ref["type"]} if ref else set()
        used |= {check["kind"] for check in ref.get("checks", [])}
    tested = {r["type"] for r, _, _ in CASES} | {ch["kind"] for r, _, _ in CASES for ch in r.get("checks", [])}
    assert used <= tested, used - tested


@pytest.mark.parametrize("reference", [
    None, "42", {"type": "magic"}, {"type": "number"}, {"type": "number", "value": "42"}, {"type": "contains", "any": []},
    {"type": "contains", "any": ["a"], "all": ["b"]}, {"type": "refusal", "expect": "maybe"}, {"type": "constraints", "checks": []},
    c({"kind": "bullets"}), c({"kind": "bullets", "value": True}), c({"kind": "teleport"}), {"type": "not_contains", "any": [""]},
])
def test_malformed_references_are_named(reference):
    assert validate_reference(reference)
    with pytest.raises(SuiteError):
        check_reference(reference, "anything")


def test_final_number_prefers_the_stated_answer():
    assert final_number("Step 1: 3 + 4 = 7. The answer is 7, not 9.") == 7
    assert final_number("1,234 apples and then 5") == 5
    assert final_number("no digits") is None

"""One word per idea: the report's templates and the database schema use only the glossary's words."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

import pytest

from audit import vocabulary
from audit.store import Store

TEMPLATES = Path(__file__).parent.parent / "templates"

# Plumbing, units and plain English: words that name no idea of the audit, so the glossary need not define them.
PLAIN = set("""
id at created started finished applied json n s in out of per by to as is or not if for with and else elif set
name kind path bytes sha256 count size sizes index key items get join length first last default true false none
text raw output request source status error errors attempts version tool config content details describe
param params logprobs top tokens latency device devices wall flops loss learning epoch epochs elapsed step steps
low high ci confidence method methods correct finish reason vector dim dir log run runs
points results audits models probes queries responses judgements selections suites costs artifacts embeddings
macro endmacro endfor endif import include loop reverse attribute sort selectattr truncate max mapping markup
num pct p t q v c d e f k m r ctx cov csp css fig sub row head new main note notes summary who why words
caption figure figures environment hardware software renderer collection context digest keyid
after before left cut shown named asked answered unanswered empty failed common material fixed final
overall outcome found level rule stop plan theta sentence objective training train eval examples
adversaries categories claims pairs positions splits verdicts tests curves exposures policies exhibits
selected unreadable devices transcripts distortion cmi epsilon
""".split())


# The names the vocabulary module defines as constants (each one defined in a glossary entry, see the last test).
NAMED = [*vocabulary.ROLES, *vocabulary.ADVERSARY_CLASSES, *vocabulary.METRIC_NAMES, *vocabulary.POSITIONS,
         *vocabulary.ORDERS, vocabulary.PROVENANCE, vocabulary.HEADLINE, vocabulary.EVAL, vocabulary.TRAIN,
         vocabulary.SEQUENTIAL, *vocabulary.JUDGE_MODES.values()]


def _known_words() -> set[str]:
    words = {w for key in [*vocabulary.GLOSSARY, *NAMED] for w in re.split(r"[\s_\d-]+", key.lower()) if w}
    return words | {w + "s" for w in words} | PLAIN


def _words(identifier: str) -> list[str]:
    return [w for w in identifier.lower().split("_") if w]


def _schema_identifiers(tmp_path) -> set[str]:
    with Store.open(tmp_path / "audit.db") as store:
        tables = [t for t in store.db.tables if not t.name.startswith("_") and "_fts" not in t.name]
        return {t.name for t in tables} | {c for t in tables for c in t.columns_dict}


def _template_identifiers() -> set[str]:
    """Names used inside jinja2 expressions and statements (string literals left out)."""
    found = set()
    for template in TEMPLATES.glob("*.j2"):
        for block in re.findall(r"\{\{.*?\}\}|\{%.*?%\}", template.read_text(encoding="utf-8"), flags=re.S):
            found |= set(re.findall(r"[A-Za-z_]\w*", re.sub(r"'[^']*'|\"[^\"]*\"", "", block)))
    return found


@pytest.mark.parametrize("where", ["schema", "templates"])
def test_every_word_is_in_the_glossary(where, tmp_path):
    identifiers = _schema_identifiers(tmp_path) if where == "schema" else _template_identifiers()
    known = _known_words()
    unknown = sorted({i for i in identifiers if any(w not in known for w in _words(i))})
    assert not unknown, f"{where}: words outside audit.vocabulary.GLOSSARY: {unknown}"


@pytest.mark.parametrize("where", ["schema", "templates"])
def test_no_retired_word_is_used(where, tmp_path):
    identifiers = _schema_identifiers(tmp_path) if where == "schema" else _template_identifiers()
    retired = {i for i in identifiers if i in vocabulary.RETIRED or set(_words(i)) & set(vocabulary.RETIRED)}
    assert not retired, f"{where}: retired words {sorted(retired)}: use {vocabulary.RETIRED}"


def test_the_glossary_defines_every_named_word():
    """Each role, adversary, metric, judge word and purpose the vocabulary names is a glossary word, or is listed in
    a glossary definition."""
    text = " ".join(f"{key}: {meaning}" for key, meaning in vocabulary.GLOSSARY.items())
    assert [n for n in NAMED if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)] == []


def test_the_design_notes_glossary_is_the_vocabulary_s():
    from cogapp import Cog

    notes = Path(__file__).resolve().parent.parent / "docs" / "design-changes.md"
    status = Cog().main(["cog", "--check", "--check-fail-msg", "run: make readme", str(notes)])
    assert status == 0, "docs/design-changes.md's glossary differs from audit.vocabulary.GLOSSARY: run `make readme`"


# A model's output is a "response"; "answer" is the one-line answer to the audit's question (GLOSSARY). These name a
# model's output as an answer; the verb ("the teacher answers the probes", "answered") is plain English and stays.
OUTPUT_CALLED_ANSWER = re.compile(
    r"\b(?:teacher|student|model|suspect|control|judge)(?:'s|s') answers?\b"  # the teacher's answers
    r"|\b(?:its|their|recorded|evaluation|training|held-out) answers\b"  # its answers, the evaluation answers
    r"|\b(?:teacher|student|model|suspect|control|judge)s? answers?(?=\s*(?:[:,.;)]|per\b|to\b|$))"  # teacher answers:
    r"|\banswers? (?:tokens?|positions?|turns?|text|length|ids)\b",  # answer tokens, answer position
    flags=re.IGNORECASE | re.MULTILINE)
# Python names may say "answer" only for the page-1 answer: ``audit.verdict.answer`` (and ``_plain_answer``, that
# answer before its coverage caveat), the leakage report's ``answer``; and, in a probe generator, a question's
# expected answer. "answered"/"unanswered" are the verb.
ANSWER_NAMES = {"answer", "_plain_answer"}
# --help texts that README.md's option tables copy (cog): they change together with the README, which the lead merges.
PACKAGE = Path(__file__).parent.parent / "audit"


def _python_names(path: Path) -> set[str]:
    with path.open("rb") as source:
        return {t.string for t in tokenize.tokenize(source.readline) if t.type == tokenize.NAME}


def test_a_models_output_is_never_called_an_answer():
    """The package's sources and templates (docstrings, comments, CLI lines, report prose and names alike)."""
    python = sorted(PACKAGE.rglob("*.py"))
    prose = [f"{path.relative_to(PACKAGE.parent)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
             for path in [*python, *sorted(TEMPLATES.iterdir())] for text in [path.read_text(encoding="utf-8")]
             for m in OUTPUT_CALLED_ANSWER.finditer(text)]
    names = _template_identifiers().union(*map(_python_names, python))
    assert not prose, f"a model's output is a response, not an answer: {prose}"
    assert sorted(n for n in names if re.search(r"answers?(?![a-z])", n, re.I) and n not in ANSWER_NAMES) == []

"""The report renders from the database alone: sections, claims in words, PDF, figures, artifacts, gaps in words."""

from __future__ import annotations

import errno
import json
import re
import shutil
import sqlite3
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from audit.cli import cli
from audit.errors import AuditError, StoreError
from audit.report import REPORT_NAMES, render, render_report, signing
from audit.store import Store
from helpers_report import build_report_db

SECTION_TITLES = ["1. Executive summary", "2. Claims", "3. Category evidence", "4. Query budgets and the private split",
                  "5. Exhibits", "6. Method, assumptions and threats to validity", "7. Reproducibility manifest"]


class _Text(HTMLParser):
    """Visible text of an HTML page (script/style content excluded)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def pdf_text(path) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(str(path)).pages]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A complete audit (judge, control, private split, budgets), rendered unsigned with its PDF."""
    base = tmp_path_factory.mktemp("full")
    db = base / "audit.db"
    audit_id = build_report_db(db)
    out = base / "report"
    summary = render_report(db, out)
    return {"db": db, "out": out, "audit_id": audit_id, "summary": summary,
            "html": (out / "report.html").read_text(encoding="utf-8")}


def test_report_has_every_section_and_the_headline_claim_in_words(full_report):
    text = page_text(full_report["html"])
    for title in SECTION_TITLES:
        assert title in text
    assert "Yes: at least one adversary told the suspect" in text
    headline = re.search(r"The strongest adversary tried, (.*?) distinguished the suspect from the claimed teacher "
                         r"with advantage ε = (\d\.\d\d) \(95% CI (\d\.\d\d)–(\d\.\d\d), .*?; n = 60 probes; "
                         r"q = 60 queries per model; t = [^)]+\)", text)
    assert headline, "headline claim with interval, n, q, t and A"
    assert float(headline.group(3)) <= float(headline.group(2)) <= float(headline.group(4))
    assert "Bonferroni over adversaries" in text
    assert "suspect was harder to tell from the teacher than the control was" in text
    assert "Semantic similarity (baseline, not an adversary)" in text
    assert "bbi-probes-v1 version 1.0.0" in text


def test_unsigned_report_says_so_on_its_first_page(full_report):
    first_page = pdf_text(full_report["out"] / "report.pdf")[0]
    assert "Unsigned report" in first_page
    assert "Unsigned report" in page_text(full_report["html"])
    assert "unsigned" in full_report["summary"]
    assert not (full_report["out"] / "report.intoto.jsonl").exists()


def test_pdf_has_sections_page_numbers_and_running_header(full_report):
    pages = pdf_text(full_report["out"] / "report.pdf")
    joined = " ".join(pages)
    for title in SECTION_TITLES:
        assert title in joined
    assert len(pages) >= 5
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page
        assert f"audit {full_report['audit_id']}" in page


def test_claims_table_has_a_row_per_adversary_with_interval_q_t(full_report):
    html = full_report["html"]
    section = html[html.index('id="claims"'):html.index('id="categories"')]
    claims = section[:section.index("</table>")]
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", claims, flags=re.S)
    # headline + 5 adversaries x 2 comparisons
    assert len(rows) == 11
    for row in rows:
        cells = [page_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        assert cells[2] == "60" and cells[3] == "60"  # n and q
        assert re.match(r"−?\d\.\d\d(–| to )−?\d\.\d\d \(95%\)", cells[5])
        assert "tokens" in cells[7]


def test_categories_are_shown_in_the_evidence_rank_the_analysis_recorded(full_report):
    html = full_report["html"]
    section = html[html.index('id="categories"'):html.index('id="budgets"')]
    shown = re.findall(r'<td class="num">\d+</td><td>(.*?)</td>', section)
    with Store.open(full_report["db"]) as store:
        rows = [r for r in store.results(comparison="teacher-vs-suspect", metric="advantage",
                                         split="all") if r.category != "all" and r.adversary == shown_adversary(html)]
    assert len(shown) == 8 and shown == [r.category for r in sorted(rows, key=lambda r: r.details["evidence_rank"])]
    assert "ranked by evidence (the Holm-corrected p-value, then the lower bound" in page_text(section)


def shown_adversary(html: str) -> str:
    return re.search(r"Per-category advantage of ([\w-]+) \(", html).group(1)


def test_figures_are_inline_svg_files_too_and_script_free(full_report):
    out = full_report["out"]
    for name in ("category-evidence.svg", "budget-curves.svg", "public-vs-private.svg"):
        svg = (out / name).read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "<script" not in svg.lower()
        assert svg in full_report["html"]


def test_exhibits_show_both_transcripts_and_the_judge_verdicts(full_report):
    html = full_report["html"]
    section = page_text(html[html.index('id="exhibits"'):html.index('id="method"')])
    assert "Exhibit 1: the judge named the teacher" in section
    assert "claimed teacher suspect" in section
    assert "restate the problem" in section and "restate the task" in section  # teacher's and suspect's text
    assert re.search(r"teacher-first teacher teacher 0\.\d\d 0\.\d\d yes logprobs Answer: A", section)


def test_manifest_section_lists_fingerprints_seeds_costs(full_report):
    text = page_text(full_report["html"])
    section = text[text.index("7. Reproducibility manifest"):]
    assert "sha256:" in section and "Merkle root" in section
    assert "Seed 7" in section
    assert "temperature 0.0" in section
    assert "Costs per model" in section and "embedder" in section and "judge" in section


def test_db_copy_is_a_consistent_single_file_listing_the_rendered_artifacts(full_report):
    out = full_report["out"]
    copy = out / "audit.db"
    assert not (out / "audit.db-wal").exists()
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "delete"
        kinds = dict(conn.execute("select path, kind from artifacts").fetchall())
        responses = conn.execute("select count(*) from responses").fetchone()[0]
    assert kinds["report.html"] == "report-html" and kinds["report.pdf"] == "report-pdf"
    assert "category-evidence.svg" in kinds
    assert responses == 180
    with Store.open(full_report["db"], create=False) as store:
        recorded = {a["path"] for a in store.artifacts()}
    assert {"audit.db", "manifest.json", "report.html", "report.pdf"} <= recorded


def test_manifest_is_an_in_toto_statement_of_every_artifact(full_report):
    stmt = json.loads((full_report["out"] / "manifest.json").read_text(encoding="utf-8"))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"] for s in stmt["subject"]}
    assert names == {"report.html", "report.pdf", "audit.db", "category-evidence.svg", "budget-curves.svg",
                     "public-vs-private.svg"}
    predicate = stmt["predicate"]
    assert predicate["assurance_level"] == "self-attested"
    assert len(predicate["tool"]["digest"]["sha256"]) == 64
    headline = next(c for c in predicate["claims"] if c["adversary"] == "headline")
    assert headline["metric"]["name"] == "distinguishing advantage"
    assert headline["interval"]["confidence"] == 0.95 and headline["n"] == 60 and headline["q"] == 60
    assert headline["comparator"] is None and headline["threshold"] is None


def test_rerender_replaces_stale_files(full_report, tmp_path):
    out = tmp_path / "again"
    render_report(full_report["db"], out, pdf=False)
    (out / "report.intoto.jsonl").write_text("stale\n")
    render_report(full_report["db"], out, pdf=False)
    assert not (out / "report.intoto.jsonl").exists()
    assert not (out / "report.pdf").exists()


# ---- degrading gracefully --------------------------------------------------


@pytest.mark.parametrize("switches, expected", [
    ({"judge": False}, ["No judge verdicts are recorded", "exhibits are not ranked probe by probe"]),
    ({"controls": ()}, ["No control models were audited, so there is no provenance finding"]),
    ({"private": False}, ["No private (secret-seeded) split was asked", "This audit has no private split"]),
    ({"budget": False}, ["No query-budget curves are recorded"]),
    ({"results": False}, ["No results are recorded: run `distill-audit analyze`",
                          "No headline claim has been computed", "No adversary results are recorded",
                          "No per-category results are recorded"]),
])
def test_missing_parts_are_said_in_words(tmp_path, switches, expected):
    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=24, **switches)
    render_report(db, tmp_path / "out", pdf=False)
    text = page_text((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    for phrase in expected:
        assert phrase in text
    for title in SECTION_TITLES:
        assert title in text


def test_bare_audit_renders_to_pdf(tmp_path):
    """Nothing but collected transcripts: every section still renders, in words, HTML and PDF alike."""
    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=16, judge=False, controls=(), private=False, results=False, budget=False)
    render_report(db, tmp_path / "out")
    joined = " ".join(pdf_text(tmp_path / "out" / "report.pdf"))
    assert "No results are recorded" in joined
    assert "7. Reproducibility manifest" in joined


def test_not_distinguishable_is_never_called_indistinguishable(tmp_path):
    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=40, distinguishable=False, threshold=0.5)
    render_report(db, tmp_path / "out", pdf=False)
    text = page_text((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    assert "Not shown distinguishable at this budget" in text
    assert "This is not a finding that they are indistinguishable" in text
    assert "threshold ε₀ = 0.50" in text
    allowed = ["not a finding that they are indistinguishable"]
    for phrase in allowed:
        text = text.replace(phrase, "")
    assert "indistinguishable" not in text


# ---- errors ------------------------------------------------------------------


def test_missing_database_is_a_one_line_error(tmp_path):
    with pytest.raises(StoreError, match="no such audit database"):
        render_report(tmp_path / "nope.db", tmp_path / "out")


def test_database_without_audit_is_a_one_line_error(tmp_path):
    Store.open(tmp_path / "empty.db").close()
    with pytest.raises(AuditError, match="holds no audit yet"):
        render_report(tmp_path / "empty.db", tmp_path / "out")


def test_out_path_that_is_a_file_is_refused(tmp_path, full_report):
    (tmp_path / "file").write_text("x")
    with pytest.raises(AuditError, match="is not a folder"):
        render_report(full_report["db"], tmp_path / "file")


def test_cli_report_command(tmp_path, full_report):
    result = CliRunner().invoke(cli, ["report", "--db", str(full_report["db"]), "--out", str(tmp_path / "r"),
                                      "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert "unsigned" in result.output
    assert (tmp_path / "r" / "report.html").exists() and not (tmp_path / "r" / "report.pdf").exists()
    bad = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path / "r2")])
    assert bad.exit_code == 1
    assert "error:" in bad.output and "Traceback" not in bad.output


# ---- the report folder: replaced whole, never at the cost of anything else -----------


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("small") / "audit.db"
    build_report_db(db, n_probes=16)
    return db


@pytest.fixture
def db_here(small_db, tmp_path):
    """A private copy of the small audit database, in a folder of the test's own."""
    return shutil.copy(small_db, tmp_path / "audit.db")


def _snapshot(folder) -> dict[str, bytes | None]:
    """Every entry's bytes (None for a folder)."""
    return {p.name: None if p.is_dir() else p.read_bytes() for p in sorted(folder.iterdir())}


def _siblings(folder) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_every_file_a_report_writes_has_a_report_name(full_report):
    """A name missing from REPORT_NAMES would make the next report refuse this one as foreign."""
    assert {p.name for p in full_report["out"].iterdir()} <= REPORT_NAMES


@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_report_never_deletes_the_database_in_out_dir(db_here, monkeypatch, out):
    (db_here.parent / "sub").mkdir()
    monkeypatch.chdir(db_here.parent / "sub" if out == ".." else db_here.parent)
    before = signing.file_sha256(db_here)
    result = CliRunner().invoke(cli, ["report", "--db", str(db_here), "--out", out, "--no-pdf"])
    assert result.exit_code == 1
    assert f"error: {out}: holds the audit database {db_here}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert signing.file_sha256(db_here) == before
    assert sorted(p.name for p in db_here.parent.iterdir()) == ["audit.db", "sub"]


def test_report_refuses_the_working_folder_as_out_dir(small_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AuditError, match="is the working folder or holds it"):
        render_report(small_db, ".", pdf=False)
    assert list(tmp_path.iterdir()) == []


def _foreign_file(out):
    (out / "notes.txt").write_text("mine")


def _foreign_folder(out):
    (out / "drafts").mkdir()


def _a_name_its_manifest_does_not_list(out):
    (out / "report.pdf").write_bytes(b"a pdf the unsigned HTML-only report never wrote")


@pytest.mark.parametrize("plant, named", [(_foreign_file, "'notes.txt'"), (_foreign_folder, "'drafts'"),
                                          (_a_name_its_manifest_does_not_list, "'report.pdf'")])
def test_report_refuses_out_dir_with_foreign_files(db_here, plant, named):
    out = db_here.parent / "report"
    render_report(db_here, out, pdf=False)
    plant(out)
    before = _snapshot(out)
    with pytest.raises(AuditError, match=re.escape(f"{out}: holds {named}, which no earlier report wrote")):
        render_report(db_here, out, pdf=False)
    assert _snapshot(out) == before and _siblings(out) == []


def test_report_refuses_a_symlink_where_a_report_file_belongs(db_here):
    out = db_here.parent / "report"
    out.mkdir()
    (out / "report.html").symlink_to(db_here)
    with pytest.raises(AuditError, match=re.escape("holds 'report.html' (not a plain file)")):
        render_report(db_here, out, pdf=False)
    assert (out / "report.html").is_symlink() and db_here.is_file()


@pytest.mark.parametrize("existing", [False, True])
def test_report_writes_into_a_new_or_empty_out_dir(db_here, existing):
    out = db_here.parent / "new" / "report"
    if existing:
        out.mkdir(parents=True)
    render_report(db_here, out, pdf=False)
    assert (out / "report.html").is_file() and _siblings(out) == []


def test_report_folder_is_replaced_atomically(db_here, monkeypatch):
    """While the new report renders the old one stays whole; then the new one takes its place in one piece."""
    out = db_here.parent / "report"
    render_report(db_here, out, pdf=False)
    before = _snapshot(out)
    seen = {}
    real_render_html = render.render_html

    def watching(ctx):
        seen["while rendering"] = _snapshot(out)
        return real_render_html(ctx)

    monkeypatch.setattr(render, "render_html", watching)
    signing.keygen(db_here.parent / "key")
    render_report(db_here, out, sign_key=db_here.parent / "key", pdf=False)
    assert seen["while rendering"] == before
    assert set(_snapshot(out)) == set(before) | {signing.ENVELOPE, signing.PUBLIC_KEY}
    assert _siblings(out) == []
    signing.verify_report(out, public_key=db_here.parent / "key.pub")


@pytest.mark.parametrize("failure, raised", [(RuntimeError("renderer died"), RuntimeError),
                                             (KeyboardInterrupt(), KeyboardInterrupt),
                                             (OSError(errno.ENOSPC, "No space left on device"), AuditError)])
def test_a_crash_mid_render_leaves_the_earlier_report_intact(db_here, monkeypatch, failure, raised):
    out = db_here.parent / "report"
    render_report(db_here, out, pdf=False)
    before = _snapshot(out)

    def broken(html, path):
        path.write_bytes(b"half a pdf")
        raise failure

    monkeypatch.setattr(render, "render_pdf", broken)
    with pytest.raises(raised):
        render_report(db_here, out)
    assert _snapshot(out) == before and _siblings(out) == []


def test_a_leftover_sibling_folder_is_removed_only_if_ours(db_here):
    out = db_here.parent / "report"
    ours = db_here.parent / ".report.distill-audit-0badc0de"
    ours.mkdir()
    (ours / "report.html").write_text("half a report")
    (ours / "audit.db-journal").write_bytes(b"from a backup killed midway")
    theirs = db_here.parent / ".report.distill-audit-5ca1ab1e"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("mine")
    render_report(db_here, out, pdf=False)
    assert not ours.exists()
    assert (theirs / "thesis.tex").read_text() == "mine" and _siblings(out) == [theirs.name]


def test_public_vs_private_shows_both_splits_and_their_gap(full_report):
    html = full_report["html"]
    section = page_text(html[html.index('id="budgets"'):html.index('id="exhibits"')])
    assert "public split: ε (interval, n)" in section and "private split: ε (interval, n)" in section
    gaps = re.findall(r"−?\d\.\d\d \(95% CI −?\d\.\d\d(?:–| to )−?\d\.\d\d\): (?:no difference shown|the splits differ)",
                      section)
    assert len(gaps) == 5  # one per adversary on teacher vs suspect


# ---- probes a model did not answer -----------------------------------------------


@pytest.fixture(scope="module")
def refused_report(tmp_path_factory):
    """A suspect whose endpoint failed 16 of the 32 selected probes (24 public, 8 private), rendered with its PDF."""
    base = tmp_path_factory.mktemp("refused")
    build_report_db(base / "audit.db", n_probes=24, failing={"suspect": 16})
    render_report(base / "audit.db", base / "report")
    html = (base / "report" / "report.html").read_text(encoding="utf-8")
    return {"out": base / "report", "html": html,
            "summary": page_text(html[html.index('id="summary"'):html.index('id="claims"')])}


def test_page_one_names_unanswered_probes_per_model(refused_report):
    summary = refused_report["summary"]
    assert ("probes per model (of 32 selected) answered answered with nothing failed never asked unanswered "
            "the claimed teacher 32 0 0 0 0 the suspect 16 0 16 0 16 control “qwen-small” 32 0 0 0 0 "
            "every model (the claims' probes) 16 16") in summary
    assert "q can exceed n" in summary
    assert "n = 16 probes; q = 32 queries per model" in summary


def test_page_one_of_the_pdf_calls_a_suspect_chosen_subset_inconclusive(refused_report):
    first_page = pdf_text(refused_report["out"] / "report.pdf")[0]
    for words in ("Inconclusive about the whole suite: the suspect did not answer 16 of the 32 selected probes",
                  "which the suspect chose by not answering the rest: treat them as inconclusive about the whole"):
        assert words in first_page and words in refused_report["summary"]
    assert "Yes: at least one adversary" not in refused_report["summary"].split("the answer alone would read")[0]


def test_signed_claims_carry_the_probe_coverage(refused_report):
    stmt = json.loads((refused_report["out"] / "manifest.json").read_text(encoding="utf-8"))
    for claim in stmt["predicate"]["claims"]:
        assert claim["coverage"]["probes_selected"] == 32 and claim["coverage"]["probes_common"] == 16
        assert claim["statement"].endswith("leaves out 16 of the 32 selected, so these numbers are inconclusive "
                                           "about the whole suite.")
    suspect = next(m for m in stmt["predicate"]["claims"][0]["coverage"]["models"] if m["model"] == "suspect")
    assert suspect == {"model": "suspect", "answered": 16, "empty": 0, "failed": 16, "not_asked": 0}


def test_a_hostile_model_name_in_the_coverage_stays_text(tmp_path):
    name = "<img src=x onerror=alert(1)>\u202e"
    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=24, controls=(name,), failing={f"control:{name}": 4})
    render_report(db, tmp_path / "out", pdf=False)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html and "\u202e" not in html
    assert "Control “<img src=x onerror=alert(1)>⟨U+202E⟩” did not answer 4 of the 32 selected probes" in page_text(html)

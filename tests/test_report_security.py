"""Model output is hostile data: markup, template syntax, direction overrides and NUL bytes render as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from pypdf import PdfReader

from audit.report import render_report
from audit.report.plots import sanitize_svg
from audit.report.text import visible
from helpers_report import HOSTILE, build_report_db


class _Structure(HTMLParser):
    """Every element, attribute and text node, and whether open/close tags balance."""

    VOID = {"meta", "br", "col", "img", "hr", "input", "link", "path", "use", "stop", "rect", "circle", "line",
            "polyline", "polygon", "ellipse"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.mismatches: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        top = self.stack.pop() if self.stack else None
        if top != tag:
            self.mismatches.append((top, tag))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    build_report_db(base / "audit.db", n_probes=24, hostile=True)
    render_report(base / "audit.db", base / "out")
    html = (base / "out" / "report.html").read_text(encoding="utf-8")
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return {"out": base / "out", "html": html, "parser": parser}


def test_html_parses_cleanly_with_balanced_tags(hostile_report):
    parser = hostile_report["parser"]
    assert parser.mismatches == []
    assert parser.stack == []


def test_no_script_or_injected_element_exists(hostile_report):
    tags = hostile_report["parser"].tags
    names = {t for t, _ in tags}
    assert "script" not in names
    assert "img" not in names
    assert "h1" in names and sum(1 for t, _ in tags if t == "h1") == 1  # the forged <h1> stayed text
    for tag, attrs in tags:
        assert not [a for a in attrs if a.lower().startswith("on")], (tag, attrs)


def test_hostile_strings_are_shown_as_text(hostile_report):
    text = "".join(hostile_report["parser"].text)
    assert "<script>alert('owned')</script>" in text
    assert "<img src=x onerror=alert(1)>" in text
    assert "</table></td></tr><h1>forged section</h1>" in text
    assert "{{ 7*7 }}" in text and "{% for x in range(3) %}" in text
    assert "looploop" not in text


def test_direction_overrides_and_nul_bytes_become_visible_markers(hostile_report):
    html = hostile_report["html"]
    for ch in ("\u202e", "\u2066", "\u2069", "\x00", "\x07"):
        assert ch not in html
    assert "evil⟨U+202E⟩txt.exe" in html
    assert "nul⟨U+0000⟩byte" in html and "bell⟨U+0007⟩" in html


def test_csp_forbids_scripts_and_nothing_external_is_loaded(hostile_report):
    html = hostile_report["html"]
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp and "script-src 'none'" in csp.group(1) and "default-src 'none'" in csp.group(1)
    for tag, attrs in hostile_report["parser"].tags:
        assert tag not in ("link", "iframe", "object", "embed", "base")
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert "url(" not in html.split("</style>")[0].split("<style>")[1].replace("url(#", "")


def test_hostile_category_name_does_not_break_the_plots(hostile_report):
    svg = (hostile_report["out"] / "category-evidence.svg").read_text(encoding="utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; $x^2$ ⟨U+202E⟩evil" in svg
    assert "<b>" not in svg and "\u202e" not in svg


def test_pdf_renders_with_its_sections(hostile_report):
    reader = PdfReader(str(hostile_report["out"] / "report.pdf"))
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    for title in ("Executive summary", "Claims", "Category evidence", "Exhibits", "Reproducibility manifest"):
        assert title in text
    assert "forged section" in text  # shown as text inside an exhibit, not as a heading


def test_sanitize_svg_strips_active_content():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="x()">'
           '<script>alert(1)</script><foreignObject><p>hi</p></foreignObject>'
           '<a xlink:href="https://evil.example/"><text onclick="y()">label</text></a>'
           '<use xlink:href="#glyph"/></svg>')
    clean = sanitize_svg(svg)
    assert "script" not in clean and "foreignObject" not in clean
    assert "onload" not in clean and "onclick" not in clean and "evil.example" not in clean
    assert 'href="#glyph"' in clean and "label" in clean


@pytest.mark.parametrize("raw, shown", [
    ("a\x00b", "a⟨U+0000⟩b"),
    ("rtl\u202eoverride", "rtl⟨U+202E⟩override"),
    ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    (42, 42),
])
def test_visible_shows_invisible_characters(raw, shown):
    assert visible(raw) == shown


def test_fixture_really_carries_every_hostile_string():
    joined = "".join(HOSTILE)
    for needle in ("<script>", "onerror", "</table>", "{{ 7*7 }}", "\u202e", "\x00"):
        assert needle in joined

"""Reading suites: the shipped built-in one and user JSONL/CSV files, validated line by line.

A user file is read in bounded chunks (one line at most ``MAX_LINE_BYTES``),
so a 100 MB single-line file is rejected after reading one megabyte, never
parsed. Every problem is one ``SuiteError`` line naming the file, the line
and what is wrong; nothing is written while reading. JSON nested deeper than
``MAX_JSON_DEPTH`` and lone surrogate escapes (``"\ud800"``, not a character:
no UTF-8 file, database or hash can hold one) are refused like bad syntax.
"""

from __future__ import annotations

import csv
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from audit.errors import SuiteError
from audit.probes.checkers import validate_reference
from audit.probes.generate import SUITE_NAME, SUITE_VERSION, canonical_jsonl, probe_id
from audit.probes.neardup import normalize
from audit.probes.types import Probe, Suite
from audit.text import nesting_depth, valid_unicode

MAX_LINE_BYTES = 1 << 20
MAX_JSON_DEPTH = 32  # a probe with its reference nests 4 deep; far deeper would exhaust the stack later on
_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
SPLITS = ("public", "private")
OPTIONAL_TEXT_FIELDS = ("subcategory", "id", "split", "pair_of")
_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16", b"\x00\x00\xfe\xff": "UTF-32"}


def builtin_names() -> list[str]:
    return [SUITE_NAME]


def _data_file(name: str):
    return resources.files("audit.probes").joinpath("data", name)


def shipped_hash(name: str = SUITE_NAME) -> str:
    """The sha256 recorded next to the shipped JSONL (first word of the ``.sha256`` file)."""
    return _data_file(f"{name}.jsonl.sha256").read_text(encoding="utf-8").split()[0]


def load_builtin(name: str = SUITE_NAME) -> Suite:
    """The shipped suite, checked against its recorded hash so a corrupted install cannot pass silently."""
    data = _data_file(f"{name}.jsonl").read_bytes()
    expected = shipped_hash(name)
    if hashlib.sha256(data).hexdigest() != expected:
        raise SuiteError(f"{name}: the shipped suite file does not match its recorded sha256 {expected[:12]}...; "
                         f"reinstall distill-audit or run `distill-audit probes export {name}` from a clean checkout")
    label = f"<builtin {name}>"
    probes = _validated(label, _jsonl_records(label, iter(data.decode("utf-8").split("\n"))))
    return Suite(name=name, version=SUITE_VERSION, hash=expected, probes=probes, source="builtin")


def load_file(path: Path) -> Suite:
    """A user suite from JSONL (``.jsonl``, ``.ndjson``, ``.json``) or CSV (``.csv``)."""
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file (and not a built-in suite: {', '.join(builtin_names())})")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv"):
        raise SuiteError(f"{path}: unsupported suite format {suffix or '(no extension)'}; use .jsonl or .csv")
    with path.open("rb") as handle:
        head = handle.read(4)
        for bom, encoding in _BOMS.items():
            if head.startswith(bom):
                raise SuiteError(f"{path}:1: the file is {encoding}; save it as UTF-8")
        handle.seek(0)
        lines = _bounded_lines(path, handle)
        records = _csv_records(path, lines) if suffix == ".csv" else _jsonl_records(path, lines)
        probes = _validated(path, records)
    if not probes:
        raise SuiteError(f"{path}: no probes (the file is empty or has only blank lines)")
    return Suite(name=path.stem, version="user", hash=_hash(probes), probes=probes, source=str(path))


def _hash(probes: list[Probe]) -> str:
    return hashlib.sha256(canonical_jsonl(probes)).hexdigest()


def _bounded_lines(path: Path, handle) -> Iterator[str]:
    """Decoded lines, each read with a size limit; undecodable bytes and huge lines stop with the line number."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise SuiteError(f"{path}:{number}: line longer than {MAX_LINE_BYTES // (1 << 20)} MiB; "
                             f"a probe is a prompt, not a corpus")
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                             f"save the file as UTF-8") from None


def _jsonl_records(path, lines) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _json_value(path, number, line, "not valid JSON")
        if not isinstance(record, dict):
            raise SuiteError(f"{path}:{number}: expected a JSON object with 'text' and 'category', got {type(record).__name__}")
        yield number, record


def _csv_records(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames
        if header is None:
            return
        missing = [f for f in ("text", "category") if f not in header]
        if missing:
            raise SuiteError(f"{path}:1: CSV header lacks column(s) {', '.join(missing)}; found {', '.join(header)}")
        for row in reader:
            if None in row:
                raise SuiteError(f"{path}:{reader.line_num}: more fields than the header has columns")
            record: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
            if "reference" in record:
                record["reference"] = _csv_reference(path, reader.line_num, record["reference"])
            yield reader.line_num, record
    except csv.Error as exc:
        raise SuiteError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None


def _csv_reference(path: Path, line: int, cell: str) -> Any:
    return _json_value(path, line, cell, "the 'reference' column must hold JSON")


def _json_value(path, number: int, text: str, invalid: str) -> Any:
    """``text`` parsed, or one SuiteError line: bad syntax (``invalid``, where), too deep, or a lone surrogate."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}:{number}: {invalid} ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise SuiteError(f"{path}:{number}: {_TOO_DEEP}") from None
    problem = _unreadable(value)
    if problem:
        raise SuiteError(f"{path}:{number}: {problem}")
    return value


def _unreadable(value: Any) -> str | None:
    """Why decoded JSON cannot be a probe's, or None: nested too deeply, or text with a lone surrogate."""
    if nesting_depth(value) > MAX_JSON_DEPTH:
        return _TOO_DEEP
    dumped = json.dumps(value, ensure_ascii=False)
    if valid_unicode(dumped) != dumped:
        return "a lone surrogate escape (\\uD800-\\uDFFF without its pair) is not a character; write the character itself"
    return None


def _text_field(path, number: int, record: dict, field: str, required: bool) -> str | None:
    value = record.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        problem = "missing field" if value is None else "empty or non-text field"
        raise SuiteError(f"{path}:{number}: {problem} '{field}'")
    return value


def _probe(path, number: int, record: dict) -> Probe:
    text = _text_field(path, number, record, "text", True)
    category = _text_field(path, number, record, "category", True)
    optional = {f: _text_field(path, number, record, f, False) for f in OPTIONAL_TEXT_FIELDS}
    split = optional["split"] or "public"
    if split not in SPLITS:
        raise SuiteError(f"{path}:{number}: field 'split' must be public or private, not {split!r}")
    reference = record.get("reference")
    if reference is not None and (problem := validate_reference(reference)):
        raise SuiteError(f"{path}:{number}: field 'reference': {problem}")
    return Probe(id=optional["id"] or probe_id(text), category=category.strip(), subcategory=(optional["subcategory"] or "").strip(),
                 text=text, reference=reference, split=split, pair_of=optional["pair_of"])


def _validated(path, records: Iterator[tuple[int, dict]]) -> list[Probe]:
    """Probes from records, refusing duplicate texts and ids (either would collide in the audit database)."""
    probes: list[Probe] = []
    texts: dict[str, int] = {}
    ids: dict[str, int] = {}
    for number, record in records:
        probe = _probe(path, number, record)
        key = normalize(probe.text)
        if key in texts:
            raise SuiteError(f"{path}:{number}: duplicate of line {texts[key]} (same text after normalising whitespace and case)")
        if probe.id in ids:
            raise SuiteError(f"{path}:{number}: duplicate id {probe.id!r} (first on line {ids[probe.id]})")
        texts[key], ids[probe.id] = number, number
        probes.append(probe)
    return probes

"""User suites: valid JSONL/CSV load; every malformed file stops with one line naming file, line and problem."""

import json

import pytest

from audit.errors import SuiteError
from audit.probes import load_suite
from audit.probes.generate import probe_id
from audit.probes.loading import MAX_LINE_BYTES


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def jsonl(*records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def error_of(path) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_valid_jsonl_suite_loads(tmp_path):
    path = write(tmp_path / "mine.jsonl", "\ufeff" + jsonl(
        {"text": "What is 2+2?", "category": "math", "reference": {"type": "number", "value": 4}},
        {"text": "Say hi in French.", "category": "lang", "subcategory": "greetings", "split": "private", "id": "q2"},
    ) + "\n")
    suite = load_suite(path)
    assert suite.name == "mine" and suite.source == path and len(suite.probes) == 2
    first, second = suite.probes
    assert first.id == probe_id("What is 2+2?") and first.reference == {"type": "number", "value": 4}
    assert second.id == "q2" and second.split == "private" and second.subcategory == "greetings"


def test_a_valid_csv_suite_loads_with_multiline_text(tmp_path):
    path = write(tmp_path / "mine.csv", 'text,category,reference\n"Line one\nline two",misc,\n'
                                        '"Capital of France?",facts,"{""type"": ""contains"", ""any"": [""Paris""]}"\n')
    suite = load_suite(path)
    assert [p.text for p in suite.probes] == ["Line one\nline two", "Capital of France?"]
    assert suite.probes[1].reference == {"type": "contains", "any": ["Paris"]}


def test_the_same_probes_hash_the_same_from_jsonl_and_csv(tmp_path):
    a = write(tmp_path / "a.jsonl", jsonl({"text": "Hello there", "category": "x"}))
    b = write(tmp_path / "b.csv", "category,text\nx,Hello there\n")
    assert load_suite(a).hash == load_suite(b).hash


@pytest.mark.parametrize("name,content,expected", [
    ("bad.jsonl", jsonl({"text": "ok", "category": "c"}) + '{"text": "oops", "category": \n', ":2: not valid JSON"),
    ("missing.jsonl", jsonl({"text": "a", "category": "c"}, {"text": "b", "category": "c"}, {"text": "c"}),
     ":3: missing field 'category'"),
    ("notext.jsonl", jsonl({"category": "c"}), ":1: missing field 'text'"),
    ("emptytext.jsonl", jsonl({"text": "   ", "category": "c"}), ":1: empty or non-text field 'text'"),
    ("number.jsonl", jsonl({"text": 5, "category": "c"}), ":1: empty or non-text field 'text'"),
    ("array.jsonl", "[1, 2]\n", ":1: expected a JSON object"),
    ("split.jsonl", jsonl({"text": "a", "category": "c", "split": "secret"}), ":1: field 'split'"),
    ("ref.jsonl", jsonl({"text": "a", "category": "c", "reference": {"type": "magic"}}), ":1: field 'reference': unknown"),
    ("dup.jsonl", jsonl({"text": "Same  text", "category": "c"}, {"text": "same text", "category": "d"}),
     ":2: duplicate of line 1"),
    ("dupid.jsonl", jsonl({"text": "a", "category": "c", "id": "7"}, {"text": "b", "category": "c", "id": "7"}),
     ":2: duplicate id"),
    ("empty.jsonl", "", "no probes"),
    ("blank.jsonl", "\n   \n\n", "no probes"),
    ("latin1.jsonl", '{"text": "caf\xe9", "category": "c"}\n'.encode("latin-1"), ":1: not UTF-8 text (byte 0xe9"),
    ("later.jsonl", jsonl({"text": "a", "category": "c"}).encode() + b'{"text": "\xff"}\n', ":2: not UTF-8"),
    ("utf16.jsonl", jsonl({"text": "a", "category": "c"}).encode("utf-16"), ":1: the file is UTF-16"),
    ("nocol.csv", "text,kind\nhello,x\n", ":1: CSV header lacks column(s) category"),
    ("extra.csv", "text,category\nhello,x,surplus\n", ":2: more fields than the header"),
    ("csvref.csv", "text,category,reference\nhello,x,{not json}\n", ":2: the 'reference' column must hold JSON"),
    ("csvmissing.csv", "text,category\nhello,\n", ":2: missing field 'category'"),
    ("surrogate.jsonl", jsonl({"text": "a", "category": "c"}) + '{"text": "half \\ud800 a pair", "category": "c"}\n',
     ":2: a lone surrogate escape"),
    ("csvsurrogate.csv", 'text,category,reference\nhello,x,"{""type"": ""contains"", ""any"": [""\\udfff""]}"\n',
     ":2: a lone surrogate escape"),
    ("deeper.jsonl", '{"text": "a", "category": "c", "reference": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
     ":1: JSON nested deeper than 32 levels"),
    ("deep.jsonl", '{"text": "a", "category": "c", "reference": {"type": "number", "value": 4, "note": '
     + "[" * 900 + "]" * 900 + "}}\n", ":1: JSON nested deeper than 32 levels"),
    ("empty.csv", "", "no probes"),
    ("suite.txt", "text\n", "unsupported suite format .txt"),
])
def test_malformed_suites_name_file_line_and_problem(tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    message = error_of(path)
    assert path in message and expected in message, message


def test_a_100_megabyte_single_line_is_refused_without_parsing(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write(b'{"category": "c", "text": "')
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            out.write(chunk)
        out.write(b'"}\n')
    message = error_of(str(path))
    assert f"{path}:1: line longer than" in message
    assert MAX_LINE_BYTES < path.stat().st_size


def test_an_unknown_name_is_not_a_traceback(tmp_path):
    message = error_of(str(tmp_path / "nope.jsonl"))
    assert "no such suite file" in message and "bbi-probes-v1" in message


def test_the_cli_reports_a_bad_suite_in_one_line(tmp_path):
    from click.testing import CliRunner

    from audit.cli import cli

    path = write(tmp_path / "bad.jsonl", '{"text": "a"}\n')
    result = CliRunner().invoke(cli, ["probes", "stats", path])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {path}:1: missing field 'category'"


def test_a_suite_line_too_deep_for_json_is_one_line_at_the_cli(tmp_path):
    from click.testing import CliRunner

    from audit.cli import cli

    path = write(tmp_path / "deep.jsonl", '{"text": "a", "category": "c", "reference": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    result = CliRunner().invoke(cli, ["probes", "stats", path])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"error: {path}:1: JSON nested deeper than 32 levels"


def test_a_paired_surrogate_escape_is_the_character_it_spells(tmp_path):
    path = write(tmp_path / "emoji.jsonl", '{"text": "smile \\ud83d\\ude00", "category": "c"}\n')
    assert load_suite(path).probes[0].text == "smile \U0001F600"


def test_a_tampered_shipped_suite_is_refused(tmp_path, monkeypatch):
    from audit.probes import loading

    original = loading._data_file("bbi-probes-v1.jsonl").read_bytes()
    (tmp_path / "bbi-probes-v1.jsonl").write_bytes(original.replace(b"Paris", b"Lyon", 1))
    (tmp_path / "bbi-probes-v1.jsonl.sha256").write_text(loading.shipped_hash())
    monkeypatch.setattr(loading, "_data_file", lambda name: tmp_path / name)
    with pytest.raises(SuiteError, match="does not match its recorded sha256"):
        loading.load_builtin()

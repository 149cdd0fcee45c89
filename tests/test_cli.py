"""Conventions of the command line: light help, documented commands, one-line errors."""

import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.store import Store
from audit.text import for_terminal
from test_models_openai import _ok_body, scripted  # noqa: F401  (the loopback endpoint)
from test_pipeline import CATEGORIES, write_suite

README = Path(__file__).resolve().parent.parent / "README.md"


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        path = prefix + (name,)
        yield path, command
        if isinstance(command, click.Group):
            yield from all_commands(command, path)


def test_help_never_imports_heavy_libraries():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from audit.cli import cli\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['collect', '--help'], ['analyze', '--help'], ['report', '--help'],"
        " ['probes', '--help'], ['models', '--help']):\n"
        "    assert r.invoke(cli, args).exit_code == 0, args\n"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'sentence_transformers', 'weasyprint',"
        " 'matplotlib', 'peft') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_command_has_help_and_is_in_the_readme():
    readme = README.read_text()
    for path, command in all_commands(cli):
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        assert f"distill-audit {' '.join(path)}" in readme, f"`distill-audit {' '.join(path)}` is not in the README"


def options_of(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


def test_every_option_of_every_command_has_help_and_is_declared_once():
    from audit.settings import BY_NAME, SettingOption

    made_from = {}
    for path, command in [((), cli), *all_commands(cli)]:
        where = " ".join(("distill-audit", *path))
        flags = [flag for option in options_of(command) for flag in option.opts]
        assert len(flags) == len(set(flags)), f"{where} declares a flag twice"
        for option in options_of(command):
            assert (option.help or "").strip(), f"{where} {option.opts[0]} has no help text"
            copied = [s for s in BY_NAME.values() if s.help == option.help and s.flag in option.opts]
            assert all(getattr(option, "setting", None) is s for s in copied), \
                f"{where} {option.opts[0]} copies a setting of audit/settings.py instead of using it"
            if isinstance(option, SettingOption):
                made_from.setdefault(option.setting.name, set()).add(where)
        if path and path[0] in ("collect", "run", "analyze", "report"):
            assert all(isinstance(o, SettingOption) for o in options_of(command)), \
                f"{where} declares an option outside audit/settings.py"
    assert set(made_from) == set(BY_NAME), "a setting no command takes"


def test_the_readme_option_tables_are_those_of_help():
    from cogapp import Cog

    status = Cog().main(["cog", "--check", "--check-fail-msg", "run: cog -r README.md", str(README)])
    assert status == 0, "the README's option tables differ from --help: run `cog -r README.md`"


def test_an_audit_error_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"not sqlite at all" * 64)
    result = CliRunner().invoke(cli, ["analyze", "--db", str(bad), "--no-judge", "--quiet"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"not sqlite at all" * 64)
    result = CliRunner().invoke(cli, ["--debug", "analyze", "--db", str(bad), "--no-judge", "--quiet"])
    assert result.exit_code != 0 and result.exception is not None


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, check=True)
    assert "distill-audit" in out.stdout


# ---- what reaches the terminal, from a hostile or hung endpoint ---------------------------------

HOSTILE = "denied \x1b]52;c;ZXZpbA==\x07\x1b]0;owned\x1b\\\x1b[2J\x1b[31m\u009b1m\u009d0;t\u009c\u202e\x1bc\r!"


@pytest.mark.parametrize("text,shown", [
    ("a\x1b]52;c;ZXZpbA==\x07b", "ab"),  # OSC 52: a clipboard write, BEL-terminated
    ("a\x1b]0;title\x1b\\b", "ab"),  # OSC 0: a window title, ST-terminated
    ("a\x1b[2J\x1b[1;31mb", "ab"),  # CSI: clear screen, colours
    ("a\u009b31m\u009d0;t\u009cb", "ab"),  # the same as 8-bit C1 controls
    ("a\x1bc\x1b(Bb\x1b", "ab"),  # other ESC sequences: reset, charset; a lone ESC
    ("a\x1b]0;never ended", "a0;never ended"),  # an unterminated string: its introducer goes, the rest is shown
    ("one\ttab\r\ntwo\x00\x07\x7f\u202e", "one\ttab\ntwo"),  # controls (but tab, newline) and a bidi override
])
def test_for_terminal_removes_escape_sequences_and_control_characters(text, shown):
    assert for_terminal(text) == shown


def _endpoint_audit(tmp_path, url, *extra):
    suite = write_suite(tmp_path / "suite.jsonl", per_category=1)
    return ["collect", "--db", str(tmp_path / "audit.db"), "--teacher", f"openai:{url}#t",
            "--suspect", f"openai:{url}#s", "--suite", str(suite), "--concurrency", "1", "--quiet", *extra]


def test_escape_sequences_from_an_endpoint_never_reach_the_terminal(tmp_path, scripted):
    url, script, _ = scripted
    script += [(401, {}, HOSTILE.encode())]
    result = CliRunner().invoke(cli, _endpoint_audit(tmp_path, url))
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.splitlines()
    assert line.startswith("error: openai:") and "denied" in line and "!" in line
    assert not set(line) & {"\x1b", "\x07", "\r", "\u009b", "\u009c", "\u009d", "\u202e"}


def test_progress_bars_show_hostile_names_as_plain_text():
    from audit.progress import progress

    with progress(quiet=True) as bar:
        task = bar.add_task(f"[bold red]control:{HOSTILE}", total=1, status="\x1b]0;x\x07ok")
        description, _, _, status, _, _ = (column.render(bar.tasks[task]) for column in bar.columns)
    assert description.plain.startswith("[bold red]control:denied") and not description.spans
    assert status.plain == "ok" and not set(description.plain) & {"\x1b", "\x07", "\u009b"}


def test_max_seconds_is_a_deadline_including_retries(tmp_path, scripted):
    url, script, seen = scripted
    script += [(200, {}, _ok_body("quick"))] + [(200, {"X-Sleep": "10"}, _ok_body("too late"))] * 3
    started = time.monotonic()
    result = CliRunner().invoke(cli, _endpoint_audit(tmp_path, url, "--max-seconds", "1.5"))
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert took < 4 and len(seen) == 2  # one answer, one hung request cut at the deadline, nothing retried
    assert "teacher: 1 answered, 0 failed" in result.output and "stopped at the --max-seconds deadline" in result.output
    with Store.open(tmp_path / "audit.db") as store:
        assert store.db["queries"].count == store.db["responses"].count == 1  # the cut prompt is not an error

    script.clear()
    again = CliRunner().invoke(cli, _endpoint_audit(tmp_path, url))
    assert again.exit_code == 0 and "collection complete" in again.output
    assert f"teacher: {len(CATEGORIES) - 1} answered, 0 failed this run (1 already recorded)" in again.output


def test_credentials_in_an_endpoint_url_never_reach_the_terminal_or_the_database(tmp_path, scripted):
    url, _, _ = scripted
    with_credentials = url.replace("http://", "http://auditor:SECRET@")
    result = CliRunner().invoke(cli, _endpoint_audit(tmp_path, with_credentials))
    assert result.exit_code == 1 and "credentials in the URL are refused" in result.output
    assert "SECRET" not in result.output
    assert [f.name for f in tmp_path.iterdir() if b"SECRET" in f.read_bytes()] == []


@pytest.mark.parametrize("command, options", [("analyze", ["--no-judge", "--quiet"]), ("report", ["--no-pdf"])])
def test_a_damaged_database_is_one_line_and_exit_1(tmp_path, command, options):
    from helpers_report import build_report_db
    from test_store import damage_table

    db = tmp_path / "audit.db"
    build_report_db(db, n_probes=16)
    damage_table(db, "responses")
    if command == "report":
        options = [*options, "--out", str(tmp_path / "report")]
    result = CliRunner().invoke(cli, [command, "--db", str(db), *options])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {db}: the database is damaged (database disk image is malformed); restore it from a copy"]


def test_a_file_that_is_not_sqlite_is_one_line_and_exit_1_in_report(tmp_path):
    bad = tmp_path / "audit.db"
    bad.write_bytes(b"not sqlite at all" * 64)
    result = CliRunner().invoke(cli, ["report", "--db", str(bad), "--out", str(tmp_path / "report"), "--no-pdf"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {bad}: not a usable audit database (file is not a "
                                                  "database): not SQLite, or its first page is damaged"]

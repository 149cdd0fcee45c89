"""Conventions of the command line: light help, documented commands, one-line errors."""

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from audit.cli import cli

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

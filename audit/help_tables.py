"""The README's option tables, rendered from what `--help` shows (run by cog: ``cog -r README.md``).

A test runs cog in check mode, so the README fails the tests when it drifts from the commands' help.
"""

from __future__ import annotations

import click

from audit.cli import cli
from audit.settings import SettingOption


def command(path: str) -> click.Command:
    """A command of `distill-audit` by its words, e.g. ``"probes build"``."""
    found: click.Command = cli
    for word in path.split():
        found = found.commands[word]
    return found


def help_rows(path: str, skip: tuple[str, ...] = ()) -> list[tuple[str, str, click.Option]]:
    """(flags as --help shows them, help with its [default: ...] note, the option) for each option of a command
    but --help and the options named in ``skip``."""
    cmd = command(path)
    ctx = click.Context(cmd, info_name=f"distill-audit {path}")
    rows = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or param is cmd.get_help_option(ctx) or param.name in skip:
            continue
        flags, text = param.get_help_record(ctx)
        rows.append((flags, text, param))
    return rows


def options_table(path: str, skip: tuple[str, ...] = (), config_keys: bool = False, asked: bool = False) -> str:
    """A markdown table of a command's options; with ``config_keys`` their audit.toml key (`run --config`), with
    ``asked`` whether a resume must repeat them (they decide what is asked)."""
    head = ["option", "what it does"] + (["audit.toml key"] if config_keys else []) + (["resume"] if asked else [])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for flags, text, param in help_rows(path, skip):
        setting = param.setting if isinstance(param, SettingOption) else None
        cells = [f"`{_cell(flags)}`", _cell(text)]
        if config_keys:
            cells.append(f"`{setting.config_key}`" if setting and setting.config_key else "—")
        if asked:
            cells.append("must repeat" if setting and setting.asked else "may change")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Help text as one markdown table cell: pipes escaped, Click's two-space note separator kept readable."""
    return text.replace("|", "\\|").replace("  [", " [")


def shared_options(path: str, other: str) -> tuple[str, ...]:
    """The parameter names ``path`` shares with ``other`` (so a table can say "and every option of ...")."""
    mine = {p.name for p in command(path).params}
    return tuple(p.name for p in command(other).params if p.name in mine)

"""One progress bar style for every long stage; silent when quiet or not a terminal-less CI log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, Task, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from audit.text import for_terminal

console = Console(stderr=True)


class PlainTextColumn(TextColumn):
    """A task field shown as plain text: a model name can come from a spec or a received database, so it is
    neither read as rich markup nor let through with escape sequences."""

    def __init__(self, text_format: str):
        super().__init__(text_format, markup=False)

    def render(self, task: Task) -> Text:
        return Text(for_terminal(self.text_format.format(task=task)), style=self.style, justify=self.justify)


@contextlib.contextmanager
def progress(quiet: bool = False) -> Iterator[Progress]:
    """A rich Progress on stderr; with ``quiet`` it is disabled and prints nothing."""
    bar = Progress(
        PlainTextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        PlainTextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )
    with bar:
        yield bar


def add_task(bar: Progress, description: str, total: int | None, status: str = "") -> int:
    return bar.add_task(description, total=total, status=status)

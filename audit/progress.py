"""One progress bar style for every long stage; silent when quiet or not a terminal-less CI log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextlib.contextmanager
def progress(quiet: bool = False) -> Iterator[Progress]:
    """A rich Progress on stderr; with ``quiet`` it is disabled and prints nothing."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
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

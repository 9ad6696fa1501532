"""``progress=True``: a progress bar of the model rows a long call evaluates (rich, on stderr).

The bar counts the rows as the model evaluates them (every Model in the chain of a counted child
reports to the meters attached to it), so it changes nothing in what is computed: the same seed
gives the same numbers with or without it. It is shown only in interactive sessions (a terminal or a
notebook); in non-interactive runs (CI logs, pipes) ``progress=True`` stays silent.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from whybox.errors import InputError


def check_progress(progress: Any) -> bool:
    if not isinstance(progress, bool):
        raise InputError(f"progress must be True or False, got {progress!r}")
    return progress


def console():
    """The console progress bars draw on (stderr)."""
    from rich.console import Console
    return Console(stderr=True)


def interactive() -> bool:
    """True in a terminal or a notebook."""
    c = console()
    return bool(c.is_terminal or c.is_jupyter)


class RowMeter:
    """A rich progress bar over ``total`` model rows (None: an open count)."""

    def __init__(self, total: int | None, desc: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        cols = [TextColumn(desc)] + ([BarColumn(), MofNCompleteColumn()] if total else [MofNCompleteColumn()]) + \
            [TextColumn("model rows"), TimeRemainingColumn()]
        self.bar = Progress(*cols, console=console(), transient=False)
        self.task = self.bar.add_task(desc, total=total)
        self.rows = 0
        self.bar.start()

    def expect(self, total: int) -> None:
        """The rows the call is expected to spend, once it knows (the bar fills towards it)."""
        self.bar.update(self.task, total=int(total))

    def add(self, n: int) -> None:
        self.rows += int(n)
        self.bar.advance(self.task, int(n))

    def close(self) -> None:
        self.bar.update(self.task, total=self.rows, completed=self.rows)   # the estimate ends at what was spent
        self.bar.stop()


@contextmanager
def watching(model: Any, total: int | None, desc: str, progress: Any) -> Iterator[RowMeter | None]:
    """Show the rows ``model`` evaluates inside the block (when ``progress`` and the session is interactive)."""
    if not check_progress(progress) or not interactive():
        yield None
        return
    meter = RowMeter(total, desc)
    model._meters.append(meter)
    try:
        yield meter
    finally:
        model._meters.remove(meter)
        meter.close()

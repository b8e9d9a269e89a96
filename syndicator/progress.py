"""Rich progress on a terminal; nothing at all under cron."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

log = logging.getLogger("syndicator.pipeline")  # the pass's lines, as they always were


class PassProgress(Protocol):
    """What a pass tells of its progress (a terminal's bar, or the log)."""

    def step(self, description: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...


class NoProgress:
    """Progress to the log only (cron, the daemon, the web page's passes)."""

    def step(self, description: str, total: int | None = None) -> None:
        log.debug("%s", description)

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        log.info("%s", message)


class RichProgress:
    def __init__(self, progress: Progress):
        self._p = progress
        self._task: int | None = None

    def step(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            self._p.update(
                self._task,
                completed=self._p.tasks[-1].total or 1,
                total=self._p.tasks[-1].total or 1,
            )  # type: ignore[arg-type]
        self._task = self._p.add_task(description, total=total)  # type: ignore[assignment]

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._p.advance(self._task, n)  # type: ignore[arg-type]

    def note(self, message: str) -> None:
        self._p.console.print(message, highlight=False)


@contextmanager
def console_progress(console: Console, enabled: bool) -> Iterator[PassProgress]:
    if not enabled:
        yield NoProgress()
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as p:
        yield RichProgress(p)

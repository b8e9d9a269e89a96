"""'Run a pass now': the pass runs in a worker thread, one at a time per app."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syndicator.store.views import iso
from syndicator.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass
class PassState:
    running: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    exit_code: int | None = None
    summary: str | None = None
    error: str | None = None
    runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "seconds": self.seconds,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "error": self.error,
            "runs": self.runs,
        }


def summarize(report: Any) -> tuple[int, str]:
    """Exit code and one line from a PassReport (or whatever a daemon's callable returns)."""
    if report is None:  # the daemon's callable only asks its worker for a pass
        return 0, "pass requested"
    code = int(getattr(report, "exit_code", 0) or 0)
    parts = []
    sources = getattr(report, "sources", None)
    if sources is not None:
        parts.append(f"{len(sources)} source(s) read")
    sends = getattr(report, "sends", None)
    if sends is not None:
        parts.append(f"{getattr(sends, 'sent', 0)} sent")
        for label in ("retrying", "unknown", "failed"):
            n = getattr(sends, label, 0)
            if n:
                parts.append(f"{n} {label}")
    attention = getattr(report, "attention", None)
    if attention:
        parts.append(f"{len(attention)} need attention")
    return code, ", ".join(parts) or "pass finished"


class PassRunner:
    def __init__(self, run_pass: Callable[[], Any], on_change: Callable[[], None] | None = None):
        self._run_pass = run_pass
        self._on_change = on_change
        self._lock = threading.Lock()
        self.state = PassState()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start a pass in a worker thread; False when one is already running."""
        with self._lock:
            if self.state.running:
                return False
            self.state = PassState(running=True, started_at=utcnow(), runs=self.state.runs)
            self._thread = threading.Thread(
                target=self._run, name="syndicator-web-pass", daemon=True
            )
            self._thread.start()
        self._changed()
        return True

    def _run(self) -> None:
        t0 = time.monotonic()
        code, summary, error = 1, None, None
        try:
            code, summary = summarize(self._run_pass())
        except Exception as exc:  # the page shows it; the server goes on
            log.exception("a pass started from the web page failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.state = PassState(
                running=False,
                started_at=self.state.started_at,
                finished_at=utcnow(),
                seconds=round(time.monotonic() - t0, 3),
                exit_code=code if error is None else 1,
                summary=summary,
                error=error,
                runs=self.state.runs + 1,
            )
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.debug("pass runner: change callback failed", exc_info=True)

    def join(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)

"""Live updates: one poller per app reads cheap fingerprints of the store every
second; every open page listens on /events (server-sent events) and refetches
what changed. The daemon, a cron pass and this page all just write the store,
so watching the store sees them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0


class ChangeFeed:
    """A version number that goes up whenever the store's fingerprint changes."""

    def __init__(self, stamp: Callable[[], dict[str, Any]], interval: float = 1.0) -> None:
        self._stamp = stamp
        self.interval = interval
        self.version = 0
        self.changed: list[str] = []
        self._last: dict[str, Any] | None = None
        self._event: asyncio.Event | None = None  # set (and replaced) at every change
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    # -- lifecycle (always called from the event loop) --

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop, self.closed = loop, False
        self._event = asyncio.Event()
        self._task = loop.create_task(self._run(), name="syndicator-web-changes")

    async def stop(self) -> None:
        self.closed = True
        task, self._task = self._task, None
        if self._event is not None:
            self._event.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def close_soon(self) -> None:
        """From any thread: end every event stream so a server can stop quickly."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self.stop(), loop)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- polling --

    def poke(self, what: str = "action") -> None:
        """Something changed through this app: tell listeners now (event loop only)."""
        self._bump([what])

    def poke_threadsafe(self, what: str = "action") -> None:
        """`poke` from a worker thread (a pass finishing, say)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._bump, [what])

    def _bump(self, changed: list[str]) -> None:
        self.version += 1
        self.changed = changed
        if self._event is not None:
            # Wake everyone waiting on the old event; later waiters get a new one.
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def check(self) -> list[str]:
        """Read the fingerprint once; bump the version if any part changed."""
        stamp = await asyncio.to_thread(self._stamp)
        last, self._last = self._last, stamp
        if last is None:
            return []
        changed = sorted(k for k in stamp if stamp.get(k) != last.get(k))
        if changed:
            self._bump(changed)
        return changed

    async def _run(self) -> None:
        while not self.closed:
            try:
                await self.check()
            except Exception:  # a locked or briefly unreachable store: try again next tick
                log.warning("live updates: reading the store failed", exc_info=True)
            await asyncio.sleep(self.interval)

    # -- listening --

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from `seen` (or the same one after `timeout`)."""
        event = self._event
        if self.version != seen or event is None or self.closed:
            return self.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.version

    async def stream(self, is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
        """The text/event-stream body for one page."""
        self.start()
        seen = self.version
        yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'version': seen})}\n\n"
        while not self.closed:
            version = await self.wait(seen, KEEPALIVE_SECONDS)
            if self.closed or await is_disconnected():
                return
            if version == seen:
                yield ": keep-alive\n\n"
                continue
            seen = version
            data = json.dumps({"version": version, "changed": self.changed})
            yield f"event: change\ndata: {data}\n\n"

"""A small shared cache of rendered pages (the dashboard, the episode list)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any


class PageCache:
    """Rendered pages by (key, version), each kept `max_age` seconds at most.

    One thread renders a page while others wait for it. A request that may (not a
    live refresh, which follows a change and must see it) gets the previous copy if
    it is younger than `stale_for` seconds while a thread makes the new one.
    """

    def __init__(self, max_age: float = 1.0, stale_for: float = 3.0, size: int = 128) -> None:
        self.max_age, self.stale_for, self.size = max_age, stale_for, size
        self.placeholder = "csrf-" + secrets.token_hex(16)  # nobody can guess it into a title
        self._entries: dict[str, tuple[Any, float, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def peek(
        self, key: str, version: Any, make: Callable[[], str], allow_stale: bool
    ) -> str | None:
        """The page without waiting (fresh, or a stale copy while a thread makes the
        new one); None when the caller has to make it (`get`)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            lock = self._locks.setdefault(key, threading.Lock())
        if entry and entry[0] == version and now - entry[1] < self.max_age:
            return entry[2]
        if allow_stale and entry and now - entry[1] < self.stale_for:
            if lock.acquire(blocking=False):
                threading.Thread(
                    target=self._refresh, args=(key, version, make, lock), daemon=True
                ).start()
            return entry[2]
        return None

    def get(self, key: str, version: Any, make: Callable[[], str], allow_stale: bool) -> str:
        """The page, made here if needed (blocking: call it from a worker thread)."""
        html = self.peek(key, version, make, allow_stale)
        if html is not None:
            return html
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                entry = self._entries.get(key)
            if entry and entry[0] == version and time.monotonic() - entry[1] < self.max_age:
                return entry[2]
            return self._make(key, version, make)

    def _refresh(self, key: str, version: Any, make: Callable[[], str], lock: Any) -> None:
        try:
            self._make(key, version, make)
        except Exception:  # the next request renders it itself and shows the error
            pass
        finally:
            lock.release()

    def _make(self, key: str, version: Any, make: Callable[[], str]) -> str:
        started = time.monotonic()
        html = make()
        with self._lock:
            self._entries.pop(key, None)  # re-insert: the dict's order is the LRU order
            self._entries[key] = (version, started, html)
            while len(self._entries) > self.size:
                old = next(iter(self._entries))
                self._entries.pop(old)
                self._locks.pop(old, None)
        return html

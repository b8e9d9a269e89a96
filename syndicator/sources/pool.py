"""Where parsing runs: in this process when a pass has little to parse, in a process pool
sized to the cores when it has much. One implementation for every source kind.

A `ParsePool` lives for one pass. `choose(size)` adds a job's size to what the pass has
seen and names where it runs: "inline" (the caller's thread), "thread" (one worker thread,
for an event loop that must stay responsive) or "process" (a forkserver pool). `run()` is
for async callers (the feed poller: one job per feed, as bodies arrive), `map()` for sync
callers that know all their jobs (Jekyll: every changed post). When a worker process dies
(killed, out of memory) the pool is marked failed and every job not finished yet runs in
this process instead: the pass finishes, slower.

`fn` and its jobs and results cross a process boundary: they must be picklable, and `fn`
must be a module-level function that never raises for bad input (it returns its problem).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TypeVar

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

Mode = Literal["auto", "inline", "thread", "process"]
MODES: tuple[Mode, ...] = ("auto", "inline", "thread", "process")
# auto, inline or process for every source kind: a benchmark's or a user's override.
ENV = "SYNDICATOR_PARSE_IN"

# The forkserver imports these once, so each worker starts with the parsers loaded. One
# list for every pool: the forkserver is shared by the whole process and reads it only
# when it starts.
PRELOAD = ("syndicator.sources.feeds.parse", "syndicator.sources.jekyll", "syndicator.config")

# A chunk of jobs per round trip to a worker: large enough that pickling and the queue
# cost little, small enough that both cores stay busy to the end and progress moves.
MAX_CHUNK = 32

# Errors that mean the pool, not the job, failed: a dead worker breaks every job in flight;
# RuntimeError/OSError: the pool could not start or was shut down under us.
POOL_ERRORS = (BrokenProcessPool, RuntimeError, OSError)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def mode_from_env(default: Mode = "auto") -> Mode:
    """$SYNDICATOR_PARSE_IN (auto, inline or process), or `default` when it is unset."""
    raw = os.environ.get(ENV, "").strip().lower()
    if not raw:
        return default
    if raw not in ("auto", "inline", "process"):
        log.warning("%s=%r is not auto, inline or process; using %s", ENV, raw, default)
        return default
    return raw  # type: ignore[return-value]


@dataclass
class WorkerLoad:
    """What one worker process did in a pass (to show that every core parsed)."""

    jobs: int = 0
    cpu_seconds: float = 0.0


def _run_chunk(fn: Callable[[J], R], jobs: Sequence[J]) -> tuple[int, float, list[R]]:
    # In the worker: (its pid, the CPU time this chunk took there, the results in order).
    cpu = time.process_time()
    out = [fn(job) for job in jobs]
    return os.getpid(), time.process_time() - cpu, out


class ParsePool:
    """Runs parse jobs for one pass; use as a context manager (it shuts the pool down).

    `mode`: "auto" runs jobs `small` (inline or in a thread) until the pass has seen more
    than `auto_after_bytes`, then in the process pool; or force "inline", "thread" or
    "process". `workers` defaults to the cores; auto never starts a pool of one.
    """

    def __init__(
        self,
        mode: Mode = "auto",
        *,
        auto_after_bytes: int,
        small: Literal["inline", "thread"] = "inline",
        workers: int | None = None,
        name: str = "parse",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"parse mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = mode
        self.small = small
        self.auto_after_bytes = auto_after_bytes
        self.workers = max(1, workers or cores())
        self.name = name
        self.failed = False  # a worker died: the rest of the pass runs `small`
        self.load: dict[int, WorkerLoad] = {}  # worker pid -> its share (map() only)
        self._bytes_seen = 0
        self._thread: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._modes: set[str] = set()
        self._reported = False

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On an error or a stop, do not wait for the chunks still running in the workers.
        self.close(wait=exc_type is None)

    @property
    def modes(self) -> str:
        """Where this pass's jobs ran, e.g. "inline", "thread+process x2"."""
        names = [m if m != "process" else f"process x{self.workers}" for m in sorted(self._modes)]
        return "+".join(names) or "none"

    def choose(self, size: int) -> Mode:
        """Where a job of `size` bytes runs, given what the pass has seen so far."""
        self._bytes_seen += size
        mode = self.mode
        if mode == "auto":
            # A pool costs ~0.5-1 s to start: worth it only once this pass has shown a lot
            # to parse. A pass with a few changed feeds or posts stays in this process.
            big = self._bytes_seen > self.auto_after_bytes and self.workers > 1
            mode = "process" if big else self.small
        if mode == "process" and self.failed:
            mode = self.small
        self._modes.add(mode)
        return mode

    def close(self, wait: bool = True) -> None:
        if self.load and not self._reported:
            self._reported = True
            # Where the pass's parsing went, per worker (benchmarks read `parse_load`).
            log.debug(
                "%s parsing: %s; %s",
                self.name,
                self.modes,
                ", ".join(
                    f"worker {pid}: {w.jobs} jobs, {w.cpu_seconds:.1f} s CPU"
                    for pid, w in sorted(self.load.items())
                ),
                extra={"parse_load": dict(self.load), "parse_modes": self.modes},
            )
        for ex in (self._thread, self._pool):
            if ex is not None:
                ex.shutdown(wait=wait, cancel_futures=True)
        self._thread = self._pool = None

    def _thread_executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            # one thread: parsing holds the GIL, more threads would only contend
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-parse")
        return self._thread

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            # forkserver, not fork: forking a process that runs threads (the event loop, a
            # scheduler, a test server) can deadlock in the child. Like any spawn-style pool it
            # imports the main module in the workers, so scripts need `if __name__ == ...`.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def _broken(self, pool: ProcessPoolExecutor | None, exc: BaseException) -> None:
        if not self.failed:
            log.warning(
                "%s parser processes failed (%s: %s); parsing the rest of the pass in this "
                "process instead",
                self.name,
                type(exc).__name__,
                exc,
            )
        self.failed = True
        if pool is not None and self._pool is pool:
            self._pool = None
            # No cancel_futures: a broken pool fails its pending jobs itself, and cancelling
            # them here could race with that and turn a job's failure into a cancellation.
            pool.shutdown(wait=False)
        self._modes.add(self.small)

    async def run(self, fn: Callable[[J], R], job: J, size: int) -> R:
        """fn(job) where `choose(size)` says, without blocking the event loop (unless inline)."""
        mode = self.choose(size)
        loop = asyncio.get_running_loop()
        if mode == "process":
            pool = None
            try:
                pool = self._process_pool()
                return await loop.run_in_executor(pool, fn, job)
            except POOL_ERRORS as exc:
                self._broken(pool, exc)
            mode = self.small
        if mode == "inline":
            return fn(job)
        return await loop.run_in_executor(self._thread_executor(), fn, job)

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], sizes: Sequence[int]) -> Iterator[R]:
        """fn(job) for every job, yielded in the jobs' order (so the order of results never
        depends on the mode). The mode is chosen once, by the jobs' total size; "thread"
        runs inline (the caller waits either way)."""
        if not jobs:
            return
        if self.choose(sum(sizes)) != "process":
            for job in jobs:
                yield fn(job)
            return
        size = max(1, min(MAX_CHUNK, len(jobs) // (self.workers * 8)))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        futures: list[Future[tuple[int, float, list[R]]]] = []
        pool = None
        try:
            pool = self._process_pool()
            for chunk in chunks:
                futures.append(pool.submit(_run_chunk, fn, chunk))
        except POOL_ERRORS as exc:
            self._broken(pool, exc)  # the chunks not submitted run inline below
        try:
            for i, chunk in enumerate(chunks):
                out: list[R] | None = None
                if i < len(futures):
                    try:
                        pid, cpu, out = futures[i].result()
                    except (*POOL_ERRORS, CancelledError) as exc:
                        # Chunks finished before the failure keep their results; this one
                        # and the rest are parsed here.
                        self._broken(pool, exc)
                    else:
                        share = self.load.setdefault(pid, WorkerLoad())
                        share.jobs += len(chunk)
                        share.cpu_seconds += cpu
                if out is None:
                    out = [fn(job) for job in chunk]
                yield from out
        finally:
            for f in futures:
                f.cancel()

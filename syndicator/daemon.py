"""`syndicator run`: the same pass as `run-once`, on a schedule and on file changes.

- APScheduler (3.x) fires each source at its own `every` or cron, with jitter and
  misfire grace; a worker thread runs the passes one at a time.
- watchfiles watches Jekyll sources: a new or changed post triggers a pass at once.
- Deliveries due later (future-dated episodes, daily slot, back-off) wake the
  worker when they fall due.
- On SQLite, a leader lease in the store: of several daemons only one polls and
  sends; a standby takes over when the leader's lease runs out.
- On PostgreSQL every daemon is a worker: it claims due sources and deliveries in
  batches (SKIP LOCKED, leases by the database's clock) and wakes when the database says
  the next source is due; one-holder duties take advisory locks (pipeline.py).
- SIGTERM/SIGINT finish the send in flight and exit; SIGHUP reloads the config.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syndicator import config
from syndicator.announce import outbox
from syndicator.config import ChannelConfig, JekyllSourceConfig, Settings
from syndicator.events import EVENTS_LOGGER, log_events, pass_events
from syndicator.pipeline import ChannelPool, run_once
from syndicator.store import deliveries, leases
from syndicator.store import sources as store_sources
from syndicator.store import workers as store_workers
from syndicator.store.db import dispose_all, open_store, session, shared
from syndicator.timeutil import utcnow

log = logging.getLogger("syndicator.daemon")
events = logging.getLogger(EVENTS_LOGGER)

LEADER = "leader"
STORED_EVERY = 60  # seconds between looks for due stored sources (docs/operations.md)
POST_SUFFIXES = {".md", ".markdown", ".html"}


def _holds_unknown(ch: ChannelConfig) -> bool:
    """Whether an `unknown` row of this channel waits for a person (its kind can neither
    resend safely nor read back, and the config says hold)."""
    from syndicator.plugins import kinds

    k = kinds().get(ch.type)
    return k is not None and k.unknown_policy == "none" and ch.on_unknown == "hold"


class _Beat:
    """Progress sink that tells the heartbeat what the worker is doing."""

    def __init__(self, daemon: Daemon):
        self.d = daemon

    def step(self, description: str, total: int | None = None) -> None:
        self.d.doing = description

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        log.info("%s", message)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        web: bool = False,
        host: str | None = None,
        port: int | None = None,
    ):
        self.settings = settings
        self.config_path = config_path or settings.config_path
        self.web, self.host, self.port = web, host, port
        self.owner = outbox.process_owner()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.pending_sources: set[str] = set()
        self.pending_all = True  # the first pass looks at every due source
        self.pending_send = True
        self.is_leader = False
        self.worker_mode = False  # PostgreSQL: every daemon polls and sends its share
        self.doing = "starting"
        self.started_at = utcnow()
        self.last_pass_at: datetime | None = None
        self.next_due: datetime | None = None
        self.scheduler: BackgroundScheduler | None = None
        # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for the
        # running jobs, and get_jobs() needs that lock: a heartbeat asking get_jobs() then
        # would never finish. This lock and flag keep get_jobs() away once shutdown begins.
        self._jobs_lock = threading.Lock()
        self._jobs_closed = False
        self.watch_stop = threading.Event()
        self.watch_thread: threading.Thread | None = None
        self.web_server: Any = None
        self.reload_requested = False
        self.stop_asked: float | None = None  # monotonic time of the stop signal
        self.channels = ChannelPool()  # logins and limits kept between passes

    # ------------------------------------------------------------ requests

    def request(self, sources: list[str] | None = None, *, send: bool = True) -> None:
        """Ask the worker for a pass (called by jobs, the watcher and the web page)."""
        with self.lock:
            if sources is None:
                self.pending_all = True
            else:
                self.pending_sources.update(sources)
            self.pending_send = self.pending_send or send
        self.wake.set()

    def _take(self) -> tuple[bool, set[str], bool]:
        with self.lock:
            out = (self.pending_all, set(self.pending_sources), self.pending_send)
            self.pending_all, self.pending_send = False, False
            self.pending_sources.clear()
        return out

    # ------------------------------------------------------------ schedule

    def _schedule(self) -> None:
        assert self.scheduler is not None
        for job in self.scheduler.get_jobs():
            job.remove()
        d = self.settings.daemon
        jitter = int(d.jitter.total_seconds()) or None
        grace = int(d.misfire_grace.total_seconds()) or 1
        for src in self.settings.sources:
            # a worker's sources fall due in the database (its next_due); a timer per
            # source in every worker would only wake them all at once
            if not src.enabled or self.worker_mode:
                continue
            trigger: Any
            if src.cron:
                trigger = CronTrigger.from_crontab(src.cron, timezone=self.settings.podcast.tz)
            else:
                trigger = IntervalTrigger(seconds=max(src.every.total_seconds(), 1), jitter=jitter)
            self.scheduler.add_job(
                self.request,
                trigger,
                args=[[src.name]],
                id=f"poll:{src.name}",
                misfire_grace_time=grace,
                coalesce=True,
                max_instances=1,
            )
        # The store's sources (OPML imports): one job, not one per feed; it asks for those
        # due, read from the store when it fires, so an import needs no reload.
        self.scheduler.add_job(
            self._request_stored,
            IntervalTrigger(seconds=STORED_EVERY, jitter=jitter),
            id="poll:stored",
            misfire_grace_time=grace,
            coalesce=True,
            max_instances=1,
        )
        if self.settings.stats.enabled and any(c.enabled for c in self.settings.channels):
            # Listener counts fall due post by post (`every` after the last reading): look
            # for due ones often enough that none waits much past its time, never more
            # than hourly; the pass reads them, sending nothing new unless it is due.
            check = min(max(self.settings.stats.every.total_seconds() / 6, 60.0), 3600.0)
            self.scheduler.add_job(
                self.request,
                IntervalTrigger(seconds=check, jitter=jitter),
                args=[[]],
                id="stats",
                misfire_grace_time=grace,
                coalesce=True,
                max_instances=1,
            )
        self.scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=max(d.heartbeat.total_seconds(), 0.2)),
            id="heartbeat",
            coalesce=True,
            max_instances=1,
            next_run_time=utcnow(),
        )

    def _request_stored(self) -> None:
        from syndicator.sourcelist import due_stored

        try:
            names = due_stored(open_store(self.settings), self.settings, utcnow())
        except Exception:  # the store is down: the next tick asks again
            log.exception("could not read the stored sources")
            return
        if names:
            self.request(names)

    def _next_scheduled(self) -> datetime | None:
        times = []
        with self._jobs_lock:
            jobs = [] if self.scheduler is None or self._jobs_closed else self.scheduler.get_jobs()
        for job in jobs:
            if job.id.startswith("poll:") and job.next_run_time is not None:
                times.append(job.next_run_time)
        if self.next_due is not None:
            times.append(self.next_due)
        return min(times) if times else None

    # ------------------------------------------------------------ leader + heartbeat

    def _heartbeat(self) -> None:
        if self.stop.is_set():
            return
        engine = open_store(self.settings)
        now = utcnow()
        try:
            store_workers.beat(engine, self.owner, socket.gethostname(), os.getpid())
            was = self.is_leader
            self.is_leader = self.worker_mode or leases.acquire(
                engine, LEADER, self.owner, self.settings.daemon.leader_lease, now
            )
            if self.worker_mode:
                pass  # no leader: the work is shared out by claims
            elif self.is_leader and not was:
                log.warning("this daemon now leads (%s)", self.owner)
                self.request()  # catch up on whatever the previous leader left
            elif was and not self.is_leader:
                log.warning("lost the leader lease; standing by")
            leases.beat(
                engine,
                self.owner,
                now,
                role="worker" if self.worker_mode else "leader" if self.is_leader else "standby",
                state=self.doing if self.is_leader else "standby",
                next_pass_at=self._next_scheduled(),
                last_pass_at=self.last_pass_at,
                started_at=self.started_at,
            )
        except Exception:
            log.exception("heartbeat failed; will try again")

    # ------------------------------------------------------------ watching files

    def _watch_paths(self) -> list[Path]:
        paths = []
        for src in self.settings.sources:
            if isinstance(src, JekyllSourceConfig) and src.enabled:
                posts = src.path / "_posts"
                paths.append(posts if posts.is_dir() else src.path)
        return [p for p in paths if p.exists()]

    def _source_for(self, changed: Path) -> str | None:
        for src in self.settings.sources:
            if isinstance(src, JekyllSourceConfig) and changed.is_relative_to(src.path):
                return src.name
        return None

    def _start_watcher(self) -> None:
        if not self.settings.daemon.watch:
            return
        paths = self._watch_paths()
        if not paths:
            return
        from watchfiles import watch

        stop = threading.Event()
        self.watch_stop = stop

        def loop() -> None:
            try:
                for changes in watch(
                    *paths, stop_event=stop, debounce=50, step=20, rust_timeout=500,
                    yield_on_timeout=False, raise_interrupt=False,
                ):  # fmt: skip
                    names = {
                        self._source_for(Path(p))
                        for _, p in changes
                        if Path(p).suffix.lower() in POST_SUFFIXES
                    }
                    names.discard(None)
                    if names:
                        events.info(
                            "picked up changed posts in %s", ", ".join(sorted(names)),  # type: ignore[arg-type]
                            extra={"ctx_event": "picked-up", "ctx_sources": sorted(names)},  # type: ignore[type-var]
                        )  # fmt: skip
                        self.request(sorted(names))  # type: ignore[arg-type]
            except Exception:
                log.exception("file watching stopped; scheduled polls go on")

        self.watch_thread = threading.Thread(target=loop, name="watch", daemon=True)
        self.watch_thread.start()

    def _stop_watcher(self) -> None:
        self.watch_stop.set()
        if self.watch_thread is not None:
            self.watch_thread.join(timeout=3)
            self.watch_thread = None

    # ------------------------------------------------------------ web

    def _start_web(self) -> None:
        from syndicator.web.server import WebServer, WebServerError, check_bind

        host = self.host or self.settings.web.host
        problem = check_bind(self.settings, host)
        if problem:
            raise SystemExit(problem)
        try:
            server = WebServer(
                self.settings,
                host=host,
                port=self.port or self.settings.web.port,
                # the page's actions go through this daemon's worker: one code path
                run_pass=lambda: self.request(),
                wake=lambda: self.request([], send=True),
            )
            server.start()
        except WebServerError as exc:
            raise SystemExit(str(exc)) from None
        self.web_server = server
        log.warning("admin page on %s", server.url)

    # ------------------------------------------------------------ reload

    def _reload(self) -> None:
        self.reload_requested = False
        try:
            new = config.load(self.config_path)
        except config.ConfigError as exc:
            log.error("config reload failed; keeping the old one:\n%s", exc)
            return
        self.settings = new
        self._schedule()
        self._stop_watcher()
        self._start_watcher()
        log.warning("config reloaded from %s", self.config_path)
        self.request()

    # ------------------------------------------------------------ the worker

    def _next_delivery_due(self) -> datetime | None:
        engine = open_store(self.settings)
        held = [  # unknown rows of kinds that can't tell wait for a person, not for a timer
            c.name for c in self.settings.channels if _holds_unknown(c)
        ]
        with session(engine) as s:
            return deliveries.next_due_at(
                s,
                utcnow(),
                waiting=[outbox.PLANNED, outbox.RETRYING, outbox.WAITING_AUDIO],
                unknown=outbox.UNKNOWN,
                held=held,
                planned=outbox.PLANNED,
            )

    def _next_source_due(self) -> datetime | None:
        """Workers: when the database says the next source can be claimed."""
        engine = open_store(self.settings)
        names = [s.name for s in self.settings.sources if s.enabled]
        with session(engine) as s:
            wait = store_sources.next_due_in(s, names)
        return None if wait is None else utcnow() + wait

    def _wait_seconds(self) -> float:
        now = utcnow()
        nxt = self.next_due
        wait = 30.0
        if nxt is not None:
            wait = min(wait, max((nxt - now).total_seconds(), 0.0))
        return wait

    def _pass(self) -> None:
        full, names, _send = self._take()
        self.doing = "pass"
        try:
            work = self.worker_mode  # a worker claims whatever is due, by the database
            slack = timedelta(0) if work else self.settings.daemon.jitter + timedelta(seconds=5)
            report = run_once(
                self.settings,
                progress=_Beat(self),
                owner=self.owner,
                should_stop=lambda: self.stop.is_set() or not self.is_leader,
                poll=work or full or bool(names),
                sources=None if work or full else sorted(names),
                due_slack=slack,
                pool=self.channels,
            )
            log_events(pass_events(report))
            for line in report.attention[:20]:
                log.debug("needs attention: %s", line)
        except Exception:
            log.exception("the pass failed; the next one will try again")
        finally:
            self.last_pass_at = utcnow()
            self.doing = "idle"
        try:
            self.next_due = self._next_delivery_due()
            if self.worker_mode:
                src_due = self._next_source_due()
                if src_due is not None and (self.next_due is None or src_due < self.next_due):
                    self.next_due = src_due
            # Due but held back (pacing, quiet hours): look again shortly, don't spin.
            floor = utcnow() + timedelta(seconds=2)
            if self.next_due is not None and self.next_due < floor:
                self.next_due = floor
        except Exception:
            log.exception("could not read the next due delivery")
            self.next_due = utcnow() + timedelta(seconds=30)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            if self.stop_asked is None:
                self.stop_asked = time.monotonic()
            log.warning("signal %s: finishing the send in flight, then exiting", signum)
            self.stop.set()
            self.wake.set()

        def hup(_signum: int, _frame: Any) -> None:
            self.reload_requested = True
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, hup)

    def run(self) -> int:
        engine = open_store(self.settings)
        self.worker_mode = self.is_leader = shared(engine)
        if self.worker_mode:
            self.wake.set()  # a worker needs no lease to start: take what is due now
        self._install_signals()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._schedule()
        self.scheduler.start()
        self._start_watcher()
        if self.web:
            self._start_web()
        log.warning(
            "daemon started (%s)%s",
            self.owner,
            ", a worker sharing PostgreSQL with any others" if self.worker_mode else "",
        )
        try:
            while not self.stop.is_set():
                self.wake.wait(timeout=self._wait_seconds())
                self.wake.clear()
                if self.stop.is_set():
                    break
                if self.reload_requested:
                    self._reload()
                if not self.is_leader:
                    continue
                if self.next_due is not None and self.next_due <= utcnow():
                    self.pending_send = True
                    self.pending_all = self.pending_all or self.worker_mode
                with self.lock:
                    has_work = self.pending_all or self.pending_sources or self.pending_send
                if has_work:
                    self._pass()
                elif self.next_due is None:
                    self.next_due = utcnow() + timedelta(seconds=30)
        finally:
            self._shutdown(engine)
        return 0

    def _shutdown(self, engine: Any) -> None:
        # Counted from the stop signal, through the send in flight, until every thread,
        # the web server and the database connections are gone: the time it really took.
        t0 = self.stop_asked if self.stop_asked is not None else time.monotonic()
        if self.scheduler is not None:
            with self._jobs_lock:
                self._jobs_closed = True
            self.scheduler.shutdown(wait=True)
        self._stop_watcher()
        if self.web_server is not None:
            self.web_server.stop()
        self.channels.close()
        try:
            now = utcnow()
            leases.release(engine, LEADER, self.owner, now)
            leases.stopped(engine, self.owner, now, "stopped cleanly")
            store_workers.stopped(engine, self.owner)
        except Exception:
            log.exception("could not release the leader lease; it expires by itself")
        dispose_all()
        log.warning("daemon stopped in %.2fs", time.monotonic() - t0)

"""One pass: poll due sources -> store -> plan the outbox -> send -> rebuild feeds -> ping.

The daemon, `run-once` and the web page's "run a pass now" all call `run_once`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syndicator import sourcelist
from syndicator.announce import approval, evergreen, outbox, sender
from syndicator.announce.outbox import PlannedRow
from syndicator.config import FeedSourceConfig, JekyllSourceConfig, Settings
from syndicator.passreport import PassReport, SourceOutcome
from syndicator.progress import NoProgress, PassProgress
from syndicator.sources import remote_chapters
from syndicator.sources.base import Chapter, FileStamp, PollResult, ProblemData, ScanResult
from syndicator.sources.kinds import Polled, PollJob, SourceKind
from syndicator.store import deliveries, source_rows
from syndicator.store import episodes as store_episodes
from syndicator.store import meta as store_meta
from syndicator.store import problems as problem_store
from syndicator.store import remote_chapters as store_chapters
from syndicator.store import sources as store_sources
from syndicator.store import workers as store_workers
from syndicator.store.db import db_now, discard, open_store, session, shared
from syndicator.store.ingest import (
    IngestStats,
    apply_poll,
    apply_scan,
    ensure_source,
    known_stamps,
)
from syndicator.store.models import Delivery
from syndicator.timeutil import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
LISTED_CLAIMS_MAX = 200  # past this many sources of a kind, claims name none (_poll_claimed)
RACE_RETRIES = 3  # a unique-key race with another pass: retried, reading the winner's rows
# A chapters file that could not be fetched or read is tried again after this long (not on
# every poll: a slow or broken server would slow every pass).
CHAPTERS_RETRY = timedelta(hours=24)


def _titles(s: Any, ids: list[int]) -> list[str]:
    return store_episodes.titles(s, ids)


Titles = tuple[list[str], list[str]]  # new, changed: what the pass's events name


def make_clock(now: datetime | None) -> Callable[[], datetime]:
    """Real time, or a chosen `--now` that still moves forward during the pass."""
    if now is None:
        return utcnow
    start = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - start)


def stored(engine: Engine, fn: Callable[[Session], T]) -> T:
    """Run `fn` in one write transaction. Two passes that store the same new row at once
    (PostgreSQL lets both try): the loser's unique violation is retried, and the retry
    reads what the winner stored instead of failing the source."""
    for attempt in range(RACE_RETRIES):
        try:
            with session(engine, write=True) as s:
                return fn(s)
        except IntegrityError:
            if attempt == RACE_RETRIES - 1:
                raise
            log.info(
                "another pass stored the same rows first; reading them (retry %d)", attempt + 1
            )
    raise AssertionError("unreachable")


def _sync_sources(engine: Engine, settings: Settings) -> None:
    def sync(s: Session) -> None:
        have = source_rows.poll_urls(s)  # one query: 10,000 stored sources are common
        for src in settings.sources:
            url = getattr(src, "url", None)
            if src.name not in have or (url is not None and have[src.name] != url):
                ensure_source(s, src.name, src.type, url)

    stored(engine, sync)


def poll_sources(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    names: list[str] | None = None,
    force: bool = False,
    due_slack: timedelta = timedelta(0),
    progress: PassProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    owner: str | None = None,
    clock: Callable[[], datetime] | None = None,
    chosen_time: bool = False,
) -> list[SourceOutcome]:
    """Read every due source and store what it holds. Bad input becomes problems.

    On PostgreSQL (unless `force`) the sources are claimed in batches, so many workers
    share them and none is read twice in an interval (`_poll_claimed`); "due" is by the
    database's clock, or by `now` when it is a `chosen_time` (`--now`).

    Each kind of source (sources/kinds.py, found through entry points) reads its own;
    this stores each result as it comes. `should_stop()` turning true (a shutdown) ends
    the reading early, even mid-render: the source being read stores nothing this time
    and the rest are left for later.
    """
    from syndicator.sources.kinds import PollContext, load_kinds
    from syndicator.sources.text import RenderStopped

    progress = progress or NoProgress()
    out: list[SourceOutcome] = []
    _sync_sources(engine, settings)
    wanted = [s for s in settings.sources if s.enabled and (names is None or s.name in names)]
    ctx = PollContext(settings.podcast.tz, settings.fetch, progress, should_stop)
    claims = shared(engine) and not force
    for kind in load_kinds():
        configs = [s for s in wanted if s.type == kind.type]
        if claims and configs:
            try:
                _poll_claimed(
                    engine, settings, kind, configs, ctx, out,
                    owner=owner or outbox.process_owner(), clock=clock or (lambda: now),
                    should_stop=should_stop or (lambda: False), chosen_time=chosen_time,
                )  # fmt: skip
            except RenderStopped:
                return out
            continue
        jobs = _poll_jobs(engine, kind, configs, now, force, due_slack, out)
        if not jobs:
            continue
        try:
            _store_all(engine, settings, kind.type, kind.poll(jobs, ctx), now, out, progress)
        except RenderStopped:
            return out
    return out


def _poll_claimed(
    engine: Engine,
    settings: Settings,
    kind: SourceKind,
    configs: list[Any],
    ctx: Any,
    out: list[SourceOutcome],
    *,
    owner: str,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    chosen_time: bool = False,
) -> None:
    """PostgreSQL workers: claim a batch of due sources (SKIP LOCKED, a lease by the
    database's clock), read and store them, release them, and claim again until none is
    due. Each batch's time is taken when it is claimed, so the next due time is one
    interval after the poll really happened. Sources another worker holds, or not due
    yet, are "skipped" here."""
    by_name = {c.name: c for c in configs}
    left = set(by_name)  # each source once per pass, even one with no schedule
    # Naming every source in each claim costs a claim O(sources) (400 ms with 100,000
    # names, most of it dumping the array): past LISTED_CLAIMS_MAX a scheduled kind's
    # claims name none, and hand back at once what this pass does not poll (not in its
    # config, or polled already), naming only those from then on.
    listed = len(by_name) <= LISTED_CLAIMS_MAX or not kind.scheduled
    exclude: list[str] = []
    cfg = settings.workers
    claims, claim_seconds, started = 0, 0.0, time.perf_counter()
    while left and not should_stop():
        t0 = time.perf_counter()
        with session(engine, write=True) as s:
            claimed = store_sources.claim_due(
                s, owner, list(left) if listed else None, cfg.source_lease, cfg.claim_batch,
                due_only=kind.scheduled, at=clock() if chosen_time else None,
                type_=None if listed else kind.type, exclude=exclude,
            )  # fmt: skip
        # the claim's round trip, commit included: what scale-out costs PostgreSQL
        claim_seconds += time.perf_counter() - t0
        claims += 1
        if not claimed:
            break
        foreign = [n for n in claimed if n not in left]
        if foreign:
            exclude.extend(foreign)
            with session(engine, write=True) as s:
                store_sources.release(s, owner, foreign)
            claimed = [n for n in claimed if n in left]
            if not claimed:
                continue
        left.difference_update(claimed)
        batch_now = clock()
        try:
            jobs = _poll_jobs(
                engine, kind, [by_name[n] for n in claimed], batch_now, True, timedelta(0), out
            )
            _store_all(
                engine, settings, kind.type, kind.poll(jobs, ctx), batch_now, out, ctx.progress
            )
        finally:
            # a stop mid-batch leaves unread sources due as they were: others take them
            with session(engine, write=True) as s:
                store_sources.release(s, owner, claimed)
    out.extend(SourceOutcome(n, kind.type, "skipped") for n in sorted(left))
    log.info(
        "%s sources: %d claimed by %s in %d claims (%.2f ms per claim, %.1f s in all)",
        kind.type, len(by_name) - len(left), owner, claims,
        1000 * claim_seconds / max(claims, 1), time.perf_counter() - started,
    )  # fmt: skip


def _fingerprint_key(src: Any) -> str:
    return f"{src.type}-fingerprint:{src.name}"  # "jekyll-fingerprint:<name>"


def _poll_jobs(
    engine: Engine,
    kind: SourceKind,
    configs: list[Any],
    now: datetime,
    force: bool,
    due_slack: timedelta,
    out: list[SourceOutcome],
) -> list[PollJob]:
    """What the store remembers of each source to read; a scheduled kind's sources that
    are disabled or not due yet become outcomes instead."""
    from syndicator.sources.kinds import Known, PollJob

    jobs: list[PollJob] = []
    names = [src.name for src in configs]
    with session(engine) as s:
        # a few queries for the whole batch, not three per source: 100,000 feeds are read
        rows = store_sources.by_names(s, names)
        fingerprints = store_meta.get_many(s, [_fingerprint_key(src) for src in configs])
        with_files = store_sources.having_files(s, names)
        for src in configs:
            row = rows[src.name]
            if kind.scheduled:
                if row.disabled:
                    out.append(
                        SourceOutcome(src.name, kind.type, "disabled", error=row.disabled_reason)
                    )
                    continue
                # A scheduler's jitter may fire a little early: `due_slack` forgives that,
                # while back-off and Retry-After (far later due times) still hold.
                if not force and row.next_due_at is not None and row.next_due_at > now + due_slack:
                    out.append(SourceOutcome(src.name, kind.type, "skipped"))
                    continue
            known = Known(
                url=row.url, etag=row.etag, last_modified=row.last_modified,
                files=known_stamps(s, src.name) if src.name in with_files else {},
                fingerprint=fingerprints.get(_fingerprint_key(src)),
            )  # fmt: skip
            jobs.append(PollJob(src, known))
    return jobs


UNCHANGED_BATCH = 500  # 304s stored per transaction


def _store_all(
    engine: Engine,
    settings: Settings,
    kind: str,
    readings: Iterable[Polled],
    now: datetime,
    out: list[SourceOutcome],
    progress: Any,
) -> None:
    """Store each reading as it comes; plain 304s (no problem, no redirect) wait and are
    stored UNCHANGED_BATCH at a time. A stop (RenderStopped) still stores those read."""
    unchanged: list[Polled] = []
    try:
        for polled in readings:
            res = polled.result
            if isinstance(res, PollResult) and _plain_304(res):
                unchanged.append(polled)
                if len(unchanged) >= UNCHANGED_BATCH:
                    _store_unchanged(engine, settings, kind, unchanged, now, out)
                    unchanged = []
                continue
            out.append(_store_polled(engine, settings, kind, polled, now))
            if isinstance(res, ScanResult):
                progress.advance()
    finally:
        _store_unchanged(engine, settings, kind, unchanged, now, out)


def _plain_304(res: PollResult) -> bool:
    return res.status == "not-modified" and not res.problems and not res.new_url


def _store_unchanged(
    engine: Engine,
    settings: Settings,
    kind: str,
    batch: list[Polled],
    now: datetime,
    out: list[SourceOutcome],
) -> None:
    """Store plain 304s in one transaction and one UPDATE (store.sources.not_modified_many
    writes what apply_poll would). A source with open problems goes through apply_poll,
    which may resolve them; so does the whole batch if the batch write fails."""
    if not batch:
        return
    by_name = {p.job.config.name: p for p in batch}

    def store(s: Session) -> set[str]:
        busy = problem_store.with_open(s, list(by_name))
        rows = []
        for name, p in by_name.items():
            if name in busy:
                continue
            res = p.result
            assert isinstance(res, PollResult)  # _plain_304 let only feed results in
            due = now + interval(p.job.config, now)
            rows.append(store_sources.Unchanged(name, res.etag, res.last_modified, due))
        store_sources.not_modified_many(s, rows, now)
        return busy

    try:
        busy = stored(engine, store)
    except Exception:
        log.exception("storing %d unchanged feeds at once failed; storing one by one", len(batch))
        busy = set(by_name)
    for name, polled in by_name.items():
        if name in busy:
            out.append(_store_polled(engine, settings, kind, polled, now))
        else:
            out.append(SourceOutcome(name, kind, "not-modified"))


def _store_polled(
    engine: Engine, settings: Settings, kind: str, polled: Polled, now: datetime
) -> SourceOutcome:
    """Store one source's reading; a failure to read or to store is its problem."""
    src, window = polled.job.config, settings.announce.window
    if polled.result is None:
        err = polled.error or "the source could not be read"
        _store_failure(engine, src.name, polled.location, err, now)
        return SourceOutcome(src.name, kind, "error", error=err)
    if isinstance(polled.result, ScanResult):
        result = polled.result

        def store_scan(
            s: Session,
            src: JekyllSourceConfig = src,
            result: ScanResult = result,
            known: dict[str, FileStamp] = polled.job.known.files,
            fingerprint: str | None = polled.fingerprint,
            fp_key: str = _fingerprint_key(src),
        ) -> tuple[IngestStats, Titles]:
            row = store_sources.by_name(s, src.name)
            stats = apply_scan(s, row, result, known, now, window)
            titles = (_titles(s, stats.new[:20]), _titles(s, stats.changed[:20]))
            if result.complete:
                if fingerprint is not None:
                    store_meta.put(s, fp_key, fingerprint, now)
                store_sources.scanned(s, row, now + interval(src, now), None)
                problem_store.resolve(s, src.name, str(src.path), now)  # crash, store
            else:
                error = "; ".join(str(p) for p in result.problems)
                store_sources.scanned(s, row, now + interval(src, now), error)
            return stats, titles

        try:
            stats, titles = stored(engine, store_scan)
        except Exception as exc:  # e.g. another process stored the same post first
            err = f"storing failed, nothing of it was kept; the next pass tries again: {exc}"
            log.exception("source %s: storing failed", src.name)
            _store_failure(engine, src.name, polled.location, err, now)
            return SourceOutcome(src.name, kind, "error", error=err)
        return SourceOutcome(
            src.name, kind, "ok" if result.complete else "error",
            len(stats.new), len(stats.changed), len(stats.withdrawn), stats.problems,
            None if result.complete else "posts folder unreadable", *titles,
        )  # fmt: skip
    res = polled.result
    if res.status == "ok":
        try:
            _remote_chapters(engine, settings, src, res, now)
        except Exception as exc:  # the store, say: the episodes still go on without them
            log.exception("source %s: remote chapters failed", src.name)
            res.problems.append(
                ProblemData(
                    res.url,
                    "chapters",
                    f"the items' podcast:chapters files could not be read or kept "
                    f"({type(exc).__name__}: {exc}); the episodes are stored without those "
                    "chapters and the next poll tries again.",
                    severity="warning",
                )
            )

    def store_poll(
        s: Session, src: FeedSourceConfig = src, res: PollResult = res
    ) -> tuple[IngestStats, Titles]:
        row = store_sources.by_name(s, src.name)
        stats = apply_poll(s, row, res, now, window, interval(src, now), settings.fetch.max_backoff)
        sourcelist.record_show(s, src.name, res, now)
        return stats, (_titles(s, stats.new[:20]), _titles(s, stats.changed[:20]))

    try:
        stats, titles = stored(engine, store_poll)
    except Exception as exc:
        err = f"storing failed, nothing of it was kept; the next poll tries again: {exc}"
        log.exception("source %s: storing failed", src.name)
        _store_failure(engine, src.name, res.url, err, now)
        return SourceOutcome(src.name, kind, "error", error=err)
    return SourceOutcome(
        src.name, kind, res.status, len(stats.new), len(stats.changed),
        0, stats.problems, res.error, *titles,
    )  # fmt: skip


def _remote_chapters(
    engine: Engine, settings: Settings, src: FeedSourceConfig, res: PollResult, now: datetime
) -> None:
    """Give each item that points to a podcast:chapters file (and has no psc:chapters) the
    chapters of that file: from the store when it was fetched before, else fetched now (at
    most MAX_PER_PASS new files per source and pass; the rest on later passes). A file that
    can't be used is one warning on the feed naming each URL and why; its episodes go on
    without chapters."""
    want = [ep for ep in res.episodes if ep.chapters_url and not ep.chapters]
    if not want:
        return
    urls = list(dict.fromkeys(ep.chapters_url for ep in want if ep.chapters_url))
    with session(engine) as s:
        known = {
            u: (row.chapters, row.error, row.fetched_at)
            for u, row in store_chapters.cached(s, urls).items()
        }
    due = [
        u
        for u in urls
        if u not in known or (known[u][1] and (known[u][2] or now) <= now - CHAPTERS_RETRY)
    ][: remote_chapters.MAX_PER_PASS]
    if due:
        private = src.allow_private_redirects
        fetched = remote_chapters.fetch_chapters_sync(
            due,
            user_agent=settings.fetch.user_agent,
            max_per_host=settings.fetch.max_per_host,
            allow_private_redirects=(
                settings.fetch.allow_private_redirects if private is None else private
            ),
        )

        def keep(s: Session) -> None:
            for got in fetched:
                dicts = [c.to_dict() for c in got.chapters]
                store_chapters.put(s, got.url, dicts, got.error, now)

        stored(engine, keep)
        known.update({g.url: ([c.to_dict() for c in g.chapters], g.error, now) for g in fetched})
    broken: dict[str, str] = {}
    for ep in want:
        got = known.get(ep.chapters_url or "")
        if got is None:
            continue  # past this pass's cap: a later pass fetches it
        chapters, error, _at = got
        if error:
            broken[ep.chapters_url or ""] = error
        else:
            ep.chapters = [Chapter(start=int(c["start"]), title=str(c["title"])) for c in chapters]
    if broken:
        shown = "; ".join(f"{u[:300]}: {why}" for u, why in list(broken.items())[:3])
        more = f" (and {len(broken) - 3} more)" if len(broken) > 3 else ""
        res.problems.append(
            ProblemData(
                res.url,
                "chapters",
                f"{len(broken)} podcast:chapters file(s) could not be used, so those episodes "
                f"are kept without chapters: {shown}{more}. Each is tried again after "
                f"{int(CHAPTERS_RETRY.total_seconds() // 3600)} hours; tell the feed's "
                "publisher if it persists.",
                severity="warning",
            )
        )


def _episode_titles(engine: Engine, ids: list[int | None]) -> list[str]:
    with session(engine) as s:
        titles = store_episodes.titles_by_id(s, {i for i in ids if i is not None})
    return [titles.get(i, "") if i is not None else "" for i in ids]


def _store_failure(engine: Engine, name: str, location: str, err: str, now: datetime) -> None:
    """A source whose result could not be stored: a problem, and its error count."""
    with session(engine, write=True) as s:
        problem_store.record(s, name, ProblemData(location, "store", err[:2000]), now)
        store_sources.count_error(s, name, err)


def interval(src: FeedSourceConfig | JekyllSourceConfig, now: datetime) -> timedelta:
    """Time to the source's next regular poll: its cron expression, else `every`."""
    if src.cron:
        from croniter import croniter

        nxt = croniter(src.cron, now.astimezone(UTC)).get_next(datetime)
        return max(nxt - now, timedelta(seconds=1))
    return src.every


class ChannelPool:
    """Channel objects kept from one pass to the next (the daemon), so a login or an
    instance's length limit is fetched once, not on every pass. A channel whose config
    changed (SIGHUP) is made again."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, Any]] = {}

    def get(self, cfg: Any, build: Callable[[], Any] | None = None) -> Any:
        """The channel for `cfg`, made with `build` (else `make_channel`) when it is new."""
        from syndicator.channels.registry import make_channel

        key = cfg.model_dump_json()
        hit = self._items.get(cfg.name)
        if hit is not None and hit[0] == key:
            return hit[1]
        if hit is not None:
            hit[1].close()
        channel = build() if build is not None else make_channel(cfg)
        self._items[cfg.name] = (key, channel)
        return channel

    def close(self) -> None:
        for _, channel in self._items.values():
            channel.close()
        self._items.clear()


class PassChannels:
    """A pass's live channels (enabled, not dry-run), each built the first time the pass
    needs it: for the length limit of a text it renders, or to send or read counts.

    Building a channel imports its network's library (tweepy, Mastodon.py, the atproto
    SDK...), so a pass with nothing to render, send or read builds none. What can be
    checked without building (the kind's settings, every secret) is checked for every
    channel at once, so a missing secret is reported on every pass as before (and its
    problem resolved once they pass); a failure that only building shows (a library
    refusing a setting) is reported by the pass that builds the channel. A channel that
    can't be made is reported (report.channel_errors and a problem) and left out; the
    others go on.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None,
        now: datetime,
        report: PassReport | None = None,
        pool: ChannelPool | None = None,
    ) -> None:
        from syndicator.channels.registry import prepare_channel

        self._engine, self._now, self._report, self._pool = engine, now, report, pool
        self._cfgs: dict[str, Any] = {}  # enabled channels by name, dry-run ones too
        self._builders: dict[str, Callable[[], Any]] = {}  # live channels not built yet
        self._built: dict[str, Any] = {}
        self._limits: dict[str, int] = {}  # a built channel's own limit
        self._unrecorded: list[tuple[str, str]] = []  # failures not yet stored as problems
        for ch in settings.channels:
            if not ch.enabled:
                continue
            self._cfgs[ch.name] = ch
            if ch.dry_run:
                continue
            try:
                self._builders[ch.name] = prepare_channel(ch)
            except Exception as exc:
                self._fail(ch.name, exc)
                continue
            self._store(resolve=ch.name)
        self.limits = _Limits(self)

    def names(self) -> list[str]:
        """The live channels that passed their checks (built or not)."""
        return [n for n in self._cfgs if n in self._builders or n in self._built]

    def get(self, name: str, *, record: bool = True) -> Any | None:
        """The channel, built now if it was not; None when it can't be (reported).
        `record=False` keeps a failure's problem row for `record_failures()` (while the
        caller holds a write session)."""
        if name in self._built:
            return self._built[name]
        build = self._builders.pop(name, None)
        if build is None:
            return None
        try:
            cfg = self._cfgs[name]
            channel = self._pool.get(cfg, build) if self._pool is not None else build()
            self._limits[name] = channel.limit()  # Mastodon asks its instance once
        except Exception as exc:
            self._fail(name, exc, record=record)
            return None
        self._built[name] = channel
        return channel

    def live(self, names: list[str]) -> dict[str, Any]:
        """These channels, built (those that can't be are left out)."""
        out = {}
        for name in names:
            channel = self.get(name)
            if channel is not None:
                out[name] = channel
        return out

    def lazy(self) -> Mapping[str, Any]:
        """Every live channel as a mapping that builds one when it is looked up."""
        return _Lazy(self)

    def limit(self, name: str, *, record: bool = False) -> int:
        from syndicator.announce.fit import default_limit

        if name in self._builders:
            self.get(name, record=record)
        if name in self._limits:
            return self._limits[name]
        ch = self._cfgs[name]
        return ch.limit or default_limit(ch.type)

    def record_failures(self) -> None:
        """Store the problems of channels that failed while `record=False`."""
        pending, self._unrecorded = self._unrecorded, []
        for name, msg in pending:
            self._store(record=(name, msg))

    def close(self) -> None:
        """Close the channels built (a pool keeps its own)."""
        if self._pool is None:
            for channel in self._built.values():
                channel.close()

    def _fail(self, name: str, exc: Exception, *, record: bool = True) -> None:
        msg = f"channel {name}: {getattr(exc, 'message', None) or exc}"
        if self._report is not None:
            self._report.channel_errors.append(msg)
        if record:
            self._store(record=(name, msg))
        else:
            self._unrecorded.append((name, msg))

    def _store(self, *, record: tuple[str, str] | None = None, resolve: str = "") -> None:
        if self._engine is None:
            return
        with session(self._engine, write=True) as s:
            if record is not None:
                name, msg = record
                problem_store.record(
                    s, f"channel:{name}", ProblemData(name, "channel", msg), self._now
                )
            else:
                problem_store.resolve(s, f"channel:{resolve}", resolve, self._now)


class _Limits(Mapping[str, int]):
    """Each enabled channel's length limit; a live channel is built when its limit is
    first asked for (rendering), since the network may say (a Mastodon instance)."""

    def __init__(self, channels: PassChannels) -> None:
        self._channels = channels

    def __getitem__(self, name: str) -> int:
        if name not in self._channels._cfgs:
            raise KeyError(name)
        # while planning holds a write session: the problem is stored afterwards
        return self._channels.limit(name, record=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels._cfgs)

    def __len__(self) -> int:
        return len(self._channels._cfgs)


class _Lazy(Mapping[str, Any]):
    """The live channels by name; looking one up builds it (a failed one is missing)."""

    def __init__(self, channels: PassChannels) -> None:
        self._channels = channels

    def __getitem__(self, name: str) -> Any:
        channel = self._channels.get(name)
        if channel is None:
            raise KeyError(name)
        return channel

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels.names())

    def __len__(self) -> int:
        return len(self._channels.names())


def _would_send(engine: Engine, now: datetime, planned: list[PlannedRow]) -> list[dict[str, Any]]:
    """What a real pass would send now: rows already due plus those it would plan."""
    rows: list[dict[str, Any]] = []
    with session(engine) as s:
        due = deliveries.in_states(s, [outbox.PLANNED, outbox.RETRYING])
        for d in due:
            if (d.due_at is None or d.due_at <= now) and (
                d.next_attempt_at is None or d.next_attempt_at <= now
            ):
                rows.append({"channel": d.channel, "episode_id": d.episode_id, "text": d.text})
    for p in planned:
        if p.state == outbox.PLANNED and (p.due_at is None or p.due_at <= now):
            rows.append({"channel": p.channel, "episode_id": p.episode.id, "text": p.text})
        elif p.reason and p.reason.startswith("dry-run"):
            # a dry-run channel never sends, but its text is what a person wants to see
            channel = f"{p.channel} (dry-run channel)"
            rows.append({"channel": channel, "episode_id": p.episode.id, "text": p.text})
    return rows


def publish(
    engine: Engine, settings: Settings, now: datetime, report: PassReport, *, dry_run: bool
) -> None:
    """Rebuild the feeds whose episodes changed; plan a ping per changed feed and endpoint."""
    if not settings.feeds:
        return
    from syndicator.channels.ping import ping_targets
    from syndicator.directory.publish import publish_feeds

    report.feeds = publish_feeds(engine, settings, now, check_only=dry_run)
    if dry_run:
        return
    with session(engine, write=True) as s:
        for outcome in report.feeds:
            if not outcome.changed:
                continue
            cfg = next(f for f in settings.feeds if f.name == outcome.name)
            digest = outcome.content_hash
            for target in ping_targets(cfg, outcome.url):
                report.pings_planned += outbox.plan_ping(
                    s, outcome.name, target, outcome.url, digest, now
                )


def _attention(engine: Engine, report: PassReport, since: datetime) -> None:
    """Everything open that needs a person; `new_attention` holds what this pass found,
    so a cron job mails once per incident, not on every pass."""
    with session(engine) as s:
        for p in problem_store.open_problems(s, severity="error"):
            where = f"{p.location}:{p.line}" if p.line else p.location
            line = f"{p.source}: {where}: {p.message}"
            report.attention.append(line)
            if p.first_seen_at and p.first_seen_at >= since:
                report.new_attention.append(line)
        bad = deliveries.in_states(s, [outbox.FAILED, outbox.UNKNOWN])
        for d in bad:
            line = f"delivery {d.id} on {d.channel} is {d.state}: {d.last_error}"
            report.attention.append(line)
            if d.updated_at and d.updated_at >= since:
                report.new_attention.append(line)


def _catch_up(s: Session, settings: Settings, now: datetime, report: PassReport) -> None:
    """A burst of due announcements (after downtime) is held, sent or skipped; a hold or
    skip needs a person once: it is in this pass's attention (one cron mail, one alert)."""
    for done in approval.catch_up(s, settings, now):
        line = done.describe(settings.announce.catch_up_limit)
        report.catch_up.append(line)
        if done.policy != "send":
            report.attention.append(line)
            report.new_attention.append(line)


def run_once(
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: PassProgress | None = None,
    owner: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll: bool = True,
    force_poll: bool = False,
    sources: list[str] | None = None,
    due_slack: timedelta = timedelta(0),
    pool: ChannelPool | None = None,
) -> PassReport:
    """One pass. `now` previews the pass at another time (times stay explicit)."""
    t0 = time.monotonic()
    engine = open_store(settings)
    # Workers sharing PostgreSQL keep the database's time, so a machine whose clock is
    # off can't poll early, send early, or expire another worker's lease.
    chosen = now is not None
    clock = make_clock(now if chosen or not shared(engine) else db_now(engine))
    now = clock()
    progress = progress or NoProgress()
    report = PassReport(now=now, dry_run=dry_run)
    owner = owner or outbox.process_owner()

    if poll:
        polled, clashes = sourcelist.merged(engine, settings)  # the store's sources too
        if clashes:
            with session(engine, write=True) as s:
                for p in clashes:
                    problem_store.record(s, "config", p, now)
        report.sources = poll_sources(
            engine,
            polled,
            now,
            names=sources,
            force=force_poll,
            due_slack=due_slack,
            progress=progress,
            should_stop=should_stop,
            owner=owner,
            clock=clock,
            chosen_time=chosen,
        )

    progress.step("planning announcements")
    channels = PassChannels(settings, engine, now, report, pool)
    from syndicator.announce.render import Renderer

    renderer = Renderer(settings)
    with session(engine, write=not dry_run) as s:
        # Workers plan one at a time (announcements and evergreen reshares): the lock
        # lasts until this commit, so the next one sees these rows. Planning is short
        # and waits its turn, so every worker's new episodes are planned in its own pass.
        if not dry_run:
            store_workers.take_duty(s, "planning", wait=True)
        report.planned = outbox.plan(s, settings, renderer, channels.limits, now, dry_run=dry_run)
        report.planned += evergreen.plan_reshares(
            s, settings, renderer, channels.limits, now, dry_run=dry_run
        )
        if dry_run:
            discard(s)  # nothing is written; the episodes stay readable for the report
        else:
            _catch_up(s, settings, now, report)

    channels.record_failures()  # those built for a limit while planning held the session
    if dry_run:
        channels.close()
        report.would_send = _would_send(engine, now, report.planned)
        publish(engine, settings, now, report, dry_run=True)
        report.seconds = time.monotonic() - t0
        return report

    sent_ids: list[int | None] = []  # the episode of each send event, in order

    def collect(row: Delivery, _state: str) -> None:
        sent_ids.append(row.episode_id)

    if not should_stop():
        # before sending: announcements whose audio did not answer yet wait (announce/audio.py)
        from syndicator.announce.audio import verify_waiting

        report.audio = verify_waiting(engine, settings, clock, should_stop=should_stop)
    # only the channels with a row due are built: a pass that sends nothing imports no
    # network library
    live = channels.live(sender.due_channels(engine, settings, channels.names(), clock()))
    if live:
        progress.step("sending announcements")
        report.sends = sender.send_due(
            engine, settings, live, owner=owner, clock=clock, should_stop=should_stop,
            on_event=collect, chosen_time=chosen,
        )  # fmt: skip
    progress.step("building feeds")
    with store_workers.duty(engine, "feeds") as mine:  # one worker builds; others go on
        if mine:
            publish(engine, settings, clock(), report, dry_run=False)
    if settings.feeds and not should_stop():
        from syndicator.channels.registry import implicit_channels

        implicit = implicit_channels(settings, timeout=10.0)  # the feed pings
        try:
            pings = sender.send_due(
                engine, settings, implicit, owner=owner, clock=clock,
                should_stop=should_stop, on_event=collect, chosen_time=chosen,
            )  # fmt: skip
        finally:
            for ch in implicit.values():
                ch.close()
        report.sends.sent += pings.sent
        report.sends.retrying += pings.retrying
        report.sends.events.extend(pings.events)
    if sent_ids:
        report.send_titles = _episode_titles(engine, sent_ids)
    if channels.names() and settings.stats.enabled and not should_stop():
        from syndicator.announce.listeners import read_due

        progress.step("reading listener counts")
        report.counts = read_due(engine, settings, channels.lazy(), clock, should_stop)
        if report.counts.read or report.counts.gone:
            log.info(
                "listener counts: %d post(s) read, %d gone",
                report.counts.read, report.counts.gone,
            )  # fmt: skip
    channels.close()
    from syndicator.alerts import notify_operator

    with store_workers.duty(engine, "alerts") as mine:
        if mine:
            notify_operator(engine, settings, clock())
    with store_workers.duty(engine, "prune") as mine:
        if mine:
            store_workers.forget_gone(engine, settings.workers.forget_after)
    store_workers.count(
        engine,
        owner,
        polls=sum(1 for o in report.sources if o.status not in ("skipped", "disabled")),
        sends=report.sends.sent,
    )
    _attention(engine, report, now)
    report.seconds = time.monotonic() - t0
    return report

"""Polling: many feeds at once, politely, each turned into one `PollResult`.

`poll_feeds()` fetches every requested feed through one shared HTTP client (fetch.py),
with conditional GET (the stored ETag / Last-Modified), per-host and overall caps and a
byte cap, parses each body (parse.py, in a thread or a process pool) and hands back
"ok" with episodes, "not-modified" (a 304, nothing parsed), "gone" (410: the caller
disables the source) or "error" with one clear problem. The caller stores the
validators and new_url and decides on back-off; this module keeps no state.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from syndicator.retry_after import parse_retry_after
from syndicator.sources.base import PollResult
from syndicator.sources.feeds.fetch import Fetcher, FetchOutcome, tls_context
from syndicator.sources.feeds.parse import ParsedFeed, parse_job
from syndicator.sources.feeds.safety import Resolver, problem
from syndicator.sources.kinds import PollContext, Polled, PollJob
from syndicator.sources.pool import ParsePool, mode_from_env

if TYPE_CHECKING:  # config pulls in pydantic; process-pool workers need not import it
    from syndicator.config import FeedSourceConfig, FetchConfig

log = logging.getLogger(__name__)

# "loop" is "inline": parsed in the event loop's thread, blocking it
ParseIn = Literal["auto", "loop", "inline", "thread", "process"]

# auto: parse in one thread until a pass has received this much feed text, then start a
# process pool for the rest (at ~3.5 MB/s per core, that is a few seconds of parsing)
AUTO_PROCESS_AFTER_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class PollRequest:
    """One feed to poll: its config, the URL to use (the stored one after a permanent redirect;
    default: source.url) and the validators stored from the last successful poll."""

    source: FeedSourceConfig
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def target(self) -> str:
        return self.url or self.source.url


@dataclass
class PollStats:
    """Where a poll's time went (for benchmarks and the status page)."""

    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    errors: int = 0
    gone: int = 0
    bytes: int = 0
    episodes: int = 0
    fetch_seconds: float = 0.0  # sum over feeds: time on the network once a slot was free
    parse_seconds: float = 0.0  # sum over feeds: wall time of parsing (in whichever worker)
    parse_cpu_seconds: float = 0.0  # the same in CPU time of the parsing thread
    wall_seconds: float = 0.0
    parse_mode: str = ""


_SHORT_ERRORS = {
    "timeout": "timed out",
    "connect": "could not connect",
    "too-large": "feed larger than max_bytes",
    "redirect": "bad redirect",
    "url": "invalid URL",
    "network": "network error",
    "encoding": "unsupported Content-Encoding",
}


def _http_problem(status: int) -> tuple[str, str]:
    """(kind, message) for an HTTP status that carries no feed."""
    if status == 404:
        return "http", (
            "the feed was not found (HTTP 404). Check the source's url; if the feed moved, "
            "point the source at its new address."
        )
    if status in (401, 403):
        return "http", (
            f"access denied (HTTP {status}); the feed may be private or block bots. Check the "
            "URL (private feeds carry a token) or ask the publisher."
        )
    if status == 429:
        return "rate-limited", (
            "the server says we poll too often (HTTP 429); the next poll waits as asked. "
            "Consider a longer `every` for this source."
        )
    if status == 503:
        return "unavailable", (
            "the server is temporarily unavailable (HTTP 503); the next poll waits as asked."
        )
    if 500 <= status < 600:
        return "http", (
            f"the server failed (HTTP {status}); this is on the publisher's side. The next "
            "poll tries again; tell the publisher if it persists."
        )
    if status == 204:
        return "empty", "the server answered 204 No Content: there is no feed at this URL."
    return "http", (
        f"unexpected HTTP {status} instead of a feed; check the source's url. "
        "The next poll tries again."
    )


class _Poller:
    def __init__(
        self,
        fetcher: Fetcher,
        tz: tzinfo,
        progress: Callable[[PollResult], None] | None,
        parsers: ParsePool,
        stats: PollStats,
    ) -> None:
        self.fetcher = fetcher
        self.tz = tz
        self.progress = progress
        self.parsers = parsers
        self.stats = stats

    async def parse(self, job: tuple[bytes, str, str, list[str], tzinfo]) -> ParsedFeed:
        return await self.parsers.run(parse_job, job, len(job[0]))

    async def poll(self, req: PollRequest) -> PollResult:
        src = req.source
        url = req.target
        got = await self.fetcher.get(
            url,
            timeout=src.timeout.total_seconds(),
            max_bytes=int(src.max_bytes),
            etag=req.etag,
            last_modified=req.last_modified,
            allow_private_redirects=src.allow_private_redirects,
        )
        try:
            result = await self._result(req, url, got)
        except Exception as exc:  # a bug here must cost one feed, not the whole pass
            log.exception("polling %s failed", url)
            result = PollResult(url=url, status="error", error="internal error")
            result.problems.append(
                problem(
                    url,
                    "internal",
                    f"reading this feed failed inside syndicator ({type(exc).__name__}: {exc}); "
                    "please report it with the feed URL. Other feeds are not affected.",
                )
            )
        result.elapsed = got.elapsed + result.elapsed
        st = self.stats
        st.fetch_seconds += got.elapsed
        st.bytes += len(got.body)
        if result.status == "ok":
            st.ok += 1
            st.episodes += len(result.episodes)
        elif result.status == "not-modified":
            st.not_modified += 1
        elif result.status == "gone":
            st.gone += 1
        else:
            st.errors += 1
        if self.progress is not None:
            try:
                self.progress(result)
            except Exception:  # a progress display must not lose the poll's results
                log.exception("progress callback failed")
        return result

    async def _result(self, req: PollRequest, url: str, got: FetchOutcome) -> PollResult:
        # Problems are filed under the URL polled (what the caller resolves them by); where a
        # redirect led elsewhere, the message says so.
        res = PollResult(url=url, status="error", new_url=got.new_url, http_status=got.status)
        via = f" (redirected to {got.final_url})" if got.final_url != url else ""
        if got.error_kind:
            res.error = _SHORT_ERRORS.get(got.error_kind, got.error_kind)
            message = (got.error or got.error_kind) + via
            res.problems.append(problem(url, got.error_kind, message))
            return res
        status = got.status or 0
        if status == 304:
            res.status = "not-modified"
            res.etag = got.headers.get("etag") or req.etag
            res.last_modified = got.headers.get("last-modified") or req.last_modified
            return res
        if status == 410:
            res.status = "gone"
            res.error = "HTTP 410 Gone: the publisher removed the feed"
            res.problems.append(
                problem(
                    url,
                    "gone",
                    f"the server says this feed is gone for good (HTTP 410){via}; the source is "
                    "disabled. Remove it from the config, or set its url to the feed's new home.",
                )
            )
            return res
        if not 200 <= status < 300 or status == 204:
            kind, message = _http_problem(status)
            res.error = f"HTTP {status}"
            if status in (429, 503):
                res.retry_after = parse_retry_after(got.headers.get("retry-after"))
                if res.retry_after is not None:
                    message += f" Retry-After: {res.retry_after:.0f} s."
            res.problems.append(problem(url, kind, message + via))
            return res
        job = (
            got.body,
            got.final_url,
            got.headers.get("content-type", ""),
            list(req.source.categories),
            self.tz,
        )
        parsed = await self.parse(job)
        self.stats.parse_seconds += parsed.seconds
        self.stats.parse_cpu_seconds += parsed.cpu_seconds
        res.elapsed = parsed.seconds
        for p in parsed.problems:
            p.location = url
            res.problems.append(p)
        if not parsed.ok:
            res.error = parsed.error
            return res  # no validators: the next poll must fetch this body again
        res.status = "ok"
        res.episodes = parsed.episodes
        res.show = parsed.show
        res.final_url = got.final_url
        moved = parsed.show.new_feed_url if parsed.show else ""
        if moved and moved not in (url, got.final_url):
            # itunes:new-feed-url is the publisher's permanent redirect: follow it.
            res.new_url = moved
            res.problems.append(
                problem(
                    url,
                    "new-feed-url",
                    f"the feed says it moved (itunes:new-feed-url) to {moved}; the source "
                    "now polls that URL. For a [[sources]] entry, update its url in the config.",
                    severity="notice",
                )
            )
        res.etag = got.headers.get("etag")
        res.last_modified = got.headers.get("last-modified")
        return res


async def poll_feeds(
    requests: Sequence[PollRequest],
    fetch: FetchConfig,
    tz: tzinfo = UTC,
    progress: Callable[[PollResult], None] | None = None,
    *,
    parse_in: ParseIn = "auto",
    parse_workers: int | None = None,
    stats: PollStats | None = None,
    client: Any = None,
    resolver: Resolver | None = None,
    tls: ssl.SSLContext | None = None,
) -> list[PollResult]:
    """Poll every request concurrently; return one PollResult per request, in order.

    `tz` is the zone for feed dates that carry none. `progress` is called (in the event loop)
    with each result as it completes. `parse_in` picks where bodies are parsed: "thread" (one
    worker thread, keeps the loop responsive), "process" (a forkserver pool of `parse_workers`
    processes, default the cores), "inline" or "loop" (blocks the loop) or "auto" (a thread,
    plus a process pool once the pass has received more than 8 MB of feeds on a multi-core
    machine). When a pool worker dies, the rest of the pass parses in the thread. `stats`,
    when given, is filled in. `client` (an httpx.AsyncClient) replaces the internally created
    one (the caller then closes it). `resolver` replaces the DNS lookup used to tell private
    redirect targets (tests). `tls` is the TLS context to use (fetch.tls_context(); default:
    a new one).
    """
    st = stats if stats is not None else PollStats()
    started = time.perf_counter()
    parsers = ParsePool(
        "inline" if parse_in == "loop" else parse_in,
        auto_after_bytes=AUTO_PROCESS_AFTER_BYTES,
        small="thread",
        workers=parse_workers,
        name="feed",
    )
    st.feeds += len(requests)
    async with Fetcher(
        user_agent=fetch.user_agent,
        max_per_host=fetch.max_per_host,
        max_connections=fetch.max_connections,
        client=client,
        allow_private_redirects=fetch.allow_private_redirects,
        resolver=resolver,
        tls=tls,
    ) as fetcher:
        poller = _Poller(fetcher, tz, progress, parsers, st)
        try:
            results = await asyncio.gather(*(poller.poll(r) for r in requests))
        finally:
            parsers.close()
            st.parse_mode = parsers.modes
    st.wall_seconds += time.perf_counter() - started
    return list(results)


def poll_feeds_sync(
    requests: Sequence[PollRequest],
    fetch: FetchConfig,
    tz: tzinfo = UTC,
    progress: Callable[[PollResult], None] | None = None,
    **kwargs: Any,
) -> list[PollResult]:
    """poll_feeds() for synchronous callers; safe to call from inside a running event loop
    (it then runs in a helper thread with its own loop)."""

    def run() -> list[PollResult]:
        return asyncio.run(poll_feeds(requests, fetch, tz, progress, **kwargs))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(1, thread_name_prefix="poll-feeds") as pool:
        return pool.submit(run).result()


class FeedKind:
    """The `feed` source kind (entry point "syndicator.sources"): remote RSS/Atom feeds,
    polled together (one shared client, per-host caps)."""

    type = "feed"
    order = 20  # after local reads
    scheduled = True  # polled when due (every/cron, back-off, Retry-After); 410 disables

    def poll(self, jobs: Sequence[PollJob], ctx: PollContext) -> Iterator[Polled]:
        requests = [
            PollRequest(job.config, job.known.url or job.config.url, job.known.etag,
                        job.known.last_modified)
            for job in jobs
        ]  # fmt: skip
        if not requests:
            return
        ctx.progress.step(f"polling {len(requests)} feed(s)", total=len(requests))
        # $SYNDICATOR_PARSE_IN=inline keeps parsing in this process: in the thread beside
        # the event loop, which must keep fetching.
        mode = mode_from_env()
        if ctx.tls is None:  # one per pass: a worker calls this once per claimed batch
            ctx.tls = tls_context()
        results = poll_feeds_sync(
            requests, ctx.fetch, tz=ctx.tz, progress=lambda _result: ctx.progress.advance(),
            parse_in="thread" if mode == "inline" else mode, tls=ctx.tls,
        )  # fmt: skip
        for job, result in zip(jobs, results, strict=True):
            yield Polled(job, result.url, result)

"""feeds/poll.py: many feeds at once: caps per host, order, progress, process-pool parsing."""

from __future__ import annotations

import asyncio

from feedtools import src

from syndicator.config import FetchConfig
from syndicator.sources.base import PollResult
from syndicator.sources.feeds.poll import PollRequest, PollStats, poll_feeds, poll_feeds_sync

try:
    from tests.feedserver import (
        FeedServer,
        billion_laughs_xml,
        make_feed_xml,
    )
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from feedserver import (  # type: ignore[no-redef]
        FeedServer,
        billion_laughs_xml,
        make_feed_xml,
    )


def test_per_host_and_global_caps_observed_at_server(srv: FeedServer) -> None:
    for i in range(8):
        srv.add_feed(f"/slow/{i}.xml", make_feed_xml(1, seed=i), delay=0.15)
    reqs = [PollRequest(src(srv.url(f"/slow/{i}.xml"), timeout="5s")) for i in range(8)]
    reqs += [
        PollRequest(src(srv.url(f"/slow/{i}.xml", host="localhost"), timeout="5s"))
        for i in range(8)
    ]
    res = poll_feeds_sync(reqs, FetchConfig(max_per_host=2, max_connections=10))
    assert all(r.status == "ok" for r in res), [r.problems for r in res if r.status != "ok"]
    assert srv.max_in_flight == {"127.0.0.1": 2, "localhost": 2}
    assert srv.max_in_flight_total == 4  # two hosts at two each: the cap is per host

    srv.reset_log()
    res = poll_feeds_sync(reqs, FetchConfig(max_per_host=4, max_connections=3))
    assert all(r.status == "ok" for r in res)
    assert srv.max_in_flight_total == 3  # the overall cap holds across hosts


def test_mixed_batch_order_progress_and_isolation(srv: FeedServer) -> None:
    srv.add_feed("/good.xml", make_feed_xml(2))
    srv.add_status("/broken", 500)
    srv.add_feed("/bomb", billion_laughs_xml())
    srv.add_status("/gone", 410)
    paths = ["/good.xml", "/broken", "/bomb", "/gone", "/good.xml"]
    seen: list[str] = []
    reqs = [PollRequest(src(srv.url(p), name=f"s{i}")) for i, p in enumerate(paths)]
    res = poll_feeds_sync(reqs, FetchConfig(), progress=lambda r: seen.append(r.status))
    assert [r.url for r in res] == [srv.url(p) for p in paths]
    assert [r.status for r in res] == ["ok", "error", "error", "gone", "ok"]
    assert sorted(seen) == sorted(r.status for r in res)


def test_process_pool_parsing(srv: FeedServer) -> None:
    for i in range(3):
        srv.add_feed(f"/p{i}.xml", make_feed_xml(5, seed=i))
    srv.add_feed("/bomb", billion_laughs_xml())
    reqs = [PollRequest(src(srv.url(f"/p{i}.xml"), timeout="10s")) for i in range(3)]
    reqs.append(PollRequest(src(srv.url("/bomb"), timeout="10s")))
    st = PollStats()
    res = poll_feeds_sync(reqs, FetchConfig(), parse_in="process", parse_workers=2, stats=st)
    assert [len(r.episodes) for r in res] == [5, 5, 5, 0]
    assert res[0].episodes[0].guests and res[0].episodes[0].chapters
    assert res[3].problems[0].kind == "xml-entities"
    assert st.parse_mode == "process x2" and st.parse_seconds > 0 and st.ok == 3


def test_async_api_and_sync_wrapper_inside_a_loop(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    req = PollRequest(src(srv.url("/feed.xml")))

    async def main() -> tuple[list[PollResult], list[PollResult]]:
        a = await poll_feeds([req], FetchConfig())
        b = poll_feeds_sync([req], FetchConfig())  # runs in a helper thread
        return a, b

    a, b = asyncio.run(main())
    assert a[0].status == b[0].status == "ok"


def test_a_pass_loads_the_tls_context_once_for_all_its_batches(srv: FeedServer) -> None:
    """A worker polls batch after batch in one pass: the CA bundle (~20 ms of CPU) is
    loaded for the first and reused, and every batch is still polled."""
    from datetime import UTC

    from syndicator.progress import NoProgress
    from syndicator.sources.feeds.poll import FeedKind
    from syndicator.sources.kinds import PollContext, PollJob

    for i in range(4):
        srv.add_feed(f"/b/{i}.xml", make_feed_xml(1, seed=i))
    ctx = PollContext(UTC, FetchConfig(), NoProgress())
    assert ctx.tls is None
    first = list(FeedKind().poll([PollJob(src(srv.url(f"/b/{i}.xml"))) for i in (0, 1)], ctx))
    tls = ctx.tls
    assert tls is not None
    second = list(FeedKind().poll([PollJob(src(srv.url(f"/b/{i}.xml"))) for i in (2, 3)], ctx))
    assert ctx.tls is tls
    assert [p.result.status for p in first + second] == ["ok"] * 4  # type: ignore[union-attr]

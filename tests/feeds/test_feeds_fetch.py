"""feeds/fetch.py and decode.py: conditional GET, redirects, statuses, byte caps, encodings
against a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from feedtools import only_problem, poll_one, src

from syndicator.config import FetchConfig
from syndicator.retry_after import parse_retry_after
from syndicator.sources.feeds.fetch import DEFAULT_USER_AGENT
from syndicator.sources.feeds.poll import PollRequest, PollStats, poll_feeds_sync

try:
    from tests.feedserver import (
        FeedServer,
        make_feed_xml,
    )
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from feedserver import (  # type: ignore[no-redef]
        FeedServer,
        make_feed_xml,
    )


def test_conditional_get_round_trip(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(2))
    url = srv.url("/feed.xml")
    first = poll_one(url)
    assert first.status == "ok" and first.etag and first.last_modified
    sent = srv.requests("/feed.xml")[0].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent
    assert sent["user-agent"] == DEFAULT_USER_AGENT

    st = PollStats()
    [again] = poll_feeds_sync(
        [PollRequest(src(url), url, first.etag, first.last_modified)], FetchConfig(), stats=st
    )
    req = srv.requests("/feed.xml")[1]
    assert req.headers["if-none-match"] == first.etag
    assert req.headers["if-modified-since"] == first.last_modified
    assert req.status == 304
    assert again.status == "not-modified" and again.http_status == 304
    assert again.episodes == [] and again.problems == []
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    assert st.not_modified == 1 and st.parse_seconds == 0.0  # a 304 costs no parse

    # a changed feed is fetched again in full
    srv.add_feed("/feed.xml", make_feed_xml(3))
    third = poll_one(url, etag=first.etag, last_modified=first.last_modified)
    assert third.status == "ok" and len(third.episodes) == 3 and third.etag != first.etag


def test_last_modified_alone_gives_304(srv: FeedServer) -> None:
    srv.add_feed("/lm.xml", make_feed_xml(1), etag=None)
    url = srv.url("/lm.xml")
    first = poll_one(url)
    assert first.etag is None and first.last_modified
    again = poll_one(url, last_modified=first.last_modified)
    assert again.status == "not-modified"
    assert srv.requests("/lm.xml")[1].headers["if-modified-since"] == first.last_modified


def test_custom_user_agent(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    poll_one(srv.url("/feed.xml"), fetch=FetchConfig(user_agent="my-bot/2 (+https://me.example)"))
    assert srv.requests("/feed.xml")[0].headers["user-agent"] == "my-bot/2 (+https://me.example)"


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_reports_new_url(srv: FeedServer, code: int) -> None:
    srv.add_feed("/new.xml", make_feed_xml(2))
    srv.add_redirect("/old.xml", "/new.xml", code)  # relative Location
    res = poll_one(srv.url("/old.xml"))
    assert res.status == "ok" and len(res.episodes) == 2
    assert res.url == srv.url("/old.xml")
    assert res.new_url == srv.url("/new.xml")


def test_temporary_redirect_is_followed_but_not_reported(srv: FeedServer) -> None:
    srv.add_feed("/new.xml", make_feed_xml(1))
    srv.add_redirect("/tmp.xml", srv.url("/new.xml"), 302)
    res = poll_one(srv.url("/tmp.xml"))
    assert res.status == "ok" and res.new_url is None
    # a permanent hop then a temporary one: only the permanent part is a new home
    srv.add_redirect("/moved.xml", srv.url("/tmp.xml"), 301)
    res = poll_one(srv.url("/moved.xml"))
    assert res.status == "ok" and res.new_url == srv.url("/tmp.xml")


def test_problem_after_redirect_is_filed_under_the_polled_url(srv: FeedServer) -> None:
    srv.add_status("/dead", 500)
    srv.add_redirect("/feed", "/dead", 302)
    res = poll_one(srv.url("/feed"))
    p = only_problem(res)
    assert p.location == srv.url("/feed") and res.url == srv.url("/feed")
    assert f"redirected to {srv.url('/dead')}" in p.message


def test_redirect_loop_is_an_error(srv: FeedServer) -> None:
    srv.add_redirect("/a", "/b", 302)
    srv.add_redirect("/b", "/a", 302)
    res = poll_one(srv.url("/a"))
    assert res.status == "error" and only_problem(res).kind == "redirect"
    assert "loop" in only_problem(res).message


def test_gone(srv: FeedServer) -> None:
    srv.add_status("/gone.xml", 410)
    res = poll_one(srv.url("/gone.xml"))
    assert res.status == "gone" and res.http_status == 410
    p = only_problem(res)
    assert p.kind == "gone" and "disabled" in p.message and p.location == srv.url("/gone.xml")


def test_429_retry_after_seconds(srv: FeedServer) -> None:
    srv.add_status("/busy", 429, retry_after=120)
    res = poll_one(srv.url("/busy"))
    assert res.status == "error" and res.http_status == 429
    assert res.retry_after == 120
    assert only_problem(res).kind == "rate-limited"


def test_503_retry_after_http_date(srv: FeedServer) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    import email.utils

    srv.add_status("/down", 503, retry_after=email.utils.format_datetime(when, usegmt=True))
    res = poll_one(srv.url("/down"))
    assert res.status == "error" and res.http_status == 503
    assert res.retry_after is not None and 590 <= res.retry_after <= 600
    assert only_problem(res).kind == "unavailable"


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Mon, 01 Jan 2024 12:01:00 GMT", now) == 60
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e400", None),
        ("-5", None),
        ("NaN", None),
        ("inf", None),
        ("9" * 40, 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 -2359", 86400.0),
        ("Mon, 01 Jan 0001 00:00:00 +2359", 0.0),
        ("x" * 10_000, None),
    ],
)
def test_parse_retry_after_absurd_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, datetime(2024, 1, 1, 12, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("code", "words"), [(500, "HTTP 500"), (404, "not found"), (403, "denied")]
)
def test_http_errors(srv: FeedServer, code: int, words: str) -> None:
    srv.add_status("/x", code, body="<html>oops</html>", content_type="text/html")
    res = poll_one(srv.url("/x"))
    assert res.status == "error" and res.http_status == code and res.error == f"HTTP {code}"
    p = only_problem(res)
    assert p.location == srv.url("/x") and words in p.message
    assert res.etag is None and res.episodes == []


def test_hang_times_out(srv: FeedServer) -> None:
    srv.add_hang("/hang", seconds=5)
    t = time.monotonic()
    res = poll_one(srv.url("/hang"))
    took = time.monotonic() - t
    assert res.status == "error" and only_problem(res).kind == "timeout"
    assert "0.5 s" in only_problem(res).message
    assert took < 2.5


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = poll_one(f"http://127.0.0.1:{port}/feed.xml")
    assert res.status == "error" and res.http_status is None
    p = only_problem(res)
    assert p.kind == "connect" and "could not connect" in p.message


def test_not_http_url() -> None:
    res = poll_one("ftp://example.com/feed.xml")
    assert res.status == "error" and only_problem(res).kind == "url"


def test_byte_cap(srv: FeedServer) -> None:
    body = make_feed_xml(20)
    srv.add_feed("/declared", body)
    srv.add_feed("/streamed", body, chunked=True)
    for path in ("/declared", "/streamed"):
        res = poll_one(srv.url(path), max_bytes=10_000)
        assert res.status == "error", path
        assert only_problem(res).kind == "too-large"
        assert "max_bytes" in only_problem(res).message
    assert poll_one(srv.url("/streamed"), max_bytes=len(body)).status == "ok"


def test_feedserver_stops_promptly_during_a_hang() -> None:
    server = FeedServer().start()
    server.add_hang("/hang", seconds=30)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while server.count("/hang") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        t = time.monotonic()
        server.stop()
        assert time.monotonic() - t < 2
        assert conn.recv(100) == b""  # the hanging request's connection was dropped


def test_insane_validators_are_not_sent(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    res = poll_one(srv.url("/feed.xml"), etag='"x"\r\nX-Evil: 1', last_modified="Mon\n")
    assert res.status == "ok"
    sent = srv.requests("/feed.xml")[0].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent and "x-evil" not in sent


def test_compressed_feeds_are_decoded(srv: FeedServer) -> None:
    import zlib

    import zstandard

    from tests.feedserver import Route

    body = make_feed_xml(120)  # decodes to more than one 64 KiB piece

    def gz(data: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()

    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    cases = {
        "/gzip": ("gzip", gz(body)),
        "/deflate": ("deflate", zlib.compress(body)),
        "/raw-deflate": ("deflate", raw.compress(body) + raw.flush()),
        "/zstd": ("zstd", zstandard.ZstdCompressor().compress(body)),
        "/gzip-zstd": ("gzip, zstd", zstandard.ZstdCompressor().compress(gz(body))),
        "/identity": ("identity", body),
    }
    for path, (encoding, data) in cases.items():
        srv.add(path, Route(body=data, headers={"Content-Encoding": encoding}))
        res = poll_one(srv.url(path))
        assert res.status == "ok", (path, res.problems)
        assert len(res.episodes) == 120, path
    broken = gz(body)[:10] + b"\xff" * 200  # a deflate block of the reserved type 3
    srv.add("/broken", Route(body=broken, headers={"Content-Encoding": "gzip"}))
    res = poll_one(srv.url("/broken"))
    assert res.status == "error" and only_problem(res).kind == "network"
    assert "could not be decoded" in only_problem(res).message

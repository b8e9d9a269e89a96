"""Pings: a real WebSub hub / pubnotify receiver on 127.0.0.1, hit through PingChannel."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from syndicator.channels.base import PermanentError, Post, Sent, TransientError
from syndicator.channels.ping import PingChannel, notify_url, ping_kind, ping_targets
from syndicator.config import FeedConfig
from tests.fakes.base import QuietHTTPServer

FEED = "https://show.example.org/podcast/feed.xml"


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each request with the next (status, headers, body, delay) in `replies`."""

    replies: list[tuple[int, dict[str, str], bytes, float]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    url: str = ""


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A Receiver listening on 127.0.0.1 until the block ends."""
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            rec.hits.append(
                Hit(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
            )
            status, headers, payload, delay = (
                rec.replies.pop(0) if rec.replies else (204, {}, b"", 0.0)
            )
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as rec:
        yield rec


def _post(target: str, feed: str | None = FEED) -> Post:
    return Post(
        delivery_id=1,
        text=feed or "",
        idempotency_key="k",
        record_key="",
        created_at=datetime(2024, 6, 1, tzinfo=UTC),
        kind="ping",
        target=target,
        feed_url=feed,
    )


def test_ping_targets_lists_hubs_then_podcast_index() -> None:
    cfg = FeedConfig(
        hubs=["https://pubsubhubbub.appspot.com/", "https://hub.example.com/", ""],
        podcast_index=True,
    )
    assert ping_targets(cfg, FEED) == [
        "https://pubsubhubbub.appspot.com/",
        "https://hub.example.com/",
        "https://api.podcastindex.org/api/1.0/hub/pubnotify?url="
        "https%3A%2F%2Fshow.example.org%2Fpodcast%2Ffeed.xml",
    ]
    assert ping_targets(FeedConfig(), FEED) == []
    assert notify_url("http://x/pn?token=1", FEED).startswith("http://x/pn?token=1&url=https%3A")
    assert ping_kind(ping_targets(cfg, FEED)[-1], FEED) == "notify"
    assert ping_kind("https://hub.example.com/", FEED) == "websub"


def test_channel_shape() -> None:
    ch = PingChannel()
    try:
        assert (ch.name, ch.type, ch.unknown_policy) == ("directory", "ping", "idempotent")
        assert ch.reconcile(_post("https://hub.example.com/")) is None
        assert ch.limit() > 0
    finally:
        ch.close()


def test_websub_publish_reaches_the_hub(receiver: Receiver) -> None:
    ch = PingChannel(timeout=5, user_agent="syndicator-test")
    try:
        sent = ch.send(_post(receiver.url + "/hub"))
    finally:
        ch.close()
    assert isinstance(sent, Sent)
    [hit] = receiver.hits
    assert (hit.method, hit.path) == ("POST", "/hub")
    assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(hit.body.decode()) == {"hub.mode": ["publish"], "hub.url": [FEED]}
    assert hit.headers["User-Agent"] == "syndicator-test"


def test_podcast_index_pubnotify_is_a_get(receiver: Receiver) -> None:
    receiver.replies.append((200, {"Content-Type": "application/json"}, b'{"status":"true"}', 0.0))
    cfg = FeedConfig(podcast_index=True, podcast_index_url=receiver.url + "/api/1.0/hub/pubnotify")
    [target] = ping_targets(cfg, FEED)
    ch = PingChannel(timeout=5)
    try:
        ch.send(_post(target))
    finally:
        ch.close()
    [hit] = receiver.hits
    assert (hit.method, hit.path, hit.query) == ("GET", "/api/1.0/hub/pubnotify", {"url": [FEED]})


def test_hub_500_is_transient(receiver: Receiver) -> None:
    receiver.replies.append((500, {}, b"hub is sad", 0.0))
    receiver.replies.append((503, {"Retry-After": "120"}, b"", 0.0))
    ch = PingChannel(timeout=5)
    try:
        with pytest.raises(TransientError, match="HTTP 500: hub is sad") as info:
            ch.send(_post(receiver.url + "/hub"))
        assert info.value.status == 500
        with pytest.raises(TransientError) as info:
            ch.send(_post(receiver.url + "/hub"))
        assert info.value.retry_after == 120.0
    finally:
        ch.close()


def test_hub_4xx_is_permanent_with_its_message(receiver: Receiver) -> None:
    body = json.dumps({"status": "false", "description": "Feed url is not valid."}).encode()
    receiver.replies.append((400, {"Content-Type": "application/json"}, body, 0.0))
    receiver.replies.append((429, {"Retry-After": "7"}, b"slow down", 0.0))
    ch = PingChannel(timeout=5)
    try:
        with pytest.raises(PermanentError, match="HTTP 400: Feed url is not valid") as info:
            ch.send(_post(receiver.url + "/hub"))
        assert info.value.status == 400
        with pytest.raises(TransientError) as t:  # 429 is a rate limit, not a refusal
            ch.send(_post(receiver.url + "/hub"))
        assert t.value.retry_after == 7.0
    finally:
        ch.close()


def test_connection_refused_and_timeout_are_transient(receiver: Receiver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on `port` now
    receiver.replies.append((204, {}, b"", 2.0))
    ch = PingChannel(timeout=0.3)
    try:
        with pytest.raises(TransientError, match="failed"):
            ch.send(_post(f"http://127.0.0.1:{port}/hub"))
        with pytest.raises(TransientError, match="timed out"):
            ch.send(_post(receiver.url + "/slow"))
    finally:
        ch.close()


def test_bad_rows_are_permanent() -> None:
    ch = PingChannel()
    try:
        with pytest.raises(PermanentError, match="no usable target"):
            ch.send(_post(""))
        with pytest.raises(PermanentError, match="no feed URL"):
            ch.send(_post("https://hub.example.com/", feed=None))
    finally:
        ch.close()

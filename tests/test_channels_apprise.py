"""The Apprise channel against a webhook receiver (json:// and Discord's webhook API)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes import FakeWebhook, refused_url

from syndicator.channels.apprise import AppriseChannel, with_timeouts
from syndicator.channels.base import PermanentError, Post, TransientError, UnknownOutcome
from syndicator.channels.registry import make_channel
from syndicator.config import ChannelConfig

TIMEOUT = 0.5
TEXT = "New episode 🎙️: Filipe Névola on Meteor\nhttps://example.com/107"


def post(text: str = TEXT) -> Post:
    now = datetime.now(UTC)
    return Post(delivery_id=3, text=text, idempotency_key="k", record_key="", created_at=now)


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def json_channel(hook: FakeWebhook, path: str = "/announce") -> AppriseChannel:
    conf = ChannelConfig(name="hook", type="apprise", url=f"json://127.0.0.1:{hook.port}{path}")
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, AppriseChannel)
    return ch


def test_json_webhook_gets_the_text(hook: FakeWebhook) -> None:
    ch = json_channel(hook)
    assert ch.plugin.request_timeout == (TIMEOUT, TIMEOUT)  # cto/rto were added to the URL
    sent = ch.send(post())
    assert sent.remote_id is None
    [body] = hook.bodies("/announce")
    assert body["message"] == TEXT
    assert body["title"] == ""


def test_logging_is_restored_after_a_send(hook: FakeWebhook) -> None:
    lg = logging.getLogger("apprise")
    before = (lg.level, lg.propagate)
    json_channel(hook).send(post())
    assert (lg.level, lg.propagate) == before


def test_429_is_transient(hook: FakeWebhook) -> None:
    hook.fail_next(status=429, body={"message": "slow down"})
    with pytest.raises(TransientError) as info:
        json_channel(hook).send(post())
    assert info.value.status == 429
    assert hook.posts() == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_is_unknown(hook: FakeWebhook, status: int) -> None:
    hook.fail_next(status=status, store=True)  # the receiver may well have acted on it
    with pytest.raises(UnknownOutcome) as info:
        json_channel(hook).send(post())
    assert info.value.status == status


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (400, {"message": "Invalid Form Body: content too long"}, "content too long"),
        (401, {"message": "401: Unauthorized", "code": 0}, "401: Unauthorized"),
        (404, {"message": "Unknown Webhook", "code": 10015}, "Unknown Webhook"),
    ],
)
def test_4xx_is_permanent_with_the_message(hook: FakeWebhook, status, body, words) -> None:
    hook.fail_next(status=status, body=body)
    with pytest.raises(PermanentError) as info:
        json_channel(hook).send(post())
    assert info.value.status == status and words in info.value.message
    assert "json://127.0.0.1" in info.value.message  # which target


def test_status_comes_from_apprises_warning_not_from_bodies(hook: FakeWebhook) -> None:
    hook.fail_next(status=400, body={"message": "rejected: upstream error=503."})
    with pytest.raises(PermanentError) as info:
        json_channel(hook).send(post("our server said error=500. today"))
    assert info.value.status == 400 and "upstream error=503" in info.value.message


def test_timeout_is_unknown(hook: FakeWebhook) -> None:
    hook.hang_next(seconds=3, store=True)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="Read timed out"):
        json_channel(hook).send(post())
    assert time.monotonic() - started < 2.5
    assert len(hook.posts()) == 1  # received: a resend would have posted twice


def test_dropped_answer_is_unknown(hook: FakeWebhook) -> None:
    hook.drop_next()
    with pytest.raises(UnknownOutcome, match="may have received"):
        json_channel(hook).send(post())


def test_connection_refused_is_transient() -> None:
    url = refused_url("json") + "/announce"
    ch = make_channel(ChannelConfig(name="hook", type="apprise", url=url), timeout=TIMEOUT)
    with pytest.raises(TransientError, match="Connection refused"):
        ch.send(post())


def test_empty_text_is_permanent_and_sends_nothing(hook: FakeWebhook) -> None:
    with pytest.raises(PermanentError, match="empty"):
        json_channel(hook).send(post("  \n"))
    assert hook.received == []


def test_reconcile_cannot_tell(hook: FakeWebhook) -> None:
    ch = json_channel(hook)
    assert ch.unknown_policy == "none"
    with pytest.raises(UnknownOutcome, match="mark the delivery sent or not sent"):
        ch.reconcile(post())


def discord(hook: FakeWebhook, monkeypatch: pytest.MonkeyPatch) -> AppriseChannel:
    monkeypatch.setenv("SYNDICATOR_CHAT_URL", "discord://4242424242/tok-en_XYZ")
    # api_url set explicitly: the Discord plugin's discord.com host is replaced by the fake
    conf = ChannelConfig(name="chat", type="apprise", api_url=hook.url)
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, AppriseChannel) and ch.is_discord
    return ch


def test_discord_through_apprises_own_plugin(hook: FakeWebhook, monkeypatch) -> None:
    ch = discord(hook, monkeypatch)
    assert ch.limit() == 2000
    ch.send(post())
    [req] = hook.posts("/api/webhooks/4242424242/tok-en_XYZ")
    assert req.json()["content"] == TEXT


def test_discord_rate_limit_is_transient_with_reset(hook: FakeWebhook, monkeypatch) -> None:
    ch = discord(hook, monkeypatch)
    # Apprise's Discord plugin waits for the reset (plus a 10 s clock-skew allowance, cut
    # here to keep the test short) and tries once more by itself before giving up.
    ch.plugin.clock_skew = timedelta(0)
    hook.rate_limit_next(2, reset_in=1)
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.status == 429
    assert info.value.retry_after is not None and info.value.retry_after <= 2
    assert len(hook.requests("POST")) == 2 and hook.posts() == []


def test_limits(hook: FakeWebhook) -> None:
    assert json_channel(hook).limit() == 32768  # the plugin's body_maxlen
    conf = ChannelConfig(name="hook", type="apprise", url="json://127.0.0.1/x", limit=500)
    assert make_channel(conf).limit() == 500


def test_with_timeouts_keeps_the_urls_own() -> None:
    assert with_timeouts("json://h/p", 2) == "json://h/p?cto=2&rto=2"
    assert with_timeouts("json://h/p?rto=30", 2.5) == "json://h/p?rto=30&cto=2.5"
    assert with_timeouts("json://h/p?cto=1&rto=1", 2) == "json://h/p?cto=1&rto=1"


def test_a_token_in_the_url_is_masked_in_errors(hook: FakeWebhook) -> None:
    token, query_token = "tok-PATH-9f8e7d6c", "tok-QUERY-1a2b3c4d"
    url = f"json://127.0.0.1:{hook.port}/hooks/{token}?token={query_token}"
    ch = make_channel(ChannelConfig(name="hook", type="apprise", url=url), timeout=TIMEOUT)
    assert isinstance(ch, AppriseChannel)
    assert token not in ch.where and query_token not in ch.where
    # a server that echoes the path it was asked for, and a refused connection
    hook.fail_next(status=404, body={"message": f"no webhook at /hooks/{token}"})
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert "HTTP 404: no webhook at /" in info.value.message
    refused = make_channel(
        ChannelConfig(name="hook", type="apprise", url=f"{refused_url('json')}/hooks/{token}"),
        timeout=TIMEOUT,
    )
    with pytest.raises(TransientError) as info2:
        refused.send(post())
    for err in (info.value, info2.value):
        assert token not in str(err) and query_token not in str(err), str(err)


def test_a_webhook_token_is_in_no_column_output_api_or_log(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    """discord:// and json:// tokens, a failing fake: the token is shown nowhere."""
    import sqlite3
    import subprocess
    import sys

    from syndicator import config
    from tests.test_web_support import client, running

    tokens = ["DiscordTok-5e6f7a8b9c", "JsonPathTok-0d1e2f3a", "QueryTok-4b5c6d7e"]
    # the json:// endpoint echoes the path it was asked for, as some servers do
    hook.fail_next(50, status=404, body={"message": f"nothing at /hooks/{tokens[1]}"}, path="^/h")
    hook.fail_next(50, status=404, body={"message": "Unknown Webhook"}, path="^/api/webhooks/")
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "Show"
link = "https://show.example"
feed_url = "https://show.example/feed.xml"
timezone = "UTC"
[database]
url = "sqlite:///{tmp_path / "s.db"}"
[[sources]]
name = "episodes"
type = "jekyll"
path = "{site}"
[announce]
window = "3650d"
[[channels]]
name = "discord"
type = "apprise"
url = "discord://424242/{tokens[0]}"
api_url = "http://127.0.0.1:{hook.port}"
timeout = "2s"
[[channels]]
name = "hook"
type = "apprise"
url = "json://127.0.0.1:{hook.port}/hooks/{tokens[1]}?token={tokens[2]}"
timeout = "2s"
[[channels]]
name = "down"
type = "apprise"
url = "{refused_url("json")}/hooks/{tokens[1]}"
timeout = "2s"
""")
    outputs: list[str] = []
    commands = [
        ["--log-level", "debug", "run-once", "-v"],
        ["deliveries", "--json"],
        ["deliveries"],
        ["status", "--json"],
        ["status"],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs += [done.stdout, done.stderr]
    assert hook.requests("POST"), "the channels never tried"
    assert '"last_error"' in outputs[2] and "404" in outputs[2]  # failures were recorded
    with sqlite3.connect(tmp_path / "s.db") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            for row in db.execute(f'SELECT * FROM "{name}"'):
                outputs.append(" ".join(str(v) for v in row))
    settings = config.load(cfg)
    with running(settings) as server, client(server) as c:
        for path in ["/api/status", "/api/deliveries", "/api/channels", "/api/problems",
                     "/api/episodes", "/deliveries", "/channels", "/problems", "/"]:  # fmt: skip
            resp = c.get(path)
            outputs.append(resp.text)
    text = "\n".join(outputs)
    for token in tokens:
        assert token not in text, token

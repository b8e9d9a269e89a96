"""The Apprise channel against a webhook receiver (json:// and Discord's webhook API)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes import FakeWebhook, refused_url

from syndicator.channels.apprise.client import AppriseChannel, with_timeouts
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

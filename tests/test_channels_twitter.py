"""The X channel against a fake X API v2 (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes import FakeX, refused_url

from syndicator.channels.base import PermanentError, Post, Sent, TransientError, UnknownOutcome
from syndicator.channels.registry import make_channel
from syndicator.channels.tids import make_tid
from syndicator.channels.twitter.client import TwitterChannel
from syndicator.config import ChannelConfig

TIMEOUT = 0.5


def post(text: str = "Episode 107: Filipe Névola on Meteor 🎙️ https://example.com/107 #js") -> Post:
    now = datetime.now(UTC)
    return Post(
        delivery_id=1, text=text, idempotency_key="announce:1:x", record_key=make_tid(now, 1),
        created_at=now,
    )  # fmt: skip


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX() as fake:
        yield fake


def channel(fake: FakeX, monkeypatch: pytest.MonkeyPatch, **cfg: object) -> TwitterChannel:
    for k, v in fake.env("x").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig.model_validate(
        {"name": "x", "type": "twitter", "api_url": fake.url, **cfg}
    )
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, TwitterChannel)
    return ch


def test_send_posts_the_exact_text_signed_with_oauth1(x: FakeX, monkeypatch) -> None:
    p = post()
    sent = channel(x, monkeypatch).send(p)
    [req] = x.requests("POST", "^/2/tweets$")
    assert req.json() == {"text": p.text}
    auth = req.headers["authorization"]
    assert auth.startswith("OAuth ") and 'oauth_signature_method="HMAC-SHA1"' in auth
    assert [t.text for t in x.tweets] == [p.text]
    assert sent.remote_id == x.tweets[0].id
    assert sent.remote_url == f"https://x.com/i/web/status/{x.tweets[0].id}"
    named = channel(x, monkeypatch, username="https://x.com/podbot").send(post("again"))
    assert named.remote_url == f"https://x.com/podbot/status/{named.remote_id}"


def test_wrong_secret_is_permanent_401(x: FakeX, monkeypatch) -> None:
    ch = channel(x, monkeypatch)
    x.access_token_secret = "rotated"  # the fake now checks signatures against another secret
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    err = info.value
    assert err.status == 401 and "Unauthorized" in err.message
    assert "access token" in err.message  # says what to check
    assert x.tweets == []


def test_validation_errors_are_permanent_with_the_api_message(x: FakeX, monkeypatch) -> None:
    ch = channel(x, monkeypatch)
    with pytest.raises(PermanentError) as info:
        ch.send(post("x" * 281))
    assert "Your Tweet text is too long." in info.value.message
    with pytest.raises(PermanentError) as info:
        ch.send(post("   "))
    assert info.value.status == 400 and "text: must not be empty" in info.value.message


def test_429_is_transient_with_the_reset_time(x: FakeX, monkeypatch) -> None:
    ch = channel(x, monkeypatch)
    x.rate_limit_next(reset_in=120)
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.status == 429
    assert info.value.retry_after is not None and 115 <= info.value.retry_after <= 121
    x.rate_limit_next(reset_in=900, retry_after=30)  # Retry-After wins when both are there
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.retry_after == 30
    assert x.tweets == []


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_unknown(x: FakeX, monkeypatch, status: int) -> None:
    x.fail_next(status=status, body={"title": "Service Unavailable", "detail": "busy"})
    with pytest.raises(UnknownOutcome) as info:
        channel(x, monkeypatch).send(post())
    assert info.value.status == status


def test_timeout_is_unknown_and_fast(x: FakeX, monkeypatch) -> None:
    x.hang_next(seconds=3)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="timed out"):
        channel(x, monkeypatch).send(post())
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_transient(monkeypatch) -> None:
    for k, v in FakeX().env("x").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig(name="x", type="twitter", api_url=refused_url())
    with pytest.raises(TransientError, match="nothing was sent"):
        make_channel(conf, timeout=TIMEOUT).send(post())


def test_lost_answer_then_reconcile_finds_the_tweet(x: FakeX, monkeypatch) -> None:
    ch = channel(x, monkeypatch)
    p = post()
    x.drop_next()  # X stores the tweet, the answer is lost
    with pytest.raises(UnknownOutcome):
        ch.send(p)
    assert len(x.tweets) == 1
    found = ch.reconcile(p)
    assert found == Sent(
        remote_id=x.tweets[0].id, remote_url=f"https://x.com/podbot/status/{x.tweets[0].id}"
    )
    # the timeline showed the link as t.co and the text HTML-escaped: still a match
    [timeline] = x.requests("GET", r"^/2/users/\d+/tweets$")
    assert timeline.arg("start_time") and timeline.arg("max_results") == "100"
    assert len(x.tweets) == 1


def test_duplicate_content_403_counts_as_sent(x: FakeX, monkeypatch) -> None:
    p = post("Tom & Jerry <3 https://example.com/ep/9?a=1&b=2")
    earlier = x.add_tweet(p.text)
    sent = channel(x, monkeypatch).send(p)
    assert sent.remote_id == earlier.id
    assert len(x.tweets) == 1
    assert len(x.requests("POST", "^/2/tweets$")) == 1


def test_reconcile_none_when_not_posted(x: FakeX, monkeypatch) -> None:
    x.add_tweet("another announcement, much older", datetime.now(UTC) - timedelta(days=3))
    x.add_tweet("Episode 107: Filipe Névola on Meteor — a different one")
    assert channel(x, monkeypatch).reconcile(post()) is None


def test_reconcile_ignores_matches_older_than_the_row(x: FakeX, monkeypatch) -> None:
    p = post()
    x.add_tweet(p.text, datetime.now(UTC) - timedelta(days=1))  # an old post of the same text
    assert channel(x, monkeypatch).reconcile(p) is None


def test_reconcile_pages_through_the_timeline(x: FakeX, monkeypatch) -> None:
    p = post()
    x.add_tweet(p.text)
    for i in range(150):
        x.add_tweet(f"later post {i}")
    found = channel(x, monkeypatch).reconcile(p)
    assert found is not None and found.remote_id == x.tweets[0].id
    assert len(x.requests("GET", r"^/2/users/\d+/tweets$")) == 2


def test_reconcile_cannot_tell_when_the_timeline_fails(x: FakeX, monkeypatch) -> None:
    x.fail_next(status=503, path="/tweets$")
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        channel(x, monkeypatch).reconcile(post())


def test_api_url_trailing_slash(x: FakeX) -> None:
    ch = TwitterChannel(
        "x", api_key=x.api_key, api_secret=x.api_secret, access_token=x.access_token,
        access_token_secret=x.access_token_secret, api_url=x.url + "/", timeout=TIMEOUT,
    )  # fmt: skip
    ch.send(post())
    assert [r.path for r in x.received] == ["/2/tweets"]


def test_config_timeout_applies_without_an_override(x: FakeX, monkeypatch) -> None:
    for k, v in x.env("x").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig.model_validate(
        {"name": "x", "type": "twitter", "api_url": x.url, "timeout": "0.5s"}
    )
    x.hang_next(seconds=3)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome):
        make_channel(conf).send(post())
    assert time.monotonic() - started < 2.5

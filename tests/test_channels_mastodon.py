"""The Mastodon channel against mastodon-mock behind the fault-injecting proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from fakes import FakeMastodon, refused_url

from syndicator.channels.base import PermanentError, Post, TransientError, UnknownOutcome
from syndicator.channels.mastodon.client import MastodonChannel, html_to_text
from syndicator.channels.registry import make_channel
from syndicator.channels.tids import make_tid
from syndicator.config import ChannelConfig

TIMEOUT = 5.0  # generous: a loaded CI machine answers slowly; the timeout test sets its own
SHORT_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:  # mastodon-mock takes ~1 s to start: once per module
        yield fake


@pytest.fixture
def m(server: FakeMastodon) -> FakeMastodon:
    server.reset()
    return server


def post(
    text: str = "Episode 107 with Filipe Névola 🎙️ https://example.com/107", key: str = "k-107"
) -> Post:
    now = datetime.now(UTC)
    return Post(
        delivery_id=7, text=text, idempotency_key=key, record_key=make_tid(now, 7), created_at=now
    )


def channel(
    fake: FakeMastodon,
    monkeypatch: pytest.MonkeyPatch,
    timeout: float = TIMEOUT,
    **cfg: object,
) -> MastodonChannel:
    monkeypatch.setenv("SYNDICATOR_TOOT_ACCESS_TOKEN", fake.token)
    conf = ChannelConfig.model_validate(
        {"name": "toot", "type": "mastodon", "instance": fake.url, **cfg}
    )
    ch = make_channel(conf, timeout=timeout)
    assert isinstance(ch, MastodonChannel)
    return ch


def form(req) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8")).items()}


def test_send_posts_text_with_the_idempotency_key(m: FakeMastodon, monkeypatch) -> None:
    p = post()
    sent = channel(m, monkeypatch).send(p)
    [req] = m.posts()
    assert req.headers["idempotency-key"] == "k-107"
    assert req.headers["authorization"] == f"Bearer {m.token}"
    assert form(req)["status"] == p.text
    assert form(req)["visibility"] == "public"
    [status] = m.statuses()
    assert sent.remote_id == status["id"] and sent.remote_url == status["url"]
    assert html_to_text(status["content"]).startswith("Episode 107 with Filipe Névola 🎙️")


def test_same_key_twice_is_one_status(m: FakeMastodon, monkeypatch) -> None:
    ch = channel(m, monkeypatch)
    first, second = ch.send(post()), ch.send(post())
    assert first.remote_id == second.remote_id
    assert len(m.posts()) == 2 and len(m.statuses()) == 1
    ch.send(post(key="another-key"))
    assert len(m.statuses()) == 2  # a different delivery is a different status


def test_lost_answer_then_resend_with_same_key_is_one_status(m: FakeMastodon, monkeypatch) -> None:
    ch = channel(m, monkeypatch)
    m.drop_next(path="^/api/v1/statuses$")  # stored by the instance, the answer is lost
    with pytest.raises(UnknownOutcome, match="may have been received"):
        ch.send(post())
    assert len(m.statuses()) == 1
    again = ch.send(post())
    assert [s["id"] for s in m.statuses()] == [again.remote_id]


def test_reconcile_reads_the_timeline(m: FakeMastodon, monkeypatch) -> None:
    ch = channel(m, monkeypatch)
    p = post("Tom & Jerry <3 #podcast https://example.com/ep/9?a=1&b=2")
    assert ch.reconcile(p) is None
    m.drop_next(path="^/api/v1/statuses$")
    with pytest.raises(UnknownOutcome):
        ch.send(p)
    found = ch.reconcile(p)
    assert found is not None and found.remote_id == m.statuses()[0]["id"]


def test_429_is_transient_with_the_reset_time(m: FakeMastodon, monkeypatch) -> None:
    ch = channel(m, monkeypatch)
    m.rate_limit_next(reset_in=300)
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert time.monotonic() - started < 2  # raised, not slept on
    assert info.value.status == 429
    assert info.value.retry_after is not None and 295 <= info.value.retry_after <= 301
    m.rate_limit_next(reset_in=300, retry_after=42)
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.retry_after == 42
    assert m.statuses() == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_unknown(m: FakeMastodon, monkeypatch, status: int) -> None:
    m.fail_next(status=status, body={"error": "boom"}, path="^/api/v1/statuses$")
    with pytest.raises(UnknownOutcome) as info:
        channel(m, monkeypatch).send(post())
    assert info.value.status == status


def test_timeout_is_unknown(m: FakeMastodon, monkeypatch) -> None:
    m.hang_next(seconds=3, path="^/api/v1/statuses$")
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="timed out"):
        channel(m, monkeypatch, timeout=SHORT_TIMEOUT).send(post())
    assert time.monotonic() - started < 2.5


def test_bad_token_is_permanent_with_the_message(m: FakeMastodon, monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATOR_TOOT_ACCESS_TOKEN", "revoked")
    ch = make_channel(ChannelConfig(name="toot", type="mastodon", instance=m.url), timeout=TIMEOUT)
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert info.value.status == 401
    assert "This method requires an authenticated user" in info.value.message
    assert "access token" in info.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "Text can't be blank"), ("x" * 501, "Text is too long (maximum is 500 characters)")],
)
def test_422_is_permanent_with_the_message(m: FakeMastodon, monkeypatch, text, words) -> None:
    with pytest.raises(PermanentError) as info:
        channel(m, monkeypatch).send(post(text))
    assert info.value.status == 422 and words in info.value.message


def test_403_is_permanent(m: FakeMastodon, monkeypatch) -> None:
    m.fail_next(status=403, body={"error": "This action is outside the authorized scopes"})
    with pytest.raises(PermanentError, match="outside the authorized scopes"):
        channel(m, monkeypatch).send(post())


def test_connection_refused_is_transient(monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATOR_TOOT_ACCESS_TOKEN", "t")
    ch = make_channel(
        ChannelConfig(name="toot", type="mastodon", instance=refused_url()), timeout=TIMEOUT
    )
    with pytest.raises(TransientError, match="nothing was sent"):
        ch.send(post())


def test_limit_reads_the_instance_once(m: FakeMastodon, monkeypatch) -> None:
    m.max_characters = 1000
    ch = channel(m, monkeypatch)
    assert ch.limit() == 1000
    assert ch.limit() == 1000
    assert len(m.requests("GET", "^/api/v2/instance")) == 1


def test_limit_falls_back_to_v1_then_500(m: FakeMastodon, monkeypatch) -> None:
    m.max_characters = 5000
    m.fail_next(status=404, body={"error": "Record not found"}, path="^/api/v2/instance")
    assert channel(m, monkeypatch).limit() == 5000
    assert len(m.requests("GET", "^/api/v1/instance")) == 1
    m.fail_next(2, status=500, path="instance")
    assert channel(m, monkeypatch).limit() == 500


def test_limit_config_wins_without_a_request(m: FakeMastodon, monkeypatch) -> None:
    assert channel(m, monkeypatch, limit=11000).limit() == 11000
    assert m.requests("GET") == []

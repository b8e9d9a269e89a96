"""The Bluesky channel against a fake PDS (real HTTP, XRPC error shapes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fakes import FakePDS, refused_url

from syndicator.channels.base import PermanentError, Post, Sent, TransientError, UnknownOutcome
from syndicator.channels.bluesky.client import BlueskyChannel, created_at
from syndicator.channels.registry import make_channel
from syndicator.channels.tids import make_tid
from syndicator.config import ChannelConfig

TIMEOUT = 0.5
FROZEN = datetime(2024, 3, 9, 17, 5, 1, 234567, tzinfo=UTC)
TEXT = "🎙️ Ep 107: Filipe Névola & @guest.bsky.social talk #JavaScript https://example.com/107 👋"


def post(text: str = TEXT, clock: int = 42, **kw: object) -> Post:
    return Post(
        delivery_id=1, text=text, idempotency_key="k", record_key=make_tid(FROZEN, clock),
        created_at=FROZEN, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def pds() -> Iterator[FakePDS]:
    with FakePDS() as fake:
        fake.handles["guest.bsky.social"] = "did:plc:guest0000000000000000000"
        yield fake


def channel(fake: FakePDS, monkeypatch: pytest.MonkeyPatch) -> BlueskyChannel:
    for k, v in fake.env("sky").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig(name="sky", type="bluesky", handle=fake.handle, service=fake.url)
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, BlueskyChannel)
    return ch


def span(text: str, part: str) -> dict[str, int]:
    raw, needle = text.encode("utf-8"), part.encode("utf-8")
    start = raw.index(needle)
    return {"byteStart": start, "byteEnd": start + len(needle)}


def test_put_record_with_frozen_key_time_facets_and_card(pds: FakePDS, monkeypatch) -> None:
    p = post(url="https://example.com/107", title="Ep 107", description="Meteor, then and now")
    sent = channel(pds, monkeypatch).send(p)
    [req] = pds.requests("POST", "putRecord$")
    body = req.json()
    assert body["repo"] == pds.did
    assert body["collection"] == "app.bsky.feed.post"
    assert body["rkey"] == p.record_key == make_tid(FROZEN, 42)
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == TEXT
    assert record["createdAt"] == "2024-03-09T17:05:01.234Z"
    facets = {
        (f["features"][0]["$type"].split("#")[1], f["index"]["byteStart"], f["index"]["byteEnd"]): f
        for f in record["facets"]
    }
    # byte offsets, not character offsets: the emoji and "é" come first
    mention = span(TEXT, "@guest.bsky.social")
    tag = span(TEXT, "#JavaScript")
    link = span(TEXT, "https://example.com/107")
    assert mention["byteStart"] != TEXT.index("@")  # the test means something
    assert set(facets) == {
        ("mention", mention["byteStart"], mention["byteEnd"]),
        ("tag", tag["byteStart"], tag["byteEnd"]),
        ("link", link["byteStart"], link["byteEnd"]),
    }
    assert (
        facets[("mention", *mention.values())]["features"][0]["did"]
        == pds.handles["guest.bsky.social"]
    )
    assert facets[("tag", *tag.values())]["features"][0]["tag"] == "JavaScript"
    assert facets[("link", *link.values())]["features"][0]["uri"] == "https://example.com/107"
    embed = record["embed"]
    assert embed["$type"] == "app.bsky.embed.external"
    assert {k: embed["external"][k] for k in ("uri", "title", "description")} == {
        "uri": "https://example.com/107",
        "title": "Ep 107",
        "description": "Meteor, then and now",
    }
    assert sent == Sent(
        remote_id=f"at://{pds.did}/app.bsky.feed.post/{p.record_key}",
        remote_url=f"https://bsky.app/profile/{pds.handle}/post/{p.record_key}",
        ref={"cid": pds.cids[("app.bsky.feed.post", p.record_key)]},  # for a reply to it
    )
    assert pds.posts() == [record]


def test_unresolvable_mention_is_plain_text(pds: FakePDS, monkeypatch) -> None:
    text = "Thanks @nobody.example.com and @guest.bsky.social"
    channel(pds, monkeypatch).send(post(text))
    [record] = pds.posts()
    assert [f["features"][0]["did"] for f in record["facets"]] == [pds.handles["guest.bsky.social"]]
    assert [r.arg("handle") for r in pds.requests("GET", "resolveHandle$")] == [
        "nobody.example.com",
        "guest.bsky.social",
    ]


def test_resolve_failure_postpones_and_writes_nothing(pds: FakePDS, monkeypatch) -> None:
    pds.fail_next(status=502, path="resolveHandle$")
    with pytest.raises(TransientError, match=r"resolving @guest\.bsky\.social"):
        channel(pds, monkeypatch).send(post())
    assert pds.requests("POST", "putRecord$") == []


def test_retry_writes_the_identical_record_once(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    p = post(url="https://example.com/107", title="Ep 107")
    first, second = ch.send(p), ch.send(p)
    assert first == second
    assert len(pds.requests("POST", "putRecord$")) == 2
    assert len(pds.writes) == 1 and pds.overwrites == []
    # a fresh process builds the very same record too
    assert channel(pds, monkeypatch).send(p) == first
    assert len(pds.writes) == 1 and pds.overwrites == []


def test_session_is_reused_and_relogin_after_revocation(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    ch.send(post(clock=1))
    ch.send(post("second", clock=2))
    assert pds.sessions_created == 1
    pds.revoke_sessions()  # e.g. the app password's sessions were revoked
    ch.send(post("third", clock=3))
    assert pds.sessions_created == 2
    assert len(pds.posts()) == 3


def test_lost_answer_then_reconcile_and_resend_are_no_ops(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    p = post()
    pds.drop_next(path="putRecord$")
    with pytest.raises(UnknownOutcome, match="may have been received"):
        ch.send(p)
    found = ch.reconcile(p)
    assert (
        found is not None and found.remote_id == f"at://{pds.did}/app.bsky.feed.post/{p.record_key}"
    )
    ch.send(p)
    assert len(pds.writes) == 1 and pds.overwrites == []


def test_reconcile_not_found_is_none(pds: FakePDS, monkeypatch) -> None:
    assert channel(pds, monkeypatch).reconcile(post()) is None
    [req] = pds.requests("GET", "getRecord$")
    assert req.arg("rkey") == make_tid(FROZEN, 42) and req.arg("repo") == pds.did


def test_reconcile_cannot_tell_on_5xx(pds: FakePDS, monkeypatch) -> None:
    pds.fail_next(status=500, body={"error": "InternalServerError"}, path="getRecord$")
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        channel(pds, monkeypatch).reconcile(post())


def test_429_is_transient_with_the_reset_time(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    pds.rate_limit_next(reset_in=600, path="putRecord$")
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.status == 429
    assert info.value.retry_after is not None and 595 <= info.value.retry_after <= 601
    pds.rate_limit_next(reset_in=600, retry_after=5, path="putRecord$")
    with pytest.raises(TransientError) as info:
        ch.send(post())
    assert info.value.retry_after == 5
    assert pds.posts() == []


def test_login_rate_limit_is_transient(pds: FakePDS, monkeypatch) -> None:
    pds.rate_limit_next(reset_in=60, path="createSession$")
    with pytest.raises(TransientError, match="logging in"):
        channel(pds, monkeypatch).send(post())


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_on_write_is_unknown(pds: FakePDS, monkeypatch, status: int) -> None:
    pds.fail_next(status=status, body={"error": "InternalServerError"}, path="putRecord$")
    with pytest.raises(UnknownOutcome) as info:
        channel(pds, monkeypatch).send(post())
    assert info.value.status == status


def test_5xx_on_login_is_transient(pds: FakePDS, monkeypatch) -> None:
    pds.fail_next(status=500, path="createSession$")
    with pytest.raises(TransientError):
        channel(pds, monkeypatch).send(post())


def test_timeout_on_write_is_unknown(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    pds.hang_next(seconds=3, path="putRecord$")
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="timed out"):
        ch.send(post())
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_transient(monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATOR_SKY_APP_PASSWORD", "p")
    conf = ChannelConfig(
        name="sky", type="bluesky", handle="pod.example.com", service=refused_url()
    )
    with pytest.raises(TransientError, match="nothing was posted"):
        make_channel(conf, timeout=TIMEOUT).send(post())


def test_wrong_password_is_permanent_and_names_the_variable(pds: FakePDS, monkeypatch) -> None:
    ch = channel(pds, monkeypatch)
    pds.password = "changed"
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert info.value.status == 401
    assert "Invalid identifier or password" in info.value.message
    assert "SYNDICATOR_SKY_APP_PASSWORD" in info.value.message


def test_invalid_record_is_permanent_with_the_message(pds: FakePDS, monkeypatch) -> None:
    with pytest.raises(PermanentError) as info:
        channel(pds, monkeypatch).send(post("x" * 301))
    assert info.value.status == 400
    assert "InvalidRecord" in info.value.message and "300 graphemes" in info.value.message


def test_damaged_record_key_is_permanent(pds: FakePDS, monkeypatch) -> None:
    bad = Post(delivery_id=1, text="hi", idempotency_key="k", record_key="", created_at=FROZEN)
    with pytest.raises(PermanentError, match="not a valid TID"):
        channel(pds, monkeypatch).send(bad)
    assert pds.received == []


def test_created_at_format() -> None:
    assert created_at(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05.000Z"
    assert (
        created_at(datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2024-01-02T03:04:05.999Z"
    )

"""Absurd Retry-After values from the services a pass talks to: a channel and the feed's
ping hubs. Each is ignored or clamped to a day; the pass goes on and the retry it plans is
bounded. (Feeds that answer absurd values: tests/hostile/test_hostile_fetch.py.)

A real pass into a real store; the channel is mastodon-mock (tests/fakes/mastodon.py) and
the hub a fake on 127.0.0.1 (tests/test_publish_pipeline.py's FakeHub).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from syndicator.channels.base import TransientError
from syndicator.channels.ping import PingChannel
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.retry_after import MAX_RETRY_AFTER
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.fakes import FakeMastodon
from tests.test_channels_mastodon import channel as toot_channel
from tests.test_channels_mastodon import post as toot_post
from tests.test_directory_ping import Receiver, _post, serve_receiver
from tests.test_publish_pipeline import NOW, FakeHub, _settings


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as h:
        yield h


@pytest.fixture
def m() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as rec:
        yield rec


def test_a_channel_and_a_hub_asking_absurd_waits_get_a_bounded_retry(
    tmp_path: Path, sqlite_url: str, site: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeMastodon() as toot:
        monkeypatch.setenv("SYNDICATOR_TOOT_ACCESS_TOKEN", toot.token)
        settings = _settings(tmp_path, sqlite_url, site, hub)
        settings.channels.append(
            ChannelConfig.model_validate(
                {"name": "toot", "type": "mastodon", "instance": toot.url, "timeout": "2s"}
            )
        )
        # the first toot and both pings are told to wait forever; the rest must go on
        slow = {"Retry-After": "1e400"}
        toot.fail_next(status=429, body={"error": "slow"}, headers=slow, method="POST")
        hub.fail_next(status=429, headers=slow, path="^/hub")
        far = {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}
        hub.fail_next(status=503, headers=far, path="^/pubnotify")
        report = run_once(settings, now=NOW)
        assert len(toot.statuses()) == 1  # the second episode was announced all the same
    assert (report.sends.sent, report.sends.retrying, report.sends.failed) == (1, 3, 0)
    assert report.feeds[0].changed and report.feeds[0].error is None
    with session(upgrade(sqlite_url)) as s:
        rows = s.exec(select(Delivery).where(Delivery.state == "retrying")).all()
    waits = {
        (r.kind, (r.target or "").split("?")[0].rsplit("/", 1)[-1]): r.next_attempt_at
        - r.updated_at  # type: ignore[operator]
        for r in rows
    }
    # "1e400" is no number of seconds: ignored, the usual backoff (retry_base 1s) applies;
    # a date in the year 9999 is clamped to a day
    assert waits == {
        ("announce", ""): timedelta(seconds=1),
        ("ping", "hub"): timedelta(seconds=1),
        ("ping", "pubnotify"): timedelta(seconds=MAX_RETRY_AFTER),
    }


def test_an_absurd_retry_after_is_clamped(m: FakeMastodon, monkeypatch) -> None:
    ch = toot_channel(m, monkeypatch)
    for value in ("Fri, 31 Dec 9999 23:59:59 GMT", "9" * 40):
        m.fail_next(status=429, body={"error": "slow"}, headers={"Retry-After": value})
        with pytest.raises(TransientError) as info:
            ch.send(toot_post())
        assert info.value.retry_after == MAX_RETRY_AFTER, value
    assert m.statuses() == []


def test_absurd_retry_after_from_a_hub_is_clamped_or_ignored(receiver: Receiver) -> None:
    cases = [
        ("1e400", None),
        ("-5", None),
        ("NaN", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("9" * 40, MAX_RETRY_AFTER),
    ]
    for value, _ in cases:
        receiver.replies.append((503, {"Retry-After": value}, b"", 0.0))
    ch = PingChannel(timeout=5)
    try:
        for value, expected in cases:
            with pytest.raises(TransientError) as info:
                ch.send(_post(receiver.url + "/hub"))
            assert info.value.retry_after == expected, value
    finally:
        ch.close()

"""Podping and podcast:medium (issue 13): one podping per changed build, retried after a
500, against a fake podping.cloud on 127.0.0.1; the feed declares podping and its medium."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlmodel import select

from syndicator import config
from syndicator.checks import check_all
from syndicator.config import ConfigError
from syndicator.directory.extensions import PODCAST_NS
from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings
from tests.fakes.podping import FakePodping
from tests.test_directory import _partytime

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FEED_URL = "https://show.example/feed.xml"
PC = f"{{{PODCAST_NS}}}"


@pytest.fixture
def podping(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePodping]:
    with FakePodping(token="pp-publisher-secret") as pp:
        for k, v in pp.env().items():
            monkeypatch.setenv(k, v)
        yield pp


def _settings(tmp_path: Path, url: str, site: Path, pp: FakePodping, **feed: Any):  # type: ignore[no-untyped-def]
    s = make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}",
                  "enclosure_url": "{site.mp3_url_path}{number}.mp3",
                  "guid": "{site.url}/podcast/{slug}"}],
        feeds=[{"name": "main", "path": "public/feed.xml", "podping": True,
                "podping_url": pp.url + "/", **feed}],
        announce={"retry_base": "1s"},
    )  # fmt: skip
    s.podcast.description = "A show."
    return s


def _pings(url: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        return list(s.exec(select(Delivery).where(Delivery.kind == "ping")).all())


def test_one_podping_per_changed_build(
    tmp_path: Path, db_url: str, site: Path, podping: FakePodping
) -> None:
    settings = _settings(tmp_path, db_url, site, podping, medium="music")
    run_once(settings, now=NOW)
    [ping] = podping.requests("GET")
    assert ping.path == "/"
    assert ping.query == {"url": [FEED_URL], "reason": ["update"], "medium": ["music"]}
    assert ping.headers["authorization"] == "pp-publisher-secret"
    [row] = _pings(db_url)
    assert row.state == "sent" and row.channel == "directory"
    # the token is sent, never stored
    assert all("pp-publisher-secret" not in str(v) for v in row.model_dump().values())

    feed = tmp_path / "public" / "feed.xml"
    xml = feed.read_bytes()
    channel = etree.fromstring(xml)[0]
    assert [dict(e.attrib) for e in channel.findall(f"{PC}podping")] == [{"usesPodping": "true"}]
    assert channel.findtext(f"{PC}medium") == "music"
    assert _partytime(xml)["medium"] == "music"

    run_once(settings, now=NOW + timedelta(minutes=5))  # nothing changed: no ping
    assert len(podping.requests("GET")) == 1
    post = site / "_posts/podcast/2026-11-24-6-billing-for-a-saas-without-losing-sleep.md"
    post.write_text(post.read_text().replace('Without Losing Sleep"', 'Without Losing Any Sleep"'))
    run_once(settings, now=NOW + timedelta(minutes=10))  # changed: exactly one more
    assert len(podping.pings()) == 2
    assert [p.state for p in _pings(db_url)] == ["sent", "sent"]


def test_a_podping_refused_with_500_is_retried_later(
    tmp_path: Path, sqlite_url: str, site: Path, podping: FakePodping
) -> None:
    podping.fail_next(status=500, body="Internal Server Error", method="GET")
    settings = _settings(tmp_path, sqlite_url, site, podping)
    report = run_once(settings, now=NOW)
    assert podping.pings() == []
    [row] = _pings(sqlite_url)
    assert row.state == "retrying"  # visible, not lost
    assert "podping" in (row.last_error or "") and "HTTP 500" in (row.last_error or "")
    assert report.sends.retrying == 1
    run_once(settings, now=NOW + timedelta(minutes=5))
    [ping] = podping.pings()
    assert ping.arg("medium") == "podcast" and ping.arg("reason") == "update"
    [row] = _pings(sqlite_url)
    assert row.state == "sent" and row.attempts == 2


def test_no_token_fails_the_row_with_what_to_do(
    tmp_path: Path, sqlite_url: str, site: Path, podping: FakePodping,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("SYNDICATOR_PODPING_TOKEN")
    settings = _settings(tmp_path, sqlite_url, site, podping)
    run_once(settings, now=NOW)
    assert podping.requests() == []  # nothing sent without the token
    [row] = _pings(sqlite_url)
    assert row.state == "failed"
    assert "SYNDICATOR_PODPING_TOKEN" in (row.last_error or "")
    assert "delivery retry" in (row.last_error or "")
    # `syndicator check` says so before any pass
    problems, _ = check_all(settings)
    [p] = [p for p in problems if "PODPING" in p.message]
    assert p.location == "feed main" and "export SYNDICATOR_PODPING_TOKEN=" in p.message
    monkeypatch.setenv("SYNDICATOR_PODPING_TOKEN", podping.token)
    assert not [p for p in check_all(settings)[0] if "PODPING" in p.message]


def test_podping_and_medium_config(tmp_path: Path) -> None:
    def load(feed: str) -> config.Settings:
        cfg = tmp_path / "s.toml"
        cfg.write_text('[[feeds]]\nname = "main"\n' + feed)
        return config.load(cfg)

    feed = load("").feeds[0]
    assert (feed.podping, feed.podping_url, feed.medium) == (
        False, "https://podping.cloud/", None,
    )  # fmt: skip
    assert load('medium = "audiobook"\npodping = true\n').feeds[0].medium == "audiobook"
    with pytest.raises(ConfigError) as err:
        load('medium = "podcasts"\n')
    msg = str(err.value)
    assert "unknown medium 'podcasts'" in msg and "podcast, music, video" in msg
    assert "s.toml:3" in msg  # the line of the bad key
    with pytest.raises(ConfigError) as err:
        load('podping_url = "podping.cloud"\n')
    assert "must be an http(s) URL" in str(err.value)


def test_podping_comes_after_the_other_pings_and_keeps_the_endpoints_query() -> None:
    from syndicator.channels.ping import ping_kind, ping_targets
    from syndicator.config import FeedConfig

    feed = FeedConfig(
        hubs=["https://hub.example/"], podcast_index=True, podping=True,
        podping_url="https://pp.example/ping?v=1", medium="video",
    )  # fmt: skip
    targets = ping_targets(feed, FEED_URL)
    assert targets[0] == "https://hub.example/"
    assert targets[1].startswith("https://api.podcastindex.org/")
    assert targets[2] == (
        "https://pp.example/ping?v=1&url=https%3A%2F%2Fshow.example%2Ffeed.xml"
        "&reason=update&medium=video"
    )
    assert ping_kind(targets[2], FEED_URL) == "notify"  # a GET, as podping.cloud wants
    assert len(ping_targets(FeedConfig(podping=False), FEED_URL)) == 0

"""The announcement goes back into the feed (issue 13): podcast:socialInteract.

A pass sends the episode's posts to fake X, Mastodon and Bluesky servers on 127.0.0.1,
rebuilds the feed and pings the hub in the same pass; the feed's items carry each
channel's first post as a socialInteract, read back by podcast-partytime (the Podcast
Index crawler's parser, run with node) and by feedparser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from sqlmodel import select

from syndicator import config
from syndicator.config import ConfigError
from syndicator.directory.extensions import PODCAST_NS
from syndicator.pipeline import run_once
from syndicator.plugins import kind
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings
from tests.fakes.base import FakeServer, Received, Reply
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.pds import FakePDS
from tests.fakes.xapi import FakeX
from tests.test_directory import _partytime

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PC = f"{{{PODCAST_NS}}}"


class FakeHub(FakeServer):
    """A WebSub hub: POST publish -> 204."""

    def app(self, req: Received) -> Reply:
        if req.method == "POST" and req.path == "/hub":
            return Reply(204)
        return Reply(404, {"error": "no such endpoint"})


@dataclass
class Net:
    x: FakeX
    masto: FakeMastodon
    pds: FakePDS
    hub: FakeHub

    def channels(self) -> list[dict[str, Any]]:
        return [
            {"name": "x", "type": "twitter", "api_url": self.x.url, "timeout": "2s"},
            {"name": "masto", "type": "mastodon", "instance": self.masto.url, "timeout": "2s"},
            {"name": "bsky", "type": "bluesky", "service": self.pds.url,
             "handle": self.pds.handle, "timeout": "2s"},
        ]  # fmt: skip


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    with FakeX() as x, FakeMastodon() as m, FakePDS() as p, FakeHub() as h:
        env = {**x.env("x"), "SYNDICATOR_MASTO_ACCESS_TOKEN": m.token, **p.env("bsky")}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield Net(x, m, p, h)


def _settings(tmp_path: Path, url: str, site: Path, net: Net, **feed: Any) -> config.Settings:
    s = make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}",
                  "enclosure_url": "{site.mp3_url_path}{number}.mp3",
                  "guid": "{site.url}/podcast/{slug}"}],
        channels=net.channels(),
        feeds=[{"name": "main", "path": "public/feed.xml",
                "hubs": [f"http://127.0.0.1:{net.hub.port}/hub"], **feed}],
        announce={"window": "14d", "retry_base": "1s", "lease": "1s"},
    )  # fmt: skip
    s.podcast.description = "A show."
    return s


def _sent(url: str) -> dict[tuple[int, str], Delivery]:
    with session(upgrade(url)) as s:
        rows = s.exec(select(Delivery).where(Delivery.state == "sent")).all()
        return {(d.episode_id or 0, d.channel): d for d in rows if d.kind == "announce"}


def _interacts(xml: bytes) -> dict[str, list[dict[str, str]]]:
    """guid -> the item's socialInteract attributes, in document order."""
    root = etree.fromstring(xml)
    out: dict[str, list[dict[str, str]]] = {}
    for item in root.iter("item"):
        tags = [dict(el.attrib) for el in item.iter(f"{PC}socialInteract")]
        out[item.findtext("guid") or ""] = tags
    return out


def test_the_first_posts_go_back_into_the_feed_in_the_same_pass(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, db_url, site, net, social_interact=["masto", "bsky", "x"])
    report = run_once(settings, now=NOW)
    assert report.sends.sent == 2 * 3 + 1, report.sends.events  # 2 episodes x 3, the hub ping
    feed = tmp_path / "public" / "feed.xml"
    xml = feed.read_bytes()
    sent = _sent(db_url)
    announced = {ep for ep, _ in sent}
    assert len(announced) == 2
    with session(upgrade(db_url)) as s:
        from syndicator.store.models import Episode

        guids = {e.id: e.guid for e in s.exec(select(Episode)).all()}
    tags = _interacts(xml)
    for ep in announced:
        masto, bsky, x = sent[(ep, "masto")], sent[(ep, "bsky")], sent[(ep, "x")]
        assert masto.remote_url and bsky.remote_id and x.remote_url
        got = tags[guids[ep]]
        assert [t["protocol"] for t in got] == ["activitypub", "atproto", "twitter"]
        assert [t["priority"] for t in got] == ["1", "2", "3"]
        assert got[0]["uri"] == masto.remote_url
        m = re.fullmatch(r"(https?://([^/]+))/@alice/\w+", masto.remote_url)
        assert m, masto.remote_url  # the instance's own status page
        assert got[0]["accountId"] == f"@alice@{m.group(2)}"
        assert got[0]["accountUrl"] == f"{m.group(1)}/@alice"
        assert got[1]["uri"] == bsky.remote_id and got[1]["uri"].startswith("at://did:plc:")
        assert got[1]["accountId"] == net.pds.did
        assert got[1]["accountUrl"] == f"https://bsky.app/profile/{net.pds.handle}"
        # the X channel learns no user name when it posts: the tweet's URL names no account
        assert x.remote_url == f"https://x.com/i/web/status/{x.remote_id}"
        assert got[2] == {"priority": "3", "protocol": "twitter", "uri": x.remote_url}
    # the episodes nobody announced (backlog) carry none
    assert sum(1 for t in tags.values() if not t) == len(tags) - 2
    # one build, one ping: the feed was built after the posts were sent, not before
    assert len(net.hub.requests("POST", "/hub")) == 1

    # podcast-partytime (what the Podcast Index crawls with) reads them as comments
    items = {i["guid"]: i for i in _partytime(xml)["items"]}
    for ep in announced:
        social = items[guids[ep]]["podcastSocialInteraction"]
        assert [(s["platform"], s["url"], s["priority"]) for s in social] == [
            ("activitypub", sent[(ep, "masto")].remote_url, 1),
            ("atproto", sent[(ep, "bsky")].remote_id, 2),
            ("twitter", sent[(ep, "x")].remote_url, 3),
        ]
        assert social[1]["id"] == net.pds.did
    # feedparser (Python apps) reads the feed without complaint and sees the tags
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.get("bozo_exception")
    ep = min(announced)
    entry = next(e for e in parsed.entries if e.id == guids[ep])
    # feedparser keeps one element of an unknown namespace per entry: the last one's attributes
    assert entry["podcast_socialinteract"]["uri"] == sent[(ep, "x")].remote_url
    assert entry["podcast_socialinteract"]["protocol"] == "twitter"

    # a second pass changes nothing: no rebuild, no ping
    mtime = feed.stat().st_mtime_ns
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert feed.stat().st_mtime_ns == mtime
    assert len(net.hub.requests("POST", "/hub")) == 1


def test_a_later_reshare_never_changes_the_uri(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)  # default: every capable channel
    run_once(settings, now=NOW)
    feed = tmp_path / "public" / "feed.xml"
    before = _interacts(feed.read_bytes())
    first = next(d for (ep, ch), d in _sent(sqlite_url).items() if ch == "masto")
    # a reshare of the same episode on the same channel, sent later (evergreen)
    with session(upgrade(sqlite_url), write=True) as s:
        s.add(
            Delivery(
                key=f"reshare:{first.episode_id}:masto:1", kind="reshare",
                episode_id=first.episode_id, channel="masto", state="sent",
                remote_id="999", remote_url="https://mock.local/@alice/999",
                planned_at=NOW + timedelta(days=30), updated_at=NOW + timedelta(days=30),
                sent_at=NOW + timedelta(days=30),
            )
        )  # fmt: skip
    run_once(settings, now=NOW + timedelta(minutes=5))
    after = _interacts(feed.read_bytes())
    assert after == before
    uris = [t["uri"] for tags in after.values() for t in tags]
    assert first.remote_url in uris and "https://mock.local/@alice/999" not in uris
    # the default is every channel whose kind can host comments, in config order
    assert [t["protocol"] for t in next(t for t in after.values() if t)] == [
        "twitter", "activitypub", "atproto",
    ]  # fmt: skip


def test_a_hostile_post_url_is_left_out_and_the_feed_still_written(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net, social_interact=["masto", "bsky"])
    run_once(settings, now=NOW)
    feed = tmp_path / "public" / "feed.xml"
    ep = min(ep for ep, _ in _sent(sqlite_url))
    with session(upgrade(sqlite_url), write=True) as s:  # what a hostile instance answered
        row = s.exec(
            select(Delivery).where(Delivery.episode_id == ep, Delivery.channel == "masto")
        ).one()
        row.remote_url = "javascript:alert(1)//@alice/1"
        s.add(row)
    run_once(settings, now=NOW + timedelta(minutes=5))
    xml = feed.read_bytes()
    assert b"javascript:" not in xml
    with session(upgrade(sqlite_url)) as s:
        from syndicator.store.models import Episode

        guid = s.get(Episode, ep).guid  # type: ignore[union-attr]
    assert [t["protocol"] for t in _interacts(xml)[guid]] == ["atproto"]  # the rest stays


def test_disabled_writes_protocol_disabled_and_no_threads(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net, social_interact=False)
    assert settings.feeds[0].social_interact == "disabled"
    run_once(settings, now=NOW)
    xml = (tmp_path / "public" / "feed.xml").read_bytes()
    channel = etree.fromstring(xml)[0]
    tags = channel.findall(f"{PC}socialInteract")
    assert [dict(t.attrib) for t in tags] == [{"protocol": "disabled"}]
    assert all(not t for t in _interacts(xml).values())
    assert len(_sent(sqlite_url)) == 6  # the posts still went out


# ------------------------------------------------------------------------ the kinds


def test_each_kind_says_what_its_post_is() -> None:
    masto, bsky, x = kind("mastodon"), kind("bluesky"), kind("twitter")
    assert (masto.interact_protocol, bsky.interact_protocol, x.interact_protocol) == (
        "activitypub", "atproto", "twitter",
    )  # fmt: skip
    assert kind("apprise").interact_protocol is None
    assert kind("apprise").social_interact(None, "1", "https://chat.example/1") is None

    assert masto.social_interact(None, "1", "https://podcastindex.social/@dave/1050") == {
        "uri": "https://podcastindex.social/@dave/1050",
        "accountId": "@dave@podcastindex.social",
        "accountUrl": "https://podcastindex.social/@dave",
    }
    # the ActivityPub URI form names the account too
    got = masto.social_interact(None, "7", "https://Social.Example/users/ann/statuses/7")
    assert got is not None and got["accountId"] == "@ann@social.example"
    assert masto.social_interact(None, "7", None) is None  # no URL: can't be said

    cfg = config.ChannelConfig(name="b", type="bluesky", handle="pod.example.com")
    uri = "at://did:plc:abc123/app.bsky.feed.post/3kabc"
    assert bsky.social_interact(cfg, uri, None) == {
        "uri": uri,
        "accountId": "did:plc:abc123",
        "accountUrl": "https://bsky.app/profile/pod.example.com",
    }
    assert bsky.social_interact(cfg, "not-an-at-uri", None) is None
    assert bsky.social_interact(cfg, "at://did:plc:abc123", None) is None  # not a post

    assert x.social_interact(None, "42", "https://x.com/pod/status/42") == {
        "uri": "https://x.com/pod/status/42",
        "accountId": "@pod",
        "accountUrl": "https://x.com/pod",
    }
    assert x.social_interact(None, "42", None) == {"uri": "https://x.com/i/web/status/42"}
    named = config.ChannelConfig(name="x", type="twitter", username="@PodBot")
    assert x.social_interact(named, "42", "https://x.com/i/web/status/42") == {
        "uri": "https://x.com/PodBot/status/42",
        "accountId": "@PodBot",
        "accountUrl": "https://x.com/PodBot",
    }
    with pytest.raises(ValueError, match="not an X user name"):
        config.ChannelConfig(name="x", type="twitter", username="no spaces allowed")
    assert x.social_interact(None, None, None) is None


# ----------------------------------------------------------------------- the config


def _load(tmp_path: Path, feed: str) -> config.Settings:
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        """
[[channels]]
name = "masto"
type = "mastodon"
instance = "https://social.example"

[[channels]]
name = "team"
type = "apprise"
url = "json://127.0.0.1:9/hook"

[[channels]]
name = "bsky"
type = "bluesky"
handle = "pod.example.com"

[[feeds]]
name = "main"
"""
        + feed
    )
    return config.load(cfg)


def test_social_interact_config(tmp_path: Path) -> None:
    s = _load(tmp_path, "")
    feed = s.feeds[0]
    assert [c.name for c in s.social_interact_channels(feed) or []] == ["masto", "bsky"]
    s = _load(tmp_path, 'social_interact = ["bsky", "masto"]\n')
    assert [c.name for c in s.social_interact_channels(s.feeds[0]) or []] == ["bsky", "masto"]
    s = _load(tmp_path, 'social_interact = "disabled"\n')
    assert s.social_interact_channels(s.feeds[0]) is None

    with pytest.raises(ConfigError) as err:
        _load(tmp_path, 'social_interact = ["bksy"]\n')
    msg = str(err.value)
    assert "'bksy' is not a configured channel" in msg
    assert "the choices: 'masto', 'bsky'" in msg and "s.toml" in msg
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, 'social_interact = ["team"]\n')
    assert "'team' is a channel whose posts can't host comments" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, 'social_interact = "masto"\n')
    assert "must be a list of channel names" in str(err.value)

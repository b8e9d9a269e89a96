"""What listeners did: counts read back from each network (fake servers on 127.0.0.1),
stored as a time series per delivery, on a slow schedule that respects rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from syndicator.announce.listeners import NOTICE_KIND, REFUSED_PAUSE
from syndicator.pipeline import run_once
from syndicator.store import counts as store_counts
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery, Problem
from tests.conftest import make_settings
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.pds import FakePDS
from tests.fakes.xapi import FakeX

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
EVERY = timedelta(hours=6)
STATUS = r"^/api/v1/statuses/\d+$"  # Mastodon's GET of one status


@dataclass
class Net:
    x: FakeX
    masto: FakeMastodon
    pds: FakePDS

    def channels(self) -> list[dict[str, Any]]:
        return [
            {"name": "x", "type": "twitter", "api_url": self.x.url, "timeout": "10s"},
            {"name": "masto", "type": "mastodon", "instance": self.masto.url, "timeout": "10s"},
            {"name": "bsky", "type": "bluesky", "service": self.pds.url,
             "handle": self.pds.handle, "timeout": "10s"},
        ]  # fmt: skip

    def reads(self) -> dict[str, int]:
        """How often each network was asked for counts."""
        return {
            "x": len(self.x.requests("GET", r"^/2/tweets$")),
            "masto": len(self.masto.requests("GET", STATUS)),
            "bsky": len(self.pds.requests("GET", "app.bsky.feed.getPosts")),
        }


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    with FakeX() as x, FakeMastodon() as m, FakePDS() as p:
        env = {**x.env("x"), "SYNDICATOR_MASTO_ACCESS_TOKEN": m.token, **p.env("bsky")}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield Net(x, m, p)


def _settings(tmp_path: Path, url: str, site: Path, net: Net, **stats: Any) -> Any:
    return make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=net.channels(),
        announce={"window": "14d", "retry_base": "1s", "lease": "1s"},
        stats={"every": "6h", "days": 14, **stats},
    )  # fmt: skip


def _sent(url: str) -> dict[str, list[Delivery]]:
    with session(upgrade(url)) as s:
        rows = s.exec(select(Delivery).where(Delivery.state == "sent")).all()
    out: dict[str, list[Delivery]] = {}
    for d in sorted(rows, key=lambda d: d.id or 0):
        out.setdefault(d.channel, []).append(d)
    return out


def _series(url: str) -> dict[int, list[dict[str, Any]]]:
    with session(upgrade(url)) as s:
        rows = store_counts.series(s, [d.id for ds in _sent(url).values() for d in ds if d.id])
    return {
        i: [{k: getattr(r, k) for k in (*store_counts.KEYS, "gone")} for r in rs]
        for i, rs in rows.items()
    }


def _notices(url: str) -> list[Problem]:
    with session(upgrade(url)) as s:
        return list(
            s.exec(
                select(Problem).where(Problem.kind == NOTICE_KIND, Problem.resolved_at.is_(None))  # type: ignore[union-attr]
            ).all()
        )


def test_counts_move_over_time_for_each_kind(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, db_url, site, net)
    run_once(settings, now=NOW)
    sent = _sent(db_url)
    assert {ch: len(ds) for ch, ds in sent.items()} == {"x": 2, "masto": 2, "bsky": 2}
    run_once(settings, now=NOW + timedelta(hours=1))
    assert net.reads() == {"x": 0, "masto": 0, "bsky": 0}  # not due: `every` after sending
    assert _series(db_url) == {}

    # listeners act on the first episode's posts; the second one's stay at zero
    first = {ch: ds[0] for ch, ds in sent.items()}
    second = {ch: ds[1] for ch, ds in sent.items()}
    net.masto.favourite(first["masto"].remote_id or "", by="bob")
    net.masto.reblog(first["masto"].remote_id or "", by="carol")
    net.pds.set_counts(first["bsky"].remote_id or "", likes=5, reposts=1, replies=2, quotes=1)
    net.x.set_metrics(first["x"].remote_id or "", like_count=9, retweet_count=3,
                      reply_count=1, quote_count=0, impression_count=400)  # fmt: skip
    report = run_once(settings, now=NOW + EVERY + timedelta(minutes=1))
    assert report.counts.read == 6
    assert net.reads() == {"x": 2, "masto": 2, "bsky": 2}

    # time passes; the counts move
    net.masto.favourite(first["masto"].remote_id or "", by="carol")
    net.masto.reply(first["masto"].remote_id or "", "loved it", by="bob")
    net.pds.set_counts(first["bsky"].remote_id or "", likes=12, replies=4)
    net.x.set_metrics(first["x"].remote_id or "", like_count=20, impression_count=1500)
    net.x.set_metrics(second["x"].remote_id or "", like_count=1)
    run_once(settings, now=NOW + 2 * EVERY + timedelta(minutes=2))

    series = _series(db_url)
    blank = {"gone": False, "views": None}
    assert series[first["masto"].id or 0] == [
        {"likes": 1, "reposts": 1, "replies": 0, "quotes": None, **blank},
        {"likes": 2, "reposts": 1, "replies": 1, "quotes": None, **blank},
    ]
    assert series[first["bsky"].id or 0] == [
        {"likes": 5, "reposts": 1, "replies": 2, "quotes": 1, **blank},
        {"likes": 12, "reposts": 1, "replies": 4, "quotes": 1, **blank},
    ]
    assert series[first["x"].id or 0] == [
        {"likes": 9, "reposts": 3, "replies": 1, "quotes": 0, "views": 400, "gone": False},
        {"likes": 20, "reposts": 3, "replies": 1, "quotes": 0, "views": 1500, "gone": False},
    ]
    assert [r["likes"] for r in series[second["x"].id or 0]] == [0, 1]
    assert [r["likes"] for r in series[second["bsky"].id or 0]] == [0, 0]

    # what is shown (the same queries on both stores)
    from syndicator.announce.listeners import summary

    with session(upgrade(db_url)) as s:
        shown = summary(s, settings, NOW + 2 * EVERY + timedelta(minutes=5))
        totals = {(c, k): n for c, k, n in store_counts.latest_totals(s)}
        assert {c for c, _ in store_counts.last_read_at(s)} == {"x", "masto", "bsky"}
    by = {c["channel"]: c for c in shown["channels"]}
    assert by["bsky"]["counts"] == {"likes": 12, "reposts": 1, "replies": 4, "quotes": 1}
    assert by["x"]["counts"]["views"] == 1500 and by["x"]["counts"]["likes"] == 21
    assert [p["interactions"] for p in by["masto"]["series"]][-1] == 4
    assert len(shown["posts"]) == 6 and all(len(p["series"]) == 2 for p in shown["posts"])
    assert totals[("x", "likes")] == 21 and totals[("masto", "posts")] == 2

    # older than `days`: never asked again
    before = net.reads()
    run_once(settings, now=NOW + timedelta(days=15))
    assert net.reads() == before


def test_a_refusal_is_one_notice_and_the_channel_rests(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    net.x.read_refused = True  # X's lower API tiers: 403 client-not-enrolled
    report = run_once(settings, now=NOW + EVERY + timedelta(minutes=1))
    assert report.counts.refused == ["x"]
    assert report.counts.read == 4  # Mastodon and Bluesky went on
    assert report.exit_code == 0 and not report.attention  # a notice needs nobody
    notices = _notices(sqlite_url)
    assert len(notices) == 1 and notices[0].source == "channel:x"
    assert notices[0].severity == "notice" and "client-not-enrolled" not in notices[0].message
    assert "Project" in notices[0].message  # X's own words, and what syndicator does
    assert net.reads()["x"] == 1  # asked once, not once per post

    for later in (2 * EVERY + timedelta(minutes=2), 3 * EVERY + timedelta(minutes=3)):
        run_once(settings, now=NOW + later)  # X is not asked, the notice is not repeated
    assert net.reads()["x"] == 1
    assert len(_notices(sqlite_url)) == 1
    assert net.reads()["masto"] == 6

    net.x.read_refused = False  # the account got a tier that reads
    report = run_once(settings, now=NOW + EVERY + REFUSED_PAUSE + timedelta(minutes=5))
    assert net.reads()["x"] == 3 and report.counts.refused == []
    assert _notices(sqlite_url) == []  # resolved once it works


def test_rate_limits_are_honoured_and_one_failure_stops_nobody_else(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    net.masto.rate_limit_next(method="GET", path=STATUS, reset_in=7200, retry_after=7200)
    net.pds.fail_next(status=502, method="GET", path="getPosts")
    report = run_once(settings, now=NOW + EVERY + timedelta(minutes=1))
    assert sorted(report.counts.waiting) == ["bsky", "masto"]
    assert report.counts.read == 2  # X read both posts
    assert net.reads() == {"x": 2, "masto": 1, "bsky": 1}  # each stopped at its first failure

    # Bluesky's back-off (a minute, doubling) is over; Mastodon's Retry-After (2 h) is not
    run_once(settings, now=NOW + EVERY + timedelta(minutes=30))
    assert net.reads() == {"x": 2, "masto": 1, "bsky": 3}
    run_once(settings, now=NOW + EVERY + timedelta(hours=2, minutes=2))
    assert net.reads() == {"x": 2, "masto": 3, "bsky": 3}
    assert all(len(rs) == 1 for rs in _series(sqlite_url).values())
    assert len(_series(sqlite_url)) == 6


def test_a_deleted_post_is_read_once_more_then_never(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    sqlite_url = db_url  # both stores
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    sent = _sent(sqlite_url)
    net.masto.delete_status(sent["masto"][0].remote_id or "")
    net.x.delete_tweet(sent["x"][0].remote_id or "")
    net.pds.delete_record("app.bsky.feed.post", sent["bsky"][0].record_key or "")
    report = run_once(settings, now=NOW + EVERY + timedelta(minutes=1))
    assert report.counts.gone == 3 and report.counts.read == 3
    assert report.counts.refused == [] and report.counts.waiting == []
    series = _series(sqlite_url)
    assert all(series[ds[0].id or 0] == [{**dict.fromkeys(store_counts.KEYS), "gone": True}]
               for ds in sent.values())  # fmt: skip
    run_once(settings, now=NOW + 2 * EVERY + timedelta(minutes=2))
    assert net.reads() == {"x": 3, "masto": 3, "bsky": 3}  # only the live posts again


def test_disabled_reads_nothing(tmp_path: Path, sqlite_url: str, site: Path, net: Net) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net, enabled=False)
    run_once(settings, now=NOW)
    run_once(settings, now=NOW + EVERY + timedelta(minutes=1))
    assert net.reads() == {"x": 0, "masto": 0, "bsky": 0}


@pytest.mark.timeout(120)
def test_the_daemon_reads_counts_that_are_due(
    tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndicator.store.models import Delivery as Row
    from syndicator.timeutil import utcnow
    from tests import daemon_support as d
    from tests.fakes.webhook import FakeWebhook

    with FakeMastodon() as m, FakeWebhook() as hook:
        status = m._as(m.username, "POST", "/api/v1/statuses", status="An earlier episode")
        m.favourite(status["id"], by="bob")
        m.favourite(status["id"], by="carol")
        m.reblog(status["id"], by="bob")
        cfg = d.write_config(
            tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce",
            more=f'[stats]\nevery = "1h"\n\n[[channels]]\nname = "masto"\ntype = "mastodon"\n'
                 f'instance = "{m.url}"\ntimeout = "10s"\n',
        )  # fmt: skip
        now = utcnow()
        engine = upgrade(f"sqlite:///{tmp_path / 'store.db'}")
        with session(engine, write=True) as s:
            s.add(
                Row(key="announce:earlier:masto", channel="masto", state="sent",
                    remote_id=str(status["id"]), sent_at=now - timedelta(hours=2),
                    planned_at=now - timedelta(hours=2), updated_at=now - timedelta(hours=2))
            )  # fmt: skip

        def masto_counts() -> dict[str, int]:
            data = json.loads(d.cli(cfg, "stats", "--json").stdout)
            return next((p["counts"] for p in data["posts"] if p["channel"] == "masto"), {})

        def read() -> bool:
            with session(engine) as s:
                return bool(store_counts.read_posts(s))

        proc = d.start(cfg, "run", env={"SYNDICATOR_MASTO_ACCESS_TOKEN": m.token})
        try:
            assert d.wait(read, 60, every=0.2), "the daemon read no counts"
        finally:
            assert d.stop(proc) == 0
        assert masto_counts() == {"likes": 2, "reposts": 1, "replies": 0}
        assert len(m.requests("GET", STATUS)) == 1  # read once: the next one is due in 1 h


def test_stats_settings_are_checked_with_the_line(tmp_path: Path) -> None:
    from syndicator import config
    from syndicator.config import ConfigError

    path = tmp_path / "s.toml"
    path.write_text('[podcast]\ntitle = "x"\n\n[stats]\ndays = 0\nevery = "1m"\nenabld = true\n')
    with pytest.raises(ConfigError) as err:
        config.load(path)
    found = {p.where: (p.line, p.message) for p in err.value.problems}
    assert found["stats.days"][0] == 5 and "1 to 365" in found["stats.days"][1]
    assert found["stats.every"][0] == 6 and "10m" in found["stats.every"][1]
    assert "stats.enabld" in found  # an unknown key, named
    path.write_text('[podcast]\ntitle = "x"\n\n[stats]\ndays = 30\nevery = "12h"\n')
    settings = config.load(path)
    assert settings.stats.days == 30 and settings.stats.every == timedelta(hours=12)
    assert settings.stats.enabled is True


def test_another_process_moves_the_counts_over_http() -> None:
    """tests/fakes/serve.py's fakes: counts set through /_fake/ controls."""
    import httpx

    from syndicator.channels.base import PermanentError, Post
    from syndicator.channels.bluesky.client import BlueskyChannel
    from syndicator.channels.tids import make_tid
    from syndicator.channels.twitter.client import TwitterChannel

    def post(text: str) -> Post:
        return Post(1, text, "k", make_tid(NOW, 1), NOW)

    with FakePDS() as pds, FakeX() as x:
        bsky = BlueskyChannel(
            "b", handle=pds.handle, app_password=pds.password, service=pds.url, timeout=5
        )
        uri = bsky.send(post("hello")).remote_id or ""
        httpx.post(pds.url + "/_fake/counts", json={"uri": uri, "likes": 4, "quotes": 2})
        assert bsky.read_counts(uri) == {"likes": 4, "reposts": 0, "replies": 0, "quotes": 2}
        tw = TwitterChannel(
            "x", api_key=x.api_key, api_secret=x.api_secret, access_token=x.access_token,
            access_token_secret=x.access_token_secret, api_url=x.url, timeout=5,
        )  # fmt: skip
        tid = tw.send(post("hello")).remote_id or ""
        httpx.post(x.url + "/_fake/metrics", json={"id": tid, "like_count": 6})
        assert tw.read_counts(tid)["likes"] == 6
        httpx.post(x.url + "/_fake/read_refused", json={"refused": True})
        with pytest.raises(PermanentError) as err:
            tw.read_counts(tid)
        assert err.value.status == 403 and "Project" in err.value.message
        bsky.close()
        tw.close()

"""Announcing end to end: a pass, real channels, fake networks on 127.0.0.1, faults."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nostr_sdk import Keys
from sqlmodel import select

from syndicator.channels.linkedin.shared import plain_text
from syndicator.channels.tids import is_valid_tid
from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.nostr_relay import FakeRelay
from tests.fakes.pds import FakePDS
from tests.fakes.threads import FakeThreads
from tests.fakes.webhook import FakeWebhook
from tests.fakes.xapi import FakeX

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
NOSTR_NSEC = Keys.generate().secret_key().to_bech32()  # the nostr channel's key


def _toml(c: dict[str, Any]) -> str:
    """One [[channels]] entry's keys (JSON strings and lists are TOML too)."""
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in c.items())


@dataclass
class Net:
    x: FakeX
    masto: FakeMastodon
    pds: FakePDS
    hook: FakeWebhook
    relay: FakeRelay
    li: FakeLinkedIn
    threads: FakeThreads

    def env(self) -> dict[str, str]:
        return {**self.x.env("x"), "SYNDICATOR_MASTODON_ACCESS_TOKEN": self.masto.token,
                **self.pds.env("bluesky"),
                "SYNDICATOR_NOSTR_NSEC": NOSTR_NSEC,
                **self.li.env("linkedin"),
                **self.threads.env("threads"),
                }  # fmt: skip

    def channels(self, **over: Any) -> list[dict[str, Any]]:
        base = [
            {"name": "x", "type": "twitter", "api_url": self.x.url, "timeout": "2s"},
            {"name": "mastodon", "type": "mastodon", "instance": self.masto.url, "timeout": "2s"},
            {"name": "bluesky", "type": "bluesky", "service": self.pds.url,
             "handle": self.pds.handle, "timeout": "2s"},
            {"name": "hook", "type": "apprise", "url": f"json://127.0.0.1:{self.hook.port}/hook",
             "timeout": "2s"},
            {"name": "nostr", "type": "nostr", "relays": [self.relay.ws_url], "timeout": "2s"},
            {"name": "linkedin", "type": "linkedin", "api_url": self.li.url,
             "author": self.li.author, "timeout": "2s"},
            {"name": "threads", "type": "threads", "api_url": self.threads.api_url,
             "user_id": self.threads.user_id, "timeout": "2s"},
        ]  # fmt: skip
        for c in base:
            c.update(over.get(c["name"], {}))
        return base

    def counts(self) -> dict[str, int]:
        return {
            "x": len(self.x.tweets),
            "mastodon": len(self.masto.statuses()),
            "bluesky": len(self.pds.posts()),
            "hook": len(self.hook.posts("/hook")),
            "nostr": len(self.relay.notes()),
            "linkedin": len(self.li.posts),
            "threads": len(self.threads.threads),
        }


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    with FakeX() as x, FakeMastodon() as m, FakePDS() as p, FakeWebhook() as h, \
            FakeRelay() as r, \
            FakeLinkedIn() as li, \
            FakeThreads() as th:  # fmt: skip
        n = Net(x, m, p, h, r, li, threads=th)
        for k, v in n.env().items():
            monkeypatch.setenv(k, v)
        yield n


def _settings(tmp_path: Path, url: str, site: Path, net: Net, **over: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False,
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=net.channels(**over),
        announce={"window": "14d", "retry_base": "1s", "lease": "1s",
                  "max_hashtags": 3, **over.get("announce", {})},
    )  # fmt: skip


def _rows(url: str) -> dict[tuple[int | None, str], Delivery]:
    with session(upgrade(url)) as s:
        return {(d.episode_id, d.channel): d for d in s.exec(select(Delivery)).all()}


def test_each_recent_episode_once_on_every_channel(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, db_url, site, net)
    report = run_once(settings, now=NOW)
    every = len(net.channels())
    assert report.sends.sent == 2 * every, report.sends.events  # 2 recent episodes each
    assert net.counts() == dict.fromkeys(net.counts(), 2)
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert net.counts() == dict.fromkeys(net.counts(), 2)  # never twice
    rows = [d for d in _rows(db_url).values() if d.state == "sent"]
    assert len(rows) == 2 * every
    tweets = {t.text for t in net.x.tweets}
    assert any(
        t.startswith("🎙 New episode: Billing for a SaaS Without Losing Sleep, with @ayobankole.")
        for t in tweets
    )
    for d in rows:
        if d.channel == "bluesky":
            assert (
                is_valid_tid(d.record_key or "") and d.remote_url and d.record_key in d.remote_url
            )
    keys = [r.headers.get("idempotency-key") for r in net.masto.posts()]
    assert all(keys) and len(set(keys)) == 2
    assert net.pds.overwrites == []
    assert all(p.get("langs") == ["en"] for p in net.pds.posts())  # the podcast's language
    # backlog and withdrawn episodes were not announced
    assert not any("Print Shop" in t for t in tweets)


def test_dry_run_sends_nothing_and_changes_no_delivery(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    report = run_once(settings, now=NOW, dry_run=True)
    assert len(report.would_send) == 2 * len(net.channels())
    assert net.counts() == dict.fromkeys(net.counts(), 0)
    assert _rows(sqlite_url) == {}


def test_rate_limit_then_retry_after_the_reset(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    net.x.rate_limit_next(2, reset_in=120)
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    xs = [d for (_, ch), d in _rows(sqlite_url).items() if ch == "x" and d.state != "skipped"]
    assert {d.state for d in xs} <= {"retrying"} and xs
    assert all("429" in (d.last_error or "") for d in xs), [d.last_error for d in xs]
    assert all(d.next_attempt_at and d.next_attempt_at >= NOW + timedelta(seconds=100) for d in xs)
    run_once(settings, now=NOW + timedelta(seconds=30))  # not due yet
    assert len(net.x.tweets) == 0
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert len(net.x.tweets) == 2


def test_lost_answers_are_reconciled_without_duplicates(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    """Each network stores the post, then the answer is lost (dropped connection or 500)."""
    net.x.drop_next(store=True, method="POST", path="/2/tweets")
    net.masto.fail_next(status=500, store=True, method="POST", path="/api/v1/statuses")
    net.pds.drop_next(store=True, method="POST", path="putRecord")
    net.hook.drop_next(store=True, method="POST")
    net.relay.drop_next(store=True, method="EVENT")
    net.threads.drop_next(store=True, method="POST", path="threads_publish$")
    net.li.drop_next(store=True, method="POST", path="^/rest/posts$")
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    states = sorted(d.state for d in _rows(sqlite_url).values() if d.state != "skipped")
    assert states.count("unknown") == len(net.channels()), states
    for later in (1, 2, 3):
        run_once(settings, now=NOW + timedelta(minutes=later * 10))
    assert net.counts() == dict.fromkeys(net.counts(), 2)
    rows = [d for d in _rows(sqlite_url).values() if d.state != "skipped"]
    held = [d for d in rows if d.state == "unknown"]
    assert [d.channel for d in held] == ["hook"]  # a webhook can't be checked: held
    assert sum(d.state == "sent" for d in rows) == 2 * len(net.channels()) - 1
    assert len(net.threads.publishes()) == 2  # the lost one was read back, not published again
    assert net.pds.overwrites == []


def test_permanent_errors_fail_and_attempts_are_capped(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    net.masto.fail_next(2, status=422, body={"error": "Validation failed: Text too long"},
                        method="POST", path="/api/v1/statuses")  # fmt: skip
    net.hook.fail_next(10, status=503, method="POST")
    settings = _settings(tmp_path, sqlite_url, site, net,
                         hook={"on_unknown": "resend", "max_attempts": 3})  # fmt: skip
    for i in range(6):
        report = run_once(settings, now=NOW + timedelta(minutes=10 * i))
    rows = _rows(sqlite_url)
    masto = [d for (_, ch), d in rows.items() if ch == "mastodon" and d.state != "skipped"]
    assert {d.state for d in masto} == {"failed"}
    assert "Text too long" in (masto[0].last_error or "")
    hook = [d for (_, ch), d in rows.items() if ch == "hook" and d.state != "skipped"]
    assert {d.state for d in hook} == {"failed"} and all(d.attempts == 3 for d in hook)
    assert report.exit_code == 1


def test_pacing_spreads_a_backlog(tmp_path: Path, sqlite_url: str, site: Path, net: Net) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net, x={"min_interval": "1h"},
                         announce={"window": "365d", "catch_up": "send"})  # fmt: skip
    # (catch_up = "send": pacing, not a person, spreads this backlog; see test_approval.py)
    run_once(settings, now=NOW)
    assert len(net.x.tweets) == 1
    run_once(settings, now=NOW + timedelta(minutes=30))
    assert len(net.x.tweets) == 1
    run_once(settings, now=NOW + timedelta(minutes=61))
    assert len(net.x.tweets) == 2


def test_preview_json_counts_by_each_network(tmp_path: Path, site: Path, net: Net) -> None:
    cfg = tmp_path / "s.toml"
    lines = [
        '[database]\nurl = "sqlite:///s.db"\n[[sources]]\nname = "episodes"\ntype = "jekyll"\n'
        "verify_audio = false\n"
        f'path = "{site}"\nepisode_url = "{{site.url}}/podcast/{{slug}}"\n'
    ]
    for c in net.channels():
        lines.append("[[channels]]\n" + _toml(c) + "dry_run = true\n")
    cfg.write_text("\n".join(lines))
    env = {**os.environ, **net.env()}
    run = subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    out = subprocess.run([sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "preview",
                          "6", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    rows = json.loads(out.stdout)
    assert {r["channel"] for r in rows} == {c["name"] for c in net.channels()}
    for r in rows:
        assert set(r) >= {"episode", "channel", "text", "length", "limit", "fits"}
        assert r["fits"] and r["length"] <= r["limit"]
    x = next(r for r in rows if r["channel"] == "x")
    # X weighs the emoji 2 (".example" is no TLD twitter-text knows, so no URL rule here)
    assert x["limit"] == 280 and x["length"] == len(x["text"]) + 1
    nostr = next(r for r in rows if r["channel"] == "nostr")
    assert nostr["limit"] == 1000 and nostr["length"] == len(nostr["text"])  # code points
    li = next(r for r in rows if r["channel"] == "linkedin")
    # LinkedIn: 3,000 UTF-16 units of the escaped commentary (reserved characters doubled)
    reserved = sum(li["text"].count(c) for c in "|{}@[]()<>\\*_~")
    tags = li["text"].count("#")  # each "#tag" goes as "{hashtag|\\#|tag}"
    assert li["limit"] == 3000
    assert li["length"] == len(li["text"].encode("utf-16-le")) // 2 + reserved + 12 * tags
    th = next(r for r in rows if r["channel"] == "threads")
    # Threads: 500, and an emoji counts as its UTF-8 bytes (the 🎙 is 4)
    assert th["limit"] == 500 and th["length"] == len(th["text"]) + 3


def test_crash_at_random_moments_nothing_twice_nothing_lost(
    tmp_path: Path, site: Path, net: Net
) -> None:
    """SIGKILL `run-once` at random moments while it sends, many times; then let it finish.

    Every announcement exists exactly once on the channels with idempotency or a
    read-back; webhook rows whose outcome is unknown are held, never resent.
    """
    day = datetime.now(UTC) - timedelta(hours=2)
    for i in range(6):
        (site / "_posts" / "podcast" / f"{day:%Y-%m-%d}-{100 + i}-crash-test-{i}.md").write_text(
            f'---\ntitle: "Crash Test Episode {i}"\ndate: {day:%Y-%m-%d %H:%M:%S} +0000\n'
            f'category: "podcast"\nmp3_bytes: "100"\nmp3_duration: "2:00"\n---\nBody {i}.\n'
        )
    cfg = tmp_path / "s.toml"
    # catch_up = "send": a burst of 6+ announcements is what this test sends (not held)
    lines = [f'[database]\nurl = "sqlite:///s.db"\n[announce]\nlease = "1s"\nretry_base = "1s"\n'
             'catch_up = "send"\n'
             f'[[sources]]\nname = "episodes"\ntype = "jekyll"\npath = "{site}"\n'
             "verify_audio = false\n"
             'episode_url = "{site.url}/podcast/{slug}"\n']  # fmt: skip
    for c in net.channels():
        lines.append("[[channels]]\n" + _toml(c))
    cfg.write_text("\n".join(lines))
    env = {**os.environ, **net.env()}
    # Slow the networks a little so kills land mid-send.
    for fake in (net.x, net.masto, net.pds, net.hook, net.li):
        fake.hang_next(40, seconds=0.15, store=True, method="POST")
    net.relay.hang_next(40, seconds=0.15, store=True, method="EVENT")
    net.threads.hang_next(40, seconds=0.15, store=True, method="POST")
    rng = random.Random(7)
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"]
    for _ in range(12):
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.6, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for fake in (net.x, net.masto, net.pds, net.hook, net.relay, net.li):
        fake.clear_faults()
    net.threads.clear_faults()
    for _ in range(4):
        time.sleep(1.2)  # leases of killed processes run out
        subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    expected = {f"Crash Test Episode {i}" for i in range(6)} | {
        "Billing for a SaaS Without Losing Sleep", "Bonus: What We Learned From a Year of Episodes"
    }  # fmt: skip

    def titles(texts: list[str]) -> list[str]:
        return [t for t in expected for x in texts if t in x]

    assert sorted(titles([t.text for t in net.x.tweets])) == sorted(expected)
    assert sorted(titles([s["content"] for s in net.masto.statuses()])) == sorted(expected)
    assert sorted(titles([p["text"] for p in net.pds.posts()])) == sorted(expected)
    assert net.pds.overwrites == []
    assert sorted(titles([n["content"] for n in net.relay.notes()])) == sorted(expected)
    assert sorted(titles([plain_text(p.commentary) for p in net.li.posts])) == sorted(expected)
    assert sorted(titles([t.text for t in net.threads.threads])) == sorted(expected)
    hooked = titles([b["message"] for b in net.hook.bodies("/hook")])
    assert len(hooked) == len(set(hooked))  # never twice
    rows = json.loads(subprocess.run([*cmd[:-1], "deliveries", "--json"], cwd=tmp_path, env=env,
                                     capture_output=True, text=True).stdout)  # fmt: skip
    for r in rows:
        if r["channel"] != "hook" and r["state"] != "skipped":
            assert r["state"] == "sent", r
    missing = expected - set(hooked)
    held = [r for r in rows if r["channel"] == "hook" and r["state"] == "unknown"]
    assert len(held) >= len(missing)  # nothing lost: what isn't there is held for a person


def test_a_channel_pool_logs_in_once_across_passes(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    from syndicator.pipeline import ChannelPool

    settings = _settings(tmp_path, sqlite_url, site, net)
    pool = ChannelPool()
    try:
        run_once(settings, now=NOW, pool=pool)
        (site / "_posts/podcast/2026-11-27-8-one-more.md").write_text(
            '---\ntitle: "One More"\ndate: 2026-11-27 11:00:00 +0000\ncategory: "podcast"\n'
            'mp3_bytes: "100"\nmp3_duration: "2:00"\n---\nBody.\n'
        )
        run_once(settings, now=NOW + timedelta(minutes=5), pool=pool)
    finally:
        pool.close()
    assert len(net.pds.posts()) == 3
    assert net.pds.sessions_created == 1  # bsky.social rate-limits createSession

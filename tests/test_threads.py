"""Reply threads: the chapter list as replies under the announcement, one outbox row per
reply, each sent after its parent and answering it, on real fakes of each network."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from nostr_sdk import Keys
from pydantic import ValidationError
from sqlmodel import select

from syndicator.announce import fit
from syndicator.announce.manual import announce_now, retry
from syndicator.announce.render import Renderer
from syndicator.announce.thread import MAX_PARTS, clock, pack, time_link
from syndicator.channels.base import PermanentError, Post, ReplyRef
from syndicator.channels.bluesky.client import reply_ref
from syndicator.channels.nostr.client import reply_tags
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.previews import previews
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from syndicator.store.views import delivery_dict
from tests import test_announce_e2e as e2e
from tests.conftest import make_settings
from tests.test_announce_e2e import Net, _toml

net = e2e.net  # the fakes of every network, as the announce tests use them (a fixture)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
THREADED = ("x", "mastodon", "bluesky", "nostr")
# mastodon-mock counts a URL in full (Mastodon as 23); Nostr's 1,000 would fit the whole
# chapter list in one reply, and a thread of several shows the order
LIMITS = {"mastodon": {"limit": 250}, "nostr": {"limit": 300}}
BILLING = "Billing for a SaaS Without Losing Sleep"  # 7 chapters in its Topics list


def _settings(tmp_path: Path, url: str, site: Path, net: Net, **over: Any) -> Any:
    chans = [c for c in net.channels() if c["name"] in THREADED]
    for c in chans:
        c["thread"] = ["chapters"]
        c.update(LIMITS.get(c["name"], {}))
        c.update(over.get(c["name"], {}))
    return make_settings(
        tmp_path, url,
        podcast={"title": "Test Show", "link": "https://show.example", "timezone": "UTC",
                 "chapter_links": True},
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False,
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=chans,
        announce={"window": "14d", "retry_base": "1s", "lease": "1s", "max_hashtags": 3},
    )  # fmt: skip


def _rows(url: str, channel: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        rows = s.exec(select(Delivery).where(Delivery.channel == channel)).all()
        return sorted(rows, key=lambda d: d.id or 0)


# ---------------------------------------------------------------- splitting


def test_pack_splits_whole_lines_to_the_kinds_count_and_honours_breaks() -> None:
    url = "https://show.example/podcast/ep"
    lines = [f"{clock(i * 95)} Chapter number {i} {time_link(url, i * 95)}" for i in range(12)]
    text = "Chapters:\n" + "\n".join(lines[:6]) + "\n---\n" + "\n".join(lines[6:])
    parts = pack(text, 120, lambda t: fit.count(t, "twitter"))
    assert all(fit.count(p, "twitter") <= 120 for p in parts)
    # every line is there once, in order, none cut: X counts each URL as 23
    assert "\n".join(parts).split("\n") == ["Chapters:", *lines]
    assert any(p.endswith(lines[5]) for p in parts)  # `---` ended a reply there
    assert len(parts) >= 4
    assert clock(3723) == "1:02:03" and clock(65) == "1:05"
    assert time_link("https://a.example/e?x=1#top", 7) == "https://a.example/e?x=1&t=7#top"


def test_pack_shortens_a_line_too_long_alone_and_caps_the_replies() -> None:
    long_line = "0:00 " + "word " * 100
    parts = pack(long_line, 50, len)
    assert len(parts) == 1 and len(parts[0]) <= 50 and parts[0].endswith("…")
    many = "\n---\n".join(f"line {i}" for i in range(MAX_PARTS + 10))
    assert len(pack(many, 500, len)) == MAX_PARTS


@pytest.mark.parametrize("kind,extra", [
    ("linkedin", {"author": "urn:li:person:abc"}),
    ("apprise", {"url": "json://127.0.0.1/hook"}),
])  # fmt: skip
def test_thread_on_a_kind_that_cannot_reply_is_a_clear_config_error(
    kind: str, extra: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as err:
        ChannelConfig(name="c", type=kind, thread=["chapters"], **extra)
    assert f"{kind} channels cannot post replies" in str(err.value)
    with pytest.raises(ValidationError, match="thread_template is set"):
        ChannelConfig(name="c", type=kind, thread_template="t.j2", **extra)


# ---------------------------------------------------------------- on every network


def test_a_thread_follows_the_announcement_in_order_on_every_network(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, db_url, site, net)
    report = run_once(settings, now=NOW)
    assert report.sends.failed == 0, [e for e in report.sends.events if e[1] != "sent"]
    run_once(settings, now=NOW + timedelta(minutes=5))  # nothing twice

    # X: the announcement, then each reply answering the tweet before it
    ann = next(t for t in net.x.tweets if BILLING in t.text)
    thread = [ann]
    while True:
        nxt = [t for t in net.x.tweets if t.in_reply_to == thread[-1].id]
        assert len(nxt) <= 1
        if not nxt:
            break
        thread.append(nxt[0])
    replies = [t.text for t in thread[1:]]
    assert len(replies) >= 2 and replies[0].startswith("Chapters:")
    assert "1:01:02 Best tips?" in replies[-1]
    assert "podcast/6-billing-for-a-saas-without-losing-sleep?t=3662" in (replies[-1])
    assert all(fit.count(r, "twitter") <= 280 for r in replies)
    assert all(int(a.id) < int(b.id) for a, b in pairwise(thread))

    # the rows: kind reply, part n answers part n-1, all sent, shown in deliveries --json
    rows = [d for d in _rows(db_url, "x") if d.kind == "reply" and d.episode_id == _ep(db_url)]
    assert [r.payload["part"] for r in rows] == list(range(1, len(replies) + 1))
    assert [r.text for r in rows] == replies
    assert all(r.state == "sent" for r in rows)
    shown = [delivery_dict(r, None) for r in rows]
    assert shown[0]["parent"].startswith("announce:") and shown[1]["parent"] == rows[0].key
    assert shown[1]["part"] == 2 and shown[0]["kind"] == "reply"

    # Mastodon: in_reply_to_id chains the same texts
    statuses = list(reversed(net.masto.statuses()))
    by_id = {str(s["id"]): s for s in statuses}
    masto_replies = [s for s in statuses if s.get("in_reply_to_id")]
    assert len(masto_replies) >= len(replies)
    first = next(s for s in masto_replies if "Chapters:" in s["content"] and
                 BILLING in by_id[str(s["in_reply_to_id"])]["content"])  # fmt: skip
    chain = [first]
    while nxt_s := [s for s in masto_replies if str(s["in_reply_to_id"]) == str(chain[-1]["id"])]:
        chain.append(nxt_s[0])
    assert "Best tips?" in chain[-1]["content"]

    # Bluesky: reply refs with the root (the announcement) and the parent, cids that match
    bsky = net.pds.replies()
    assert bsky and all(r["refs_ok"] for r in bsky)
    bthread = [r for r in bsky if r["root"] == _remote(db_url, "bluesky")]
    assert bthread[0]["parent"] == bthread[0]["root"]
    for a, b in pairwise(bthread):
        assert b["parent"] == a["uri"]
    assert "Best tips?" in bthread[-1]["text"]

    # Nostr: NIP-10 root/reply markers and the parent author's p tag
    root_id = _remote(db_url, "nostr")
    nthread = [r for r in net.relay.replies() if r["root"] == root_id]
    assert nthread[0]["reply"] == root_id
    for a, b in pairwise(nthread):
        assert b["reply"] == a["id"]
    author = next(n for n in net.relay.notes() if n["id"] == root_id)["pubkey"]
    assert all(r["p"] == [author] for r in nthread)
    assert "Best tips?" in nthread[-1]["content"]

    # preview shows the same parts
    pv = next(p for p in previews(settings, "6", "x") if p["channel"] == "x")
    assert [p["text"] for p in pv["thread"]] == replies


def test_a_thread_on_threads_answers_with_reply_to_id(
    tmp_path: Path, db_url: str, site: Path, net: Net
) -> None:
    """Threads: each reply's container names its parent (reply_to_id), in order."""
    ch = next(c for c in net.channels() if c["name"] == "threads")
    settings = make_settings(
        tmp_path, db_url,
        podcast={"title": "Test Show", "link": "https://show.example", "timezone": "UTC",
                 "chapter_links": True},
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False,
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=[{**ch, "thread": ["chapters"], "limit": 300}],
        announce={"window": "14d", "retry_base": "1s", "lease": "1s", "max_hashtags": 3},
    )  # fmt: skip
    report = run_once(settings, now=NOW)
    assert report.sends.failed == 0, [e for e in report.sends.events if e[1] != "sent"]
    run_once(settings, now=NOW + timedelta(minutes=5))  # nothing twice
    posts = net.threads.threads
    ann = next(p for p in posts if BILLING in p.text and p.reply_to is None)
    chain = [ann]
    while nxt := [p for p in posts if p.reply_to == chain[-1].id]:
        assert len(nxt) == 1
        chain.append(nxt[0])
    assert len(chain) >= 3 and chain[1].text.startswith("Chapters:")
    assert "Best tips?" in chain[-1].text
    rows = [d for d in _rows(db_url, "threads") if d.kind == "reply" and BILLING_SLUG in d.text]
    assert [r.text for r in rows] == [p.text for p in chain[1:]]
    assert all(r.state == "sent" for r in rows)


def _ep(url: str) -> int:
    with session(upgrade(url)) as s:
        d = next(
            d
            for d in s.exec(select(Delivery).where(Delivery.kind == "announce")).all()
            if BILLING in d.text
        )
        return d.episode_id or 0


def _remote(url: str, channel: str) -> str:
    with session(upgrade(url)) as s:
        return next(
            d.remote_id or ""
            for d in s.exec(select(Delivery).where(Delivery.channel == channel)).all()
            if d.kind == "announce" and BILLING in d.text
        )


def test_a_failed_parent_holds_its_replies_until_it_is_sent(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    # every X post is refused for now: the announcements fail, permanently
    net.x.fail_next(50, status=403, body={"title": "Forbidden", "detail": "no"}, method="POST")
    run_once(settings, now=NOW)
    rows = [d for d in _rows(sqlite_url, "x") if d.episode_id == _ep(sqlite_url)]
    ann = next(d for d in rows if d.kind == "announce")
    replies = [d for d in rows if d.kind == "reply"]
    assert ann.state == "failed" and replies
    assert {r.state for r in replies} == {"waiting"}  # held, visibly, none sent
    assert net.x.tweets == []
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert net.x.tweets == []  # still held
    net.x.clear_faults()
    retry(upgrade(sqlite_url), ann.id or 0, NOW + timedelta(minutes=6))
    run_once(settings, now=NOW + timedelta(minutes=7))
    texts = [t.text for t in net.x.tweets]
    assert BILLING in texts[0] and texts[1 : 1 + len(replies)] == [r.text for r in replies]
    states = {(d.episode_id == ann.episode_id, d.state)
              for d in _rows(sqlite_url, "x") if d.kind == "reply"}  # fmt: skip
    assert (True, "sent") in states and (True, "waiting") not in states
    assert (False, "waiting") in states  # the other episode's announcement is still failed


def test_pacing_spaces_announcements_but_a_thread_follows_at_once(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net, x={"min_interval": "1h"})
    run_once(settings, now=NOW)
    sent = [d for d in _rows(sqlite_url, "x") if d.state == "sent"]
    announced = [d for d in sent if d.kind == "announce"]
    assert len(announced) == 1  # the second announcement waits an hour
    thread = [d for d in _rows(sqlite_url, "x") if d.episode_id == announced[0].episode_id]
    assert len(thread) >= 3 and {d.state for d in thread} == {"sent"}
    assert len(net.x.tweets) == len(thread)


def test_an_episode_announced_by_hand_gets_its_thread(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    run_once(settings, now=NOW)
    old = next(d for d in _rows(sqlite_url, "x") if d.state == "skipped" and "Nordic" in d.text)
    assert not [
        d for d in _rows(sqlite_url, "x") if d.kind == "reply" and d.episode_id == old.episode_id
    ]  # a backlog episode: no thread planned
    engine = upgrade(sqlite_url)
    announce_now(engine, settings, Renderer(settings), {}, old.episode_id or 0, NOW, "x")
    run_once(settings, now=NOW + timedelta(minutes=1))
    mine = [d for d in _rows(sqlite_url, "x") if d.episode_id == old.episode_id]
    replies = [d for d in mine if d.kind == "reply"]
    assert replies and {d.state for d in mine} == {"sent"}
    parent = next(d for d in mine if d.kind == "announce").remote_id
    for r in replies:
        tweet = next(t for t in net.x.tweets if t.id == r.remote_id)
        assert tweet.in_reply_to == parent and tweet.text == r.text
        parent = r.remote_id


def test_a_reply_retried_by_hand_before_its_parent_waits_again(
    tmp_path: Path, sqlite_url: str, site: Path, net: Net
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, net)
    net.x.fail_next(50, status=403, body={"title": "Forbidden", "detail": "no"}, method="POST")
    run_once(settings, now=NOW)
    reply = next(d for d in _rows(sqlite_url, "x") if d.kind == "reply")
    retry(upgrade(sqlite_url), reply.id or 0, NOW + timedelta(minutes=1))
    net.x.clear_faults()
    net.x.fail_next(50, status=403, body={"title": "Forbidden", "detail": "no"}, method="POST")
    run_once(settings, now=NOW + timedelta(minutes=2))
    after = next(d for d in _rows(sqlite_url, "x") if d.id == reply.id)
    assert after.state == "waiting"
    assert "the post it replies to" in (after.last_error or "")
    assert not any(r.method == "POST" and reply.text in (r.body or b"").decode()
                   for r in net.x.requests())  # fmt: skip


# ---------------------------------------------------------------- crashes


def test_threads_keep_their_order_across_sigkill_in_the_middle(
    tmp_path: Path, site: Path, net: Net
) -> None:
    """SIGKILL `run-once` at random moments while it sends threads; then let it finish.
    Every reply exists exactly once, in order, each answering the one before it."""
    cfg = tmp_path / "s.toml"
    lines = [f'[podcast]\ntitle = "T"\nlink = "https://show.example"\nchapter_links = true\n'
             f'[database]\nurl = "sqlite:///s.db"\n[announce]\nlease = "1s"\nretry_base = "1s"\n'
             f'[[sources]]\nname = "episodes"\ntype = "jekyll"\npath = "{site}"\n'
             'verify_audio = false\nepisode_url = "{site.url}/podcast/{slug}"\n']  # fmt: skip
    for c in net.channels():
        if c["name"] in THREADED:
            limit = LIMITS.get(c["name"], {})
            lines.append("[[channels]]\n" + _toml({**c, "thread": ["chapters"], **limit}))
    cfg.write_text("\n".join(lines))
    env = {**os.environ, **net.env()}
    for fake in (net.x, net.masto, net.pds):
        fake.hang_next(40, seconds=0.15, store=True, method="POST")
    net.relay.hang_next(40, seconds=0.15, store=True, method="EVENT")
    rng = random.Random(11)
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"]
    for _ in range(10):
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.6, 2.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for fake in (net.x, net.masto, net.pds, net.relay):
        fake.clear_faults()
    for _ in range(4):
        time.sleep(1.2)  # leases of killed processes run out
        subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    rows = json.loads(subprocess.run([*cmd[:-1], "deliveries", "--json"], cwd=tmp_path, env=env,
                                     capture_output=True, text=True).stdout)  # fmt: skip
    for r in rows:
        assert r["state"] in ("sent", "skipped"), r
    want = {  # channel -> the reply texts, in order, of each thread
        ch: [r["text"] for r in sorted((r for r in rows if r["channel"] == ch and
                                        r["kind"] == "reply" and BILLING_SLUG in r["text"]),
                                       key=lambda r: r["part"])]
        for ch in THREADED
    }  # fmt: skip
    assert all(len(v) >= 2 for v in want.values()), want

    # X: each text once, each answering the one before it
    x = {t.text: t for t in net.x.tweets}
    assert len(x) == len(net.x.tweets)
    prev = next(t for t in net.x.tweets if BILLING in t.text and t.in_reply_to is None)
    for text in want["x"]:
        assert x[text].in_reply_to == prev.id
        prev = x[text]
    # Mastodon
    sts = net.masto.statuses()
    contents = [s["content"] for s in sts]
    assert len(contents) == len(set(contents))
    by_text = {_plain(s["content"]): s for s in sts}
    prev_id = next(str(s["id"]) for s in sts if BILLING in s["content"] and not s["in_reply_to_id"])
    for text in want["mastodon"]:
        st = by_text[_plain_text(text)]
        assert str(st["in_reply_to_id"]) == prev_id
        prev_id = str(st["id"])
    # Bluesky: no record written twice over, each reply's parent the one before
    assert net.pds.overwrites == []
    b = {r["text"]: r for r in net.pds.replies()}
    root = b[want["bluesky"][0]]["root"]
    prev_uri = root
    for text in want["bluesky"]:
        assert b[text]["parent"] == prev_uri and b[text]["root"] == root and b[text]["refs_ok"]
        prev_uri = b[text]["uri"]
    # Nostr
    n = {r["content"]: r for r in net.relay.replies()}
    nroot = n[want["nostr"][0]]["root"]
    prev_n = nroot
    for text in want["nostr"]:
        assert n[text]["reply"] == prev_n and n[text]["root"] == nroot
        prev_n = n[text]["id"]


BILLING_SLUG = "6-billing-for-a-saas-without-losing-sleep?t="


def _plain(html_text: str) -> str:
    from syndicator.textutil import html_to_text

    return " ".join(html_to_text(html_text).split())


def _plain_text(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- what each kind builds


def _reply_post(parent: ReplyRef, root: ReplyRef) -> Post:
    return Post(
        delivery_id=1, text="Chapters:\n0:00 Intro", idempotency_key="k",
        record_key="3l7q2c5ngwx2a", created_at=NOW, kind="reply",
        reply_to=parent, reply_root=root,
    )  # fmt: skip


def test_nostr_reply_tags_follow_nip10() -> None:
    author = Keys.generate().public_key().to_hex()
    root = ReplyRef("a" * 64, None, {"pubkey": author})
    deeper = ReplyRef("b" * 64, None, {"pubkey": author})
    direct = [t.to_vec() for t in reply_tags(_reply_post(root, root))]
    assert direct == [["e", "a" * 64, "", "root", author], ["p", author]]
    deep = [t.to_vec() for t in reply_tags(_reply_post(deeper, root))]
    assert deep == [
        ["e", "a" * 64, "", "root", author],
        ["e", "b" * 64, "", "reply", author],
        ["p", author],
    ]


def test_a_bluesky_reply_needs_its_parents_cid() -> None:
    root = ReplyRef("at://did:plc:x/app.bsky.feed.post/3l7q2c5ngwx2a", None, {"cid": "bafyroot"})
    parent = ReplyRef("at://did:plc:x/app.bsky.feed.post/3l7q2c5ngwx2b", None, {})
    assert reply_ref(_reply_post(root, root)) == {
        "root": {"uri": root.remote_id, "cid": "bafyroot"},
        "parent": {"uri": root.remote_id, "cid": "bafyroot"},
    }
    with pytest.raises(PermanentError, match="has no stored cid"):
        reply_ref(_reply_post(parent, root))


def test_preview_prints_the_thread_under_the_announcement(tmp_path: Path, site: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[podcast]\ntitle = "T"\nlink = "https://show.example"\nchapter_links = true\n'
        '[database]\nurl = "sqlite:///s.db"\n'
        f'[[sources]]\nname = "episodes"\ntype = "jekyll"\npath = "{site}"\nverify_audio = false\n'
        'episode_url = "{site.url}/podcast/{slug}"\n'
        '[[channels]]\nname = "x"\ntype = "twitter"\nthread = ["chapters"]\n'
    )
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg)]
    subprocess.run([*cmd, "run-once", "--dry-run"], cwd=tmp_path, capture_output=True, timeout=120)
    shown = subprocess.run(
        [*cmd, "preview", "6"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "↳ reply 1" in shown.stdout and "1:01:02 Best tips?" in shown.stdout

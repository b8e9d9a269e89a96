"""The Nostr channel against fake relays (NIP-01 over real WebSockets on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import refused_url
from fakes.nostr_relay import DUPLICATE, FakeRelay, event_id, matches
from nostr_sdk import Event, EventBuilder, Keys, Kind, Nip19Event, Tag, Timestamp
from pydantic import ValidationError
from sqlmodel import select
from websockets.sync.client import connect

from syndicator.channels.base import (
    PermanentError,
    Post,
    Progress,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.nostr import DEFAULT_LIMIT, NostrKind
from syndicator.channels.nostr.client import NostrChannel
from syndicator.channels.registry import ConfigurationError, kind, make_channel
from syndicator.config import ChannelConfig
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery

TIMEOUT = 2.0
FROZEN = datetime(2026, 11, 27, 12, 0, 5, 250000, tzinfo=UTC)
KEYS = Keys.generate()
GUEST = Keys.generate().public_key()
TEXT = (
    f"🎙 New episode: Billing, with Ayo nostr:{GUEST.to_bech32()} "
    "https://example.com/podcast/billing#notes #SaaS #Stripe #saas"
)


def post(text: str = TEXT, **kw: Any) -> Post:
    return Post(delivery_id=1, text=text, idempotency_key="k", record_key="r",
                created_at=FROZEN, **kw)  # fmt: skip


@pytest.fixture
def relay() -> Iterator[FakeRelay]:
    with FakeRelay() as fake:
        yield fake


@pytest.fixture
def relay2() -> Iterator[FakeRelay]:
    with FakeRelay() as fake:
        yield fake


def channel(
    monkeypatch: pytest.MonkeyPatch,
    relays: list[str],
    *,
    nsec: str | None = None,
    timeout: float = TIMEOUT,
    **cfg: Any,
) -> NostrChannel:
    monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", nsec or KEYS.secret_key().to_bech32())
    conf = ChannelConfig.model_validate({"name": "zap", "type": "nostr", "relays": relays, **cfg})
    ch = make_channel(conf, timeout=timeout)
    assert isinstance(ch, NostrChannel)
    return ch


def signed(ch: NostrChannel, p: Post | None = None) -> Post:
    """A post whose note an earlier attempt signed and recorded (Progress, no row)."""
    p = p or post()
    return replace(p, progress=Progress({"event": ch.sign(p)}))


# --- sent -----------------------------------------------------------------------------------


def test_a_signed_note_with_t_and_p_tags_and_the_frozen_time(relay: FakeRelay, monkeypatch):
    ch = channel(monkeypatch, [relay.ws_url])
    p = post()
    sent = ch.send(p)
    [note] = relay.notes()
    assert note == p.progress.get("event")  # exactly the recorded bytes went out
    assert note["content"] == TEXT and note["kind"] == 1
    assert note["created_at"] == int(FROZEN.timestamp())
    assert note["pubkey"] == KEYS.public_key().to_hex()
    assert note["tags"] == [["t", "saas"], ["t", "stripe"], ["p", GUEST.to_hex()]]
    assert event_id(note) == note["id"] and Event.from_json(json.dumps(note)).verify()
    assert sent.remote_id == note["id"]
    nevent = Nip19Event.from_nostr_uri(sent.remote_url or "")
    assert nevent.event_id().to_hex() == note["id"]
    assert nevent.author().to_hex() == KEYS.public_key().to_hex()  # type: ignore[union-attr]
    assert [str(r) for r in nevent.relays()] == [relay.ws_url]


def test_the_id_does_not_depend_on_when_it_is_signed(monkeypatch, relay: FakeRelay) -> None:
    ch = channel(monkeypatch, [relay.ws_url])
    first, second = ch.sign(post()), ch.sign(post())
    assert first["id"] == second["id"]  # the frozen text and time make the id
    assert first["sig"] != second["sig"]  # BIP-340 signing is randomised


def test_resending_is_a_duplicate_never_a_second_note(relay: FakeRelay, monkeypatch) -> None:
    ch = channel(monkeypatch, [relay.ws_url])
    p = post()
    assert ch.send(p).remote_id == ch.send(p).remote_id
    assert len(relay.requests("EVENT")) == 2 and len(relay.notes()) == 1


def test_min_relays_met_the_others_are_warnings(
    relay: FakeRelay, relay2: FakeRelay, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    down = refused_url("ws")
    ch = channel(monkeypatch, [relay.ws_url, relay2.ws_url, down], min_relays=2)
    with caplog.at_level(logging.WARNING, logger="syndicator.channels.nostr"):
        sent = ch.send(post())
    assert isinstance(sent, Sent)
    assert len(relay.notes()) == len(relay2.notes()) == 1
    [warning] = [r.getMessage() for r in caplog.records]
    assert down in warning and "connection refused" in warning and "2 of 3" in warning


def test_a_duplicate_refusal_counts_as_ok(relay: FakeRelay, monkeypatch) -> None:
    relay.fail_next(body=DUPLICATE)  # some relays say OK false for a duplicate
    ch = channel(monkeypatch, [relay.ws_url])
    assert ch.send(post()).remote_id


# --- transient and permanent ------------------------------------------------------------------


def test_no_relay_reachable_is_transient(monkeypatch) -> None:
    ch = channel(monkeypatch, [refused_url("ws"), refused_url("ws")])
    with pytest.raises(TransientError) as err:
        ch.send(post())
    assert "0 of 2 relays, 1 needed" in err.value.message
    assert "could not connect" in err.value.message


def test_rate_limited_is_transient(relay: FakeRelay, monkeypatch) -> None:
    relay.rate_limit_next()
    ch = channel(monkeypatch, [relay.ws_url])
    with pytest.raises(TransientError, match="rate-limited"):
        ch.send(post())
    assert relay.notes() == []
    assert ch.send(post()).remote_id and len(relay.notes()) == 1


def test_every_relay_refusing_is_permanent(relay: FakeRelay, relay2: FakeRelay, monkeypatch):
    relay.fail_next(body="blocked: not on the allow list")
    relay2.fail_next(body="restricted: paid relay")
    ch = channel(monkeypatch, [relay.ws_url, relay2.ws_url])
    with pytest.raises(PermanentError) as err:
        ch.send(post())
    assert "blocked: not on the allow list" in err.value.message
    assert "restricted: paid relay" in err.value.message
    assert "min_relays" in err.value.message


def test_min_relays_out_of_reach_is_permanent(relay: FakeRelay, relay2: FakeRelay, monkeypatch):
    relay2.fail_next(body="blocked: no")
    ch = channel(monkeypatch, [relay.ws_url, relay2.ws_url], min_relays=2)
    with pytest.raises(PermanentError, match="1 of 2 relays, 2 needed"):
        ch.send(post())


def test_a_damaged_recorded_note_is_permanent(relay: FakeRelay, monkeypatch) -> None:
    ch = channel(monkeypatch, [relay.ws_url])
    bad = {**ch.sign(post()), "content": "edited after signing"}
    with pytest.raises(PermanentError, match="damaged"):
        ch.send(replace(post(), progress=Progress({"event": bad})))
    assert relay.requests("EVENT") == []


def test_the_fake_relay_refuses_bad_ids_and_signatures(relay: FakeRelay) -> None:
    ev = json.loads(EventBuilder(Kind(1), "hi").finalize(KEYS).as_json())
    forged = {**ev, "sig": ev["sig"][:-2] + ("00" if ev["sig"][-2:] != "00" else "11")}
    edited = {**ev, "content": "HI"}
    with connect(relay.ws_url) as ws:
        answers = []
        for e in (forged, edited, ev, ev):
            ws.send(json.dumps(["EVENT", e]))
            answers.append(json.loads(ws.recv(timeout=5)))
    assert answers[0][2] is False and answers[0][3] == "invalid: bad signature"
    assert answers[1][2] is False and answers[1][3] == "invalid: event id does not match"
    assert answers[2] == ["OK", ev["id"], True, ""]
    assert answers[3] == ["OK", ev["id"], True, DUPLICATE]
    assert list(relay.events) == [ev["id"]]
    assert matches(ev, {"kinds": [1], "authors": [ev["pubkey"]]})
    assert not matches(ev, {"kinds": [1], "#e": ["0" * 64]})


# --- unknown, reconcile, resend --------------------------------------------------------------


def test_dropped_after_storing_is_unknown_and_reconcile_finds_it(
    relay: FakeRelay, monkeypatch
) -> None:
    relay.drop_next(store=True, method="EVENT")
    ch = channel(monkeypatch, [relay.ws_url])
    p = post()
    with pytest.raises(UnknownOutcome, match="closed the connection without an OK"):
        ch.send(p)
    found = ch.reconcile(p)
    assert found is not None and found.remote_id == p.progress.get("event")["id"]
    assert len(relay.notes()) == 1


def test_dropped_before_storing_reconciles_to_none_and_resends_the_same_event(
    relay: FakeRelay, monkeypatch
) -> None:
    relay.drop_next(store=False, method="EVENT")
    ch = channel(monkeypatch, [relay.ws_url])
    p = post()
    with pytest.raises(UnknownOutcome):
        ch.send(p)
    recorded = p.progress.get("event")
    assert ch.reconcile(p) is None
    ch.send(p)
    [note] = relay.notes()
    assert note["sig"] == recorded["sig"]  # signed once, sent as recorded


def test_a_hanging_relay_is_unknown_within_the_timeout(relay: FakeRelay, monkeypatch) -> None:
    relay.hang_next(seconds=5, store=True, method="EVENT")
    ch = channel(monkeypatch, [relay.ws_url], timeout=0.5)
    started = time.monotonic()
    p = post()
    with pytest.raises(UnknownOutcome, match=r"no OK within 0\.5s"):
        ch.send(p)
    assert time.monotonic() - started < 3
    assert ch.reconcile(p) is not None  # it had stored it


def test_reconcile_needs_min_relays(relay: FakeRelay, relay2: FakeRelay, monkeypatch) -> None:
    ch = channel(monkeypatch, [relay.ws_url, relay2.ws_url], min_relays=2)
    p = signed(ch)
    relay.add(p.progress.get("event"))  # only one relay has it
    assert ch.reconcile(p) is None
    relay2.add(p.progress.get("event"))
    assert ch.reconcile(p) is not None
    assert ch.reconcile(post()) is None  # never signed: never sent
    assert len(relay.requests("REQ")) == 2  # the unsigned post asked no relay


# --- limit, counting, config -----------------------------------------------------------------


def test_limit_is_configurable_with_no_hard_limit(relay: FakeRelay, monkeypatch) -> None:
    assert channel(monkeypatch, [relay.ws_url]).limit() == DEFAULT_LIMIT == 1000
    assert channel(monkeypatch, [relay.ws_url], limit=5000).limit() == 5000
    k = kind("nostr")
    assert k.default_limit == 1000 and k.unknown_policy == "idempotent"
    assert k.count("🎙 é https://example.com") == 23  # code points


def test_config_errors_name_the_keys(monkeypatch) -> None:
    def problem(**over: Any) -> str:
        with pytest.raises(ValidationError) as err:
            ChannelConfig.model_validate({"name": "zap", "type": "nostr", **over})
        return str(err.value)

    assert "relays" in problem(relays=["https://relay.example.org"])
    assert "only for a relay on this machine" in problem(relays=["ws://relay.example.org"])
    assert "min_relays = 3 but only 2 relays" in problem(
        relays=["wss://a.example", "wss://b.example"], min_relays=3
    )
    assert "min_relays" in problem(relays=["wss://a.example"], min_relays=0)
    assert "relais" in problem(relais=["wss://a.example"])  # unknown key, named
    conf = ChannelConfig.model_validate({"name": "zap", "type": "nostr"})
    monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", KEYS.secret_key().to_hex())
    with pytest.raises(ConfigurationError, match="needs `relays`"):
        make_channel(conf)


def test_secret_nsec_or_hex_and_a_bad_one_is_named_not_shown(monkeypatch) -> None:
    conf = ChannelConfig.model_validate(
        {"name": "zap", "type": "nostr", "relays": ["wss://relay.example.org"]}
    )
    monkeypatch.delenv("SYNDICATOR_ZAP_NSEC", raising=False)
    with pytest.raises(ConfigurationError, match="SYNDICATOR_ZAP_NSEC"):
        make_channel(conf)
    monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", "nsec1-not-a-key-s3cr3t")
    with pytest.raises(ConfigurationError) as err:
        make_channel(conf)
    assert "SYNDICATOR_ZAP_NSEC is not a Nostr private key" in err.value.message
    assert "s3cr3t" not in err.value.message
    k = kind("nostr")
    monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", KEYS.secret_key().to_hex())
    hex_account = k.account(conf)
    monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", KEYS.secret_key().to_bech32())
    assert k.account(conf) == hex_account == KEYS.public_key().to_hex()  # never the secret
    assert k.endpoint(conf) == "wss://relay.example.org"


# --- handles -----------------------------------------------------------------------------


def test_handles_are_npubs_and_mentions_are_nostr_uris() -> None:
    k = kind("nostr")
    npub = GUEST.to_bech32()
    for given in (npub, f"nostr:{npub}", GUEST.to_hex(), f" @{npub} "):
        assert k.handle(given) == npub
    assert k.handle("ayo@example.com") == ""  # NIP-05 needs the network: plain name
    assert k.handle("npub1notakey") == "" and k.handle(None) == ""
    assert k.mention(npub) == f"nostr:{npub}" and k.mention("") == ""
    assert k.has_handles and isinstance(k, NostrKind)


# --- counts and socialInteract -------------------------------------------------------------


def _reply(keys: Keys, kind_: int, content: str, target: str) -> dict[str, Any]:
    ev = EventBuilder(Kind(kind_), content).tags([Tag.parse(["e", target])])
    ts = Timestamp.from_secs(int(FROZEN.timestamp()) + 60)
    return json.loads(ev.custom_created_at(ts).finalize(keys).as_json())


def test_read_counts_from_every_relay_each_event_once(
    relay: FakeRelay, relay2: FakeRelay, monkeypatch
) -> None:
    ch = channel(monkeypatch, [relay.ws_url, relay2.ws_url, refused_url("ws")])
    note_id = ch.send(post()).remote_id or ""
    fans = [Keys.generate() for _ in range(4)]
    like, boo = _reply(fans[0], 7, "+", note_id), _reply(fans[1], 7, "-", note_id)
    heart, answer = _reply(fans[2], 7, "🔥", note_id), _reply(fans[3], 1, "Great one!", note_id)
    repost = _reply(fans[0], 6, "", note_id)
    elsewhere = _reply(fans[1], 7, "+", "f" * 64)
    for ev in (like, boo, answer, repost, elsewhere):
        relay.add(ev)
    for ev in (like, heart, answer):
        relay2.add(ev)  # seen on both relays: counted once
    forged = {**_reply(fans[2], 7, "+", note_id), "sig": "0" * 128}
    relay2.events[forged["id"]] = forged  # a lying relay can't inflate the count
    assert ch.read_counts(note_id) == {"likes": 2, "replies": 1, "reposts": 1}
    [req] = [r for r in relay.requests("REQ")]
    filters = json.loads(req.body)[2:]
    assert [f["kinds"] for f in filters] == [[7], [1], [6]]
    assert all(f["#e"] == [note_id] for f in filters)


def test_read_counts_errors(relay: FakeRelay, monkeypatch) -> None:
    ch = channel(monkeypatch, [refused_url("ws")])
    with pytest.raises(TransientError, match="no relay answered"):
        ch.read_counts("a" * 64)
    with pytest.raises(PermanentError):
        ch.read_counts("https://not-an-id")
    relay.hang_next(seconds=5, method="REQ")
    slow = channel(monkeypatch, [relay.ws_url], timeout=0.5)
    with pytest.raises(TransientError, match="no relay answered"):
        slow.read_counts("a" * 64)


def test_social_interact_is_the_nevent_and_the_npub(relay: FakeRelay, monkeypatch) -> None:
    ch = channel(monkeypatch, [relay.ws_url])
    sent = ch.send(post())
    k = kind("nostr")
    conf = ChannelConfig.model_validate({"name": "zap", "type": "nostr", "relays": [relay.ws_url]})
    assert k.interact_protocol == "nostr"  # type: ignore[attr-defined]
    got = k.social_interact(conf, sent.remote_id, sent.remote_url)  # type: ignore[attr-defined]
    assert got == {"uri": sent.remote_url, "accountId": KEYS.public_key().to_bech32()}
    rebuilt = k.social_interact(conf, sent.remote_id, None)  # type: ignore[attr-defined]
    assert rebuilt["accountId"] == got["accountId"]
    assert Nip19Event.from_nostr_uri(rebuilt["uri"]).event_id().to_hex() == sent.remote_id
    assert k.social_interact(conf, None, None) is None  # type: ignore[attr-defined]


# --- end to end: `syndicator run-once` --------------------------------------------------------


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYNDICATOR_ZAP_NSEC": KEYS.secret_key().to_bech32()}
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_run_once_signs_once_and_mentions_the_guests_npub(
    tmp_path: Path, site: Path, relay: FakeRelay
) -> None:
    day = datetime.now(UTC) - timedelta(hours=2)
    (site / "_posts" / "podcast" / f"{day:%Y-%m-%d}-200-zaps.md").write_text(
        f'---\ntitle: "Zaps and Podcasts"\ndate: {day:%Y-%m-%d %H:%M:%S} +0000\n'
        f'category: "podcast"\nguest: "Ayo"\nguest_nostr: "{GUEST.to_bech32()}"\n'
        'tags: ["lets-encrypt", "nostr"]\nmp3_bytes: "100"\nmp3_duration: "2:00"\n---\nBody.\n'
    )
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///s.db"\n[announce]\nretry_base = "1s"\n'
        f'[[sources]]\nname = "episodes"\ntype = "jekyll"\nverify_audio = false\npath = "{site}"\n'
        'episode_url = "{site.url}/podcast/{slug}"\n'
        f'[[channels]]\nname = "zap"\ntype = "nostr"\nrelays = ["{relay.ws_url}"]\n'
        'timeout = "2s"\n'
    )
    relay.drop_next(store=False, method="EVENT", path="Zaps")  # the first try is lost
    first = _cli(cfg, "run-once")
    assert first.returncode in (0, 1), first.stderr
    with session(upgrade(f"sqlite:///{tmp_path / 's.db'}")) as s:
        [row] = [d for d in s.exec(select(Delivery)).all() if "Zaps" in d.text]
    assert row.state == "unknown"
    assert not any("Zaps" in n["content"] for n in relay.notes())
    signed = row.payload["progress"]["event"]  # recorded before the relay was contacted
    for _ in range(10):  # until the back-off lets the row go again
        time.sleep(1.2)
        _cli(cfg, "run-once")
        if any("Zaps" in n["content"] for n in relay.notes()):
            break
    [note] = [n for n in relay.notes() if "Zaps" in n["content"]]
    assert note == signed  # the same signature: signed once, sent as recorded
    assert f", with nostr:{GUEST.to_bech32()}." in note["content"]  # clients show the name
    assert "https://" in note["content"] and "#LetsEncrypt #nostr" in note["content"]
    assert ["p", GUEST.to_hex()] in note["tags"]
    assert ["t", "letsencrypt"] in note["tags"] and ["t", "nostr"] in note["tags"]
    rows = json.loads(_cli(cfg, "deliveries", "--json").stdout)
    [out] = [r for r in rows if r["channel"] == "zap" and "Zaps" in r["text"]]
    assert out["state"] == "sent" and out["remote_id"] == note["id"]
    _cli(cfg, "run-once")
    assert len([n for n in relay.notes() if "Zaps" in n["content"]]) == 1


def test_the_relays_faults_are_driven_over_http_from_another_process(monkeypatch) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "--only", "nostr", "--stdin"],
        cwd=Path(__file__).resolve().parents[1], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())["nostr"]
        fault = {"kind": "status", "method": "EVENT", "body": "blocked: by hand"}
        r = httpx.post(info["url"] + "/_fake/faults", json=fault)
        assert r.status_code == 200
        monkeypatch.setenv("SYNDICATOR_ZAP_NSEC", info["env"]["SYNDICATOR_NOSTR_NSEC"])
        conf = ChannelConfig.model_validate(
            {"name": "zap", "type": "nostr", "relays": info["relays"]}
        )
        ch = make_channel(conf, timeout=TIMEOUT)
        with pytest.raises(PermanentError, match="blocked: by hand"):
            ch.send(post())
        assert ch.send(post()).remote_id
        got = httpx.get(info["url"] + "/_fake/received").json()
        assert [(g["method"], g["fault"]) for g in got] == [("EVENT", "status"), ("EVENT", None)]
    finally:
        proc.communicate(input="", timeout=10)


def _claimed_row(sqlite_url: str, payload: dict[str, Any]) -> tuple[Any, int]:
    """A planned Nostr delivery, claimed by "me"."""
    from syndicator.announce import sender

    engine = upgrade(sqlite_url)
    now = datetime.now(UTC)
    with session(engine, write=True) as s:
        row = Delivery(key="announce:0:zap", channel="zap", text=TEXT, frozen_at=FROZEN,
                       planned_at=now, updated_at=now, payload=payload)  # fmt: skip
        s.add(row)
        s.flush()
        row_id = row.id or 0
    assert sender.claim(engine, row_id, "me", now, timedelta(minutes=1)) == "planned"
    return engine, row_id


def _row(engine: Any, row_id: int) -> Delivery:
    from syndicator.store import deliveries

    with session(engine) as s:
        row = deliveries.by_id(s, row_id)
    assert row is not None
    return row


def test_the_note_is_recorded_on_the_row_under_the_lease_before_any_relay(
    sqlite_url: str, relay: FakeRelay, monkeypatch
) -> None:
    from syndicator.announce import sender

    engine, row_id = _claimed_row(sqlite_url, {"url": "https://e.example/1"})
    ch = channel(monkeypatch, [relay.ws_url])
    relay.drop_next(store=False, method="EVENT")  # the first answer is lost, nothing stored
    with pytest.raises(UnknownOutcome):
        ch.send(sender.to_post(_row(engine, row_id), sender._progress_saver(engine, row_id, "me")))
    stored = _row(engine, row_id)
    assert stored.payload["url"] == "https://e.example/1"  # the rest of the payload is kept
    recorded = stored.payload["progress"]["event"]
    assert recorded["content"] == TEXT and relay.notes() == []
    # the next attempt (a new process: the row read again) sends the recorded note as is
    again = sender.to_post(stored, sender._progress_saver(engine, row_id, "me"))
    assert again.progress.get("event") == recorded
    assert ch.reconcile(again) is None
    assert ch.send(again).remote_id == recorded["id"]
    assert relay.notes() == [recorded]
    assert _row(engine, row_id).payload["progress"] == {"event": recorded}  # not re-signed


def test_without_the_lease_nothing_is_recorded_and_nothing_sent(
    sqlite_url: str, relay: FakeRelay, monkeypatch
) -> None:
    from syndicator.announce import sender

    engine, row_id = _claimed_row(sqlite_url, {"url": "https://e.example/1"})
    ch = channel(monkeypatch, [relay.ws_url])
    # another process took the row: record() refuses, so no relay is contacted
    lost = sender._progress_saver(engine, row_id, "someone-else")
    with pytest.raises(TransientError, match="no longer holds the delivery"):
        ch.send(sender.to_post(_row(engine, row_id), lost))
    assert relay.requests("EVENT") == []
    assert _row(engine, row_id).payload == {"url": "https://e.example/1"}


def test_a_row_frozen_before_progress_sends_its_frozen_note(
    sqlite_url: str, relay: FakeRelay, monkeypatch
) -> None:
    from syndicator.announce import sender

    ch = channel(monkeypatch, [relay.ws_url])
    old = ch.sign(post())  # what the former `freeze` hook stored as payload "frozen"
    engine, row_id = _claimed_row(sqlite_url, {"frozen": {"id": old["id"], "event": old}})
    p = sender.to_post(_row(engine, row_id), sender._progress_saver(engine, row_id, "me"))
    assert ch.send(p).remote_id == old["id"]
    [note] = relay.notes()
    assert note["sig"] == old["sig"]  # the note signed back then, not a new signature


def test_marked_not_sent_a_damaged_note_is_signed_and_sent_anew(
    sqlite_url: str, relay: FakeRelay, monkeypatch
) -> None:
    from syndicator.announce import manual, sender

    ch = channel(monkeypatch, [relay.ws_url])
    damaged = {**ch.sign(post()), "sig": "00" * 64}
    engine, row_id = _claimed_row(
        sqlite_url, {"url": "https://e.example/1", "progress": {"event": damaged}}
    )
    with pytest.raises(PermanentError, match="mark it not sent"):
        ch.send(sender.to_post(_row(engine, row_id), sender._progress_saver(engine, row_id, "me")))
    with session(engine, write=True) as s:  # what the sender records for that outcome
        row = s.get(Delivery, row_id)
        assert row is not None
        row.state, row.lease_owner, row.lease_until = "failed", None, None
        s.add(row)
    now = datetime.now(UTC)
    manual.mark_unknown(engine, row_id, now, was_sent=False)
    stored = _row(engine, row_id)
    assert stored.state == "retrying" and "progress" not in stored.payload
    assert stored.payload["url"] == "https://e.example/1"  # the rest of the payload is kept
    assert sender.claim(engine, row_id, "me", now, timedelta(minutes=1)) == "retrying"
    again = sender.to_post(_row(engine, row_id), sender._progress_saver(engine, row_id, "me"))
    sent = ch.send(again)
    [note] = relay.notes()
    assert note["id"] == sent.remote_id and note["sig"] != damaged["sig"]

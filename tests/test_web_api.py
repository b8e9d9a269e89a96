"""The JSON API, /healthz, /metrics and live updates (server-sent events)."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from test_web_support import (
    PASSWORD,
    XSS,
    Site,
    client,
    csrf_of,
    delivery_state,
    heartbeat,
    login,
    running,
    web_settings,
    write,
)

from syndicator.store.db import session
from syndicator.store.models import Delivery, Source
from syndicator.store.views import delivery_dict, episode_dict
from syndicator.timeutil import utcnow


def test_api_reads_speak_the_cli_shapes(web: Site) -> None:
    with client(web.server) as c:
        status = c.get("/api/status").json()
        assert {"now", "daemon", "sources", "deliveries", "feeds", "problems", "pass"} <= set(
            status
        )
        assert status["deliveries"]["masto"] == {"failed": 1, "sent": 1}
        assert status["daemon"]["alive"] is False

        eps = c.get("/api/episodes", params={"per_page": 1, "page": 2}).json()
        assert eps["total"] == 2 and eps["pages"] == 2 and len(eps["items"]) == 1
        item = eps["items"][0]
        assert item["title"] == "Shipping it with Rust"
        assert item["deliveries"] == {"masto": "sent", "sky": "planned", "hook": "skipped"}
        with session(web.engine) as s:
            from syndicator.store.models import Episode

            expected = episode_dict(s.get(Episode, web.ids["plain"]))
        assert {k: v for k, v in item.items() if k != "deliveries"} == expected

        found = c.get("/api/episodes", params={"q": "alert"}).json()
        assert [e["title"] for e in found["items"]] == [XSS]
        assert c.get("/api/episodes", params={"state": "unknown"}).json()["total"] == 1

        one = c.get(f"/api/episodes/{web.ids['xss']}").json()
        assert one["episode"]["guid"] == "https://show.example/ep1"
        assert one["episode"]["duration_seconds"] == 3723
        assert [d["channel"] for d in one["deliveries"]] == ["hook", "masto", "sky"]
        with session(web.engine) as s:
            want = delivery_dict(s.get(Delivery, web.ids["failed"]), "https://show.example/ep1")
        got = next(d for d in one["deliveries"] if d["id"] == web.ids["failed"])
        assert {k: got[k] for k in want} == want
        assert c.get("/api/episodes/4242").status_code == 404

        dl = c.get("/api/deliveries", params={"kind": "ping"}).json()
        assert dl["total"] == 1 and dl["items"][0]["target"] == "https://pubsubhubbub.example/"
        assert c.get("/api/deliveries", params={"state": "sent"}).json()["total"] == 3

        probs = c.get("/api/problems").json()
        assert probs[0]["location"] == "_posts/2021-01-01-bad.md" and probs[0]["line"] == 3


def test_api_channels_hold_no_secret(web: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    with client(web.server) as c:
        body = c.get("/api/channels").text
        rows = json.loads(body)
        assert [r["name"] for r in rows] == ["masto", "sky", "hook"]
        masto = rows[0]
        assert masto["endpoint"] == "https://social.example" and masto["dry_run"] is True
        assert masto["filters"]["tags_exclude"] == ["private"]
        assert masto["pacing"]["max_per_hour"] == 4
        assert masto["counts"] == {"failed": 1, "sent": 1}
        assert rows[2]["endpoint"] == "discord://…"
        assert "secret-webhook-token" not in body


def test_api_actions_need_the_csrf_header(web: Site) -> None:
    with client(web.server) as c:
        url = f"/api/deliveries/{web.ids['failed']}/retry"
        assert c.post(url).status_code == 403
        assert c.post(url, headers={"X-CSRF-Token": "x"}).status_code == 403
        r = c.post(url, headers={"X-CSRF-Token": csrf_of(c)})
        assert r.status_code == 200 and r.json()["delivery"]["state"] == "retrying"

        r = c.post(
            f"/api/deliveries/{web.ids['planned']}/skip",
            headers={"X-CSRF-Token": csrf_of(c)},
            json={"reason": "wrong guest name"},
        )
        assert r.json()["delivery"]["skip_reason"] == "wrong guest name"

        r = c.post(
            f"/api/deliveries/{web.ids['unknown']}/mark-not-sent",
            headers={"X-CSRF-Token": csrf_of(c)},
        )
        assert r.json()["delivery"]["state"] == "retrying"
        r = c.post(
            f"/api/deliveries/{web.ids['sent']}/mark-sent", headers={"X-CSRF-Token": csrf_of(c)}
        )
        assert r.status_code == 409 and "not unknown" in r.json()["error"]

        r = c.post(
            f"/api/episodes/{web.ids['plain']}/announce",
            headers={"X-CSRF-Token": csrf_of(c)},
            json={"channel": "hook"},
        )
        assert r.status_code == 200 and [d["channel"] for d in r.json()["deliveries"]] == ["hook"]
        assert delivery_state(web.engine, web.ids["skipped"]) == "planned"
        r = c.post(
            f"/api/episodes/{web.ids['plain']}/announce",
            headers={"X-CSRF-Token": csrf_of(c)},
            json={"channel": "nope"},
        )
        assert r.status_code == 409 and "no channel named" in r.json()["error"]

        r = c.post(
            f"/api/episodes/{web.ids['plain']}/preview",
            headers={"X-CSRF-Token": csrf_of(c)},
            json={"channel": "sky"},
        )
        assert [p["channel"] for p in r.json()["previews"]] == ["sky"]


def test_openapi_schema_is_served_behind_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path)
    with running(settings) as server, client(server) as c:
        assert c.get("/api/openapi.json").status_code == 401
        login(c)
        schema = c.get("/api/openapi.json").json()
        paths = set(schema["paths"])
        for p in ("/api/status", "/api/episodes", "/api/episodes/{episode_id}",
                  "/api/deliveries", "/api/problems", "/api/channels", "/api/pass",
                  "/api/deliveries/{delivery_id}/{action}"):  # fmt: skip
            assert p in paths, p
        assert "/" not in paths and "/login" not in paths  # pages aren't API


# ---------------------------------------------------------------- health


def test_healthz_follows_the_daemon_heartbeat(web: Site) -> None:
    with client(web.server) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and "set-cookie" not in r.headers
        assert r.json()["store"] == "ok" and "no daemon has ever" in r.json()["reason"]

        heartbeat(web.engine, timedelta(seconds=1))  # fresh (stale after 3 x 2 s)
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json()["ok"] is True
        assert r.json()["daemon"]["alive"] is True

        heartbeat(web.engine, timedelta(seconds=30))  # stale
        r = c.get("/healthz")
        assert r.status_code == 503 and "stale after 6 s" in r.json()["reason"]
        assert c.head("/healthz").status_code == 503


def test_healthz_says_when_the_store_is_gone(web: Site) -> None:
    from sqlalchemy import text

    with write(web.engine) as s:
        s.execute(text("DROP TABLE heartbeats"))
    with client(web.server) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and "store does not answer" in r.json()["reason"]


# ---------------------------------------------------------------- metrics


def test_metrics_from_the_store(web: Site) -> None:
    with client(web.server) as c:
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
    lines = set(text.splitlines())
    for line in (
        'syndicator_source_polls_total{source="site",type="jekyll"} 7.0',
        'syndicator_source_poll_errors_total{source="friends",type="feed"} 2.0',
        'syndicator_source_consecutive_errors{source="friends"} 2.0',
        'syndicator_deliveries{channel="masto",kind="announce",state="failed"} 1.0',
        'syndicator_deliveries{channel="directory",kind="ping",state="sent"} 1.0',
        'syndicator_send_latency_seconds_bucket{channel="hook",le="0.5"} 1.0',
        'syndicator_send_latency_seconds_bucket{channel="masto",le="2.5"} 0.0',
        'syndicator_send_latency_seconds_bucket{channel="masto",le="5.0"} 1.0',
        'syndicator_send_latency_seconds_count{channel="masto"} 1.0',
        'syndicator_send_latency_seconds_sum{channel="hook"} 0.42',
        'syndicator_feed_build_seconds{feed="main"} 0.125',
        'syndicator_feed_size_bytes{feed="main"} 52000.0',
        'syndicator_feed_check_problems{feed="main"} 1.0',
        'syndicator_episodes{source="site"} 2.0',
        'syndicator_problems_open{severity="error"} 1.0',
        "syndicator_daemon_alive 0.0",
        "syndicator_web_pass_running 0.0",
    ):
        assert line in lines, line


def test_metrics_access_with_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    monkeypatch.setenv("SYNDICATOR_WEB_METRICS_TOKEN", "scrape-token-123")
    settings = web_settings(tmp_path)
    with running(settings) as server, client(server) as c:
        # a scraper on this machine, talking to us directly
        assert c.get("/metrics").status_code == 200
        # through a proxy (the request carries X-Forwarded-For): token or login needed
        fwd = {"X-Forwarded-For": "198.51.100.4"}
        r = c.get("/metrics", headers=fwd)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert (
            c.get("/metrics", headers={**fwd, "Authorization": "Bearer wrong"}).status_code == 401
        )
        ok = c.get("/metrics", headers={**fwd, "Authorization": "Bearer scrape-token-123"})
        assert ok.status_code == 200 and "syndicator_daemon_alive" in ok.text
        login(c)
        assert c.get("/metrics", headers=fwd).status_code == 200


# ---------------------------------------------------------------- live updates


def _listen(url: str, cookies: dict[str, str], out: queue.Queue, stop: threading.Event) -> None:
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=30.0), cookies=cookies) as c,
            c.stream("GET", url) as r,
        ):
            out.put(("status", r.status_code, r.headers.get("content-type")))
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.put((event, json.loads(line[6:]), None))
                if stop.is_set():
                    return
    except Exception as exc:  # surfaced by the test through the queue
        out.put(("error", repr(exc), None))


def _next_event(q: queue.Queue, name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kind, data, _ = q.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            break
        if kind == "error":
            raise AssertionError(data)
        if kind == name:
            return data
    raise AssertionError(f"no {name!r} event within {timeout} s")


def test_events_tell_the_page_when_the_store_changes(web: Site) -> None:
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    t = threading.Thread(
        target=_listen, args=(web.server.url + "/events", {}, q, stop), daemon=True
    )
    t.start()
    try:
        kind, status, ctype = q.get(timeout=10)
        assert (kind, status) == ("status", 200) and ctype.startswith("text/event-stream")
        _next_event(q, "hello", 5)
        time.sleep(1.2)  # let the poller take its first fingerprint

        # the daemon (simulated) sends a delivery: the page hears of it
        with write(web.engine) as s:
            d = s.get(Delivery, web.ids["planned"])
            d.state, d.updated_at = "sent", utcnow()
            s.add(d)
        change = _next_event(q, "change", 5)
        assert "deliveries" in change["changed"]

        # a source is polled
        with write(web.engine) as s:
            src = s.exec(select(Source).where(Source.name == "site")).one()
            src.last_poll_at, src.polls = utcnow(), src.polls + 1
            s.add(src)
        change = _next_event(q, "change", 5)
        assert "sources" in change["changed"]

        # an action through the page is announced at once
        with client(web.server) as c:
            c.post(
                f"/api/deliveries/{web.ids['failed']}/retry", headers={"X-CSRF-Token": csrf_of(c)}
            )
        _next_event(q, "change", 3)
    finally:
        stop.set()

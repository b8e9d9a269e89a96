"""The daemon as a subprocess against servers on 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import daemon_support as d
from tests.fakes.webhook import FakeWebhook

pytestmark = pytest.mark.timeout(120)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S +0000")


def _texts(hook: FakeWebhook) -> list[str]:
    return [b["message"] if isinstance(b, dict) else str(b) for b in hook.bodies("/announce")]


@pytest.fixture
def hook() -> FakeWebhook:
    with FakeWebhook() as h:
        yield h  # type: ignore[misc]


@contextmanager
def _daemon(cfg: Path, hook: FakeWebhook, first_posts: int = 2) -> Iterator[subprocess.Popen[str]]:
    """`syndicator run`, alive and past its first pass (the example's recent episodes)."""
    proc = d.start(cfg, "run")
    try:
        assert d.wait(lambda: _alive(cfg), 30), "daemon never became alive"
        assert hook.wait_for(lambda h: len(h.posts("/announce")) >= first_posts, 20)
        yield proc
    finally:
        if proc.poll() is None:
            d.stop(proc)


def _alive(cfg: Path) -> bool:
    try:
        return bool(d.status(cfg)["daemon"]["alive"])
    except Exception:
        return False


def test_new_post_is_announced_at_once_and_sigterm_exits(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    proc = d.start(cfg, "run")
    try:
        assert d.wait(lambda: _alive(cfg), 30), "daemon never became alive"
        # the first pass announces the two recent example episodes
        assert hook.wait_for(lambda h: len(h.posts("/announce")) >= 2, 20)
        n = len(hook.posts("/announce"))
        written = time.monotonic()
        d.post(site, 50, "Fresh Off The Press", _iso(datetime.now(UTC) - timedelta(minutes=1)))
        assert hook.wait_for(lambda h: len(h.posts("/announce")) >= n + 1, 10)
        took = time.monotonic() - written
        assert "Fresh Off The Press" in _texts(hook)[-1]
        assert took < 5, f"pickup took {took:.1f}s"
        st = d.status(cfg)["daemon"]
        assert st["alive"] and st["next_pass"]
        t0 = time.monotonic()
        assert d.stop(proc, signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not d.status(cfg)["daemon"]["alive"]


def test_future_dated_post_goes_out_at_its_time(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    with _daemon(cfg, hook):
        at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        d.post(site, 60, "Scheduled For Later", _iso(at))
        time.sleep(3)
        assert not any("Scheduled For Later" in t for t in _texts(hook)), "sent before its time"
        assert hook.wait_for(lambda h: any("Scheduled For Later" in t for t in _texts(h)), 15)
        arrived = hook.posts("/announce")[-1].at
        assert arrived >= at.timestamp() - 0.5
        assert arrived <= at.timestamp() + 5


def test_run_once_beside_the_daemon_sends_nothing_twice(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    with _daemon(cfg, hook):
        now = datetime.now(UTC) - timedelta(minutes=1)
        for i in range(5):
            d.post(site, 70 + i, f"Parallel Episode {i}", _iso(now))
            d.cli(cfg, "run-once")
        titles = [f"Parallel Episode {i}" for i in range(5)]
        assert hook.wait_for(lambda h: all(any(t in x for x in _texts(h)) for t in titles), 20)
        d.cli(cfg, "run-once")
        time.sleep(1)
        texts = _texts(hook)
        for t in titles:
            assert sum(t in x for x in texts) == 1, t
        assert len(texts) == len(set(texts))


def test_two_daemons_one_leads_and_the_other_takes_over(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    a = d.start(cfg, "run")
    assert d.wait(lambda: _alive(cfg), 30)
    b = d.start(cfg, "run")
    try:
        assert d.wait(lambda: d.status(cfg)["daemon"]["processes"] == 2, 20)
        leader = d.status(cfg)["daemon"]["owner"]
        assert leader.split(":")[1] == str(a.pid)
        a.kill()  # SIGKILL: no goodbye, the lease just runs out
        a.wait()
        t0 = time.monotonic()
        assert d.wait(
            lambda: (d.status(cfg)["daemon"]["owner"] or "").split(":")[1:2] == [str(b.pid)], 60
        )
        assert time.monotonic() - t0 < 60
        n = len(hook.posts("/announce"))
        d.post(site, 80, "After The Takeover", _iso(datetime.now(UTC) - timedelta(minutes=1)))
        assert hook.wait_for(lambda h: len(h.posts("/announce")) >= n + 1, 15)
        assert "After The Takeover" in _texts(hook)[-1]
    finally:
        for p in (a, b):
            if p.poll() is None:
                d.stop(p)


def test_sigkill_mid_send_then_restart_nothing_twice_nothing_lost(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    """A webhook that received the post but never answered: the row is held as unknown,
    not resent; every other announcement still goes out exactly once."""
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce",
                         lease="1s", timeout="20s")  # fmt: skip
    hook.hang_next(seconds=30, store=True, method="POST")
    proc = d.start(cfg, "run")
    assert hook.wait_for_request("POST", "/announce", timeout=30)
    proc.kill()
    proc.wait()
    proc = d.start(cfg, "run")
    try:
        assert d.wait(lambda: _alive(cfg), 30)
        assert d.wait(
            lambda: (
                sorted(r["state"] for r in d.deliveries(cfg) if r["state"] != "skipped")
                == ["sent", "unknown"]
            ),
            30,
        )
        texts = _texts(hook)
        assert len(texts) == 2 and len(set(texts)) == 2  # each once: the hung one not resent
        unknown = next(r for r in d.deliveries(cfg) if r["state"] == "unknown")
        assert d.cli(cfg, "delivery", "mark-sent", str(unknown["id"])).returncode == 0
    finally:
        d.stop(proc)


def test_sighup_reloads_the_config(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    with _daemon(cfg, hook) as proc:
        text = cfg.read_text().replace("/announce", "/reloaded")
        cfg.write_text(text)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        d.post(site, 90, "After Reload", _iso(datetime.now(UTC) - timedelta(minutes=1)))
        assert hook.wait_for(lambda h: len(h.posts("/reloaded")) >= 1, 15)


def test_run_with_web_serves_healthz_from_the_daemon(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    proc = d.start(cfg, "run", "--web", "--port", str(port))
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert d.wait(healthy, 30)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "Shipping It" in page.text
        assert d.stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stopped_daemon_is_last_seen_and_stopped_cleanly(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    import json
    import re

    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    proc = d.start(cfg, "run", "--web", "--port", "0")
    try:
        assert d.wait(lambda: _alive(cfg), 30), "daemon never became alive"
        time.sleep(1)  # well past its first heartbeat
        t0 = time.monotonic()
        assert d.stop(proc, signal.SIGTERM) == 0
        wall = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stdout is not None
    lines = [json.loads(x) for x in proc.stdout.read().splitlines() if x.startswith("{")]
    said = [x["message"] for x in lines if x["message"].startswith("daemon stopped in")]
    took = float(re.findall(r"[\d.]+", said[-1])[0])
    # the time it says covers the real stop: from the signal until all is shut down
    assert 0 < took <= wall and wall - took < 3, (took, wall)
    time.sleep(1.2)  # three heartbeats later, the row is still there
    st = d.status(cfg)["daemon"]
    assert st["alive"] is False and st["stopped"] is True and st["last_seen"]
    text = d.cli(cfg, "status").stdout
    assert "last seen -" not in text and "stopped cleanly" in text


def test_the_daemon_says_what_it_does_at_the_default_level(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    import json
    import os
    import sys

    cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "--log-format", "json",
         "run"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert d.wait(lambda: _alive(cfg), 30), "daemon never became alive"
        assert hook.wait_for(lambda h: len(h.posts("/announce")) >= 2, 20)
        d.post(site, 51, "Events Are Told", _iso(datetime.now(UTC) - timedelta(minutes=1)))
        assert hook.wait_for(lambda h: any("Events Are Told" in t for t in _texts(h)), 15)
        time.sleep(0.5)
    finally:
        d.stop(proc)
    assert proc.stdout is not None
    lines = [json.loads(x) for x in proc.stdout.read().splitlines() if x.startswith("{")]
    said = [(x.get("event"), x["message"]) for x in lines]
    kinds = {k for k, _ in said}
    assert {"picked-up", "stored", "planned", "sent"} <= kinds, said
    stored = [x for x in lines if x.get("event") == "stored"]
    assert any(x.get("title") == "Events Are Told" for x in stored)
    sent = [x for x in lines if x.get("event") == "sent"]
    assert all(x["channel"] == "hook" for x in sent) and len(sent) >= 3
    assert any(x["title"] == "Events Are Told" and "Events Are Told" in x["message"] for x in sent)
    # neither the migrations nor the scheduler narrate at the default level
    assert not [x for x in lines if x["logger"].split(".")[0] in ("alembic", "apscheduler")]

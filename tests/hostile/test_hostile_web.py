"""Hostile clients of the admin page: forged Host headers, login floods, stolen cookies."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_web_support import (
    PASSWORD,
    Site,
    client,
    engine_for,
    form_token,
    login,
    running,
    seed,
    web_settings,
)

from syndicator.web import auth
from tests.hostile.conftest import popen_cli


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    ids = seed(engine)
    with running(settings) as server:
        yield Site(settings, engine, ids, server)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:443", "127.0.0.1@evil.example", "a\\b.example"]
)
def test_the_trailing_slash_redirect_never_reflects_the_host_header(
    locked: Site, host: str
) -> None:
    with client(locked.server) as c:
        assert login(c).status_code == 303
        r = c.get("/episodes/", params={"q": "rust"}, headers={"Host": host})
        assert r.status_code in (307, 308), r.text
        assert r.headers["location"] == "/episodes?q=rust"
        r = c.get(f"/episodes/{locked.ids['plain']}/", headers={"Host": host})
        assert r.headers["location"] == f"/episodes/{locked.ids['plain']}"
        assert c.get(r.headers["location"]).status_code == 200
        # a path that would become protocol-relative is not redirected at all
        for path in ("//evil.example/", "//evil.example//"):
            r = c.get(path, headers={"Host": host})
            assert r.status_code == 404 or not r.headers.get("location", "").startswith("//")


def _cheap_hash(password: str) -> str:
    """An argon2 hash with the usual 64 MiB but one pass, so a check is quick."""
    import argon2

    return argon2.PasswordHasher(time_cost=1, memory_cost=65536, parallelism=1).hash(password)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


async def _flood(base: str, n: int, cookie: str, token: str, forwarded: bool = False) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:

        async def one(i: int) -> int:
            headers = {"Cookie": f"{auth.SESSION_COOKIE}={cookie}"}
            if forwarded:  # each one from another address, as a proxy says
                headers["X-Forwarded-For"] = f"10.{i // 250}.{i % 250}.1"
            r = await c.post(
                "/login",
                data={"password": f"guess {i}", "csrf_token": token},
                headers={**headers, "Accept": "application/json"},
            )
            return r.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _anonymous(c: httpx.Client) -> tuple[str, str]:
    page = c.get("/login")
    return page.cookies[auth.SESSION_COOKIE], form_token(page.text)


def test_a_burst_of_wrong_passwords_checks_only_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    settings = web_settings(tmp_path, web={"password_hash": _cheap_hash(PASSWORD)})
    engine_for(settings)
    with running(settings) as server, client(server) as c:
        cookie, token = _anonymous(c)
        codes = asyncio.run(_flood(server.url, 100, cookie, token))
        assert codes.count(401) == 5, sorted(codes)
        assert codes.count(429) == 95
        metrics = c.get("/metrics").text
        assert _metric(metrics, "syndicator_web_login_checks") == 5
        # the right password waits too, and is not even checked
        assert login(c).status_code == 429
        assert _metric(c.get("/metrics").text, "syndicator_web_login_checks") == 5


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_login_flood_from_many_addresses_keeps_the_server_small(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///s.db"\n\n[web]\nport = {port}\n'
        f'password_hash = "{_cheap_hash(PASSWORD)}"\ntrusted_proxies = ["127.0.0.1"]\n'
        "login_checks = 2\nlogin_queue = 4\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SYNDICATOR_WEB_PASSWORD"}
    proc = popen_cli(cfg, "serve", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as c:
            cookie, token = _anonymous(c)
            before = _rss_kib(proc.pid, "VmRSS")
            started = time.monotonic()
            codes = asyncio.run(_flood(base, 200, cookie, token, forwarded=True))
            took = time.monotonic() - started
            peak = _rss_kib(proc.pid, "VmHWM")
            metrics = c.get("/metrics").text
            assert set(codes) <= {401, 503}, sorted(codes)
            assert codes.count(503) >= 100 and codes.count(401) >= 2
            assert _metric(metrics, "syndicator_web_login_checks") == codes.count(401)
            assert _metric(metrics, "syndicator_web_login_checks_peak") <= 2
            assert _metric(metrics, "syndicator_web_login_busy") == codes.count(503)
            # two checks of 64 MiB at a time, not two hundred
            assert (peak - before) < 400 * 1024, (before, peak)
            assert took < 60
            # the flood over, the admin logs in
            assert login(c).status_code == 303
    finally:
        proc.terminate()
        proc.wait(timeout=15)

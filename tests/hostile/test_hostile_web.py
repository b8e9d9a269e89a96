"""Hostile clients of the admin page: forged Host headers, login floods, stolen and planted
cookies, blank passwords."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from test_web_support import (
    PASSWORD,
    Site,
    client,
    csrf_of,
    delivery_state,
    engine_for,
    form_token,
    login,
    running,
    web_settings,
)

from syndicator import config
from syndicator.web import auth
from syndicator.web.server import WebServer, WebServerError
from tests.hostile.conftest import popen_cli, run_cli


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


@pytest.mark.parametrize("blank", ["", " ", "        ", "\t \n  \u3000  \r\n"])
def test_set_password_refuses_a_blank_password(tmp_path: Path, blank: str) -> None:
    from typer.testing import CliRunner

    from syndicator.cli import app

    cfg = tmp_path / "syndicator.toml"
    cfg.write_text("[web]\n", encoding="utf-8")
    with pytest.raises(auth.PasswordError, match="blank"):
        auth.write_password_hash(cfg, blank)
    result = CliRunner().invoke(
        app, ["--config", str(cfg), "web", "set-password", "--password", blank]
    )
    assert result.exit_code == 2, result.output
    assert cfg.read_text(encoding="utf-8") == "[web]\n"


def test_a_blank_password_in_the_environment_is_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", "  \t ")
    settings = web_settings(tmp_path)
    assert auth.load_credential(settings) is None
    # the documented no-password rules: loopback only, and no login to pass with blanks
    with pytest.raises(WebServerError, match="without a password"):
        WebServer(settings, host="0.0.0.0", port=0)
    with running(settings) as server, client(server) as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 421


def test_a_blank_environment_password_falls_back_to_the_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", " ")
    settings = web_settings(tmp_path, web={"password_hash": auth.hash_password(PASSWORD)})
    cred = auth.load_credential(settings)
    assert cred is not None and cred.source == "config"
    assert cred.verify(PASSWORD) and not cred.verify(" ")


def test_a_hash_of_an_empty_password_is_refused_by_the_page(tmp_path: Path) -> None:
    """Checked when the page starts (an argon2 run), not on every config load."""
    import argon2

    empty = argon2.PasswordHasher().hash("")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[podcast]\ntitle = "x"\n\n[web]\nport = 8080\npassword_hash = "{empty}"\n')
    assert config.load(cfg).web.password_hash == empty  # other commands are not slowed
    r = run_cli(cfg, "serve", "--port", "0")
    assert r.returncode == 2, r.stderr
    assert "empty password" in r.stderr and "set-password" in r.stderr


def _session_cookie(c: httpx.Client) -> str:
    value = c.cookies.get(auth.SESSION_COOKIE)
    assert value
    return str(value)


def _with_cookie(site: Site, cookie: str) -> httpx.Client:
    c = client(site.server)
    c.cookies.set(auth.SESSION_COOKIE, cookie)
    return c


def _admin_session_keys(site: Site) -> set[str]:
    from syndicator.store import admin_sessions

    return admin_sessions.keys(site.engine)


def test_logout_ends_the_session_on_the_server(locked: Site) -> None:
    with client(locked.server) as c:
        assert login(c).status_code == 303
        copied = _session_cookie(c)
        token = csrf_of(c)
        with _with_cookie(locked, copied) as thief:
            assert thief.get("/").status_code == 200  # a copy works while logged in
        assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    with _with_cookie(locked, copied) as thief:
        r = thief.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert thief.get("/api/status").status_code == 401
        assert thief.get("/api/session").json()["authenticated"] is False
        r = thief.post(f"/deliveries/{locked.ids['failed']}/retry", data={"csrf_token": token})
        assert r.status_code in (303, 403)
        assert delivery_state(locked.engine, locked.ids["failed"]) == "failed"
    assert _admin_session_keys(locked) == set()


def test_every_login_gets_a_new_session_id(locked: Site) -> None:
    with client(locked.server) as a, client(locked.server) as b:
        assert login(a).status_code == 303
        first = _session_cookie(a)
        assert login(b).status_code == 303
        assert len(_admin_session_keys(locked)) == 2  # two logins, two server sessions
        # logging in again on a logged-in session replaces its id: the old cookie is dead
        r = a.post("/login", data={"password": PASSWORD, "csrf_token": csrf_of(a)})
        assert r.status_code == 303
        assert _session_cookie(a) != first
        assert a.get("/").status_code == 200 and b.get("/").status_code == 200
        assert len(_admin_session_keys(locked)) == 2
    with _with_cookie(locked, first) as old:
        assert old.get("/").status_code == 303


def test_a_cookie_from_before_the_login_is_not_promoted(locked: Site) -> None:
    with client(locked.server) as c:
        page = c.get("/login")
        before = _session_cookie(c)
        r = c.post(
            "/login",
            data={"password": PASSWORD, "csrf_token": form_token(page.text), "next": "/"},
        )
        assert r.status_code == 303
        assert _session_cookie(c) != before
        assert c.get("/").status_code == 200
    # whoever planted or saw the anonymous cookie is still anonymous with it
    with _with_cookie(locked, before) as planted:
        assert planted.get("/").status_code == 303
        assert planted.get("/api/session").json()["authenticated"] is False


def test_logout_ends_a_live_update_stream_of_a_copied_cookie(locked: Site) -> None:
    import threading

    with client(locked.server) as c:
        assert login(c).status_code == 303
        copied = _session_cookie(c)
        lines: list[str] = []
        ended = threading.Event()

        def listen() -> None:
            with (
                httpx.Client(
                    base_url=locked.server.url,
                    timeout=httpx.Timeout(10.0, read=40.0),
                    cookies={auth.SESSION_COOKIE: copied},
                ) as thief,
                thief.stream("GET", "/events") as r,
            ):
                lines.append(str(r.status_code))
                for line in r.iter_lines():
                    lines.append(line)
            ended.set()

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while not any("hello" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        assert lines[0] == "200"
        assert c.post("/logout", data={"csrf_token": csrf_of(c)}).status_code == 303
        # the stream wakes at the next change or keep-alive (15 s) and ends there
        assert ended.wait(25), lines

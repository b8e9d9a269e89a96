"""Login, sessions, CSRF, rate limits, security headers and where the page may listen."""

from __future__ import annotations

import tomllib
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
    seed,
    web_settings,
)

from syndicator import config
from syndicator.store.db import dispose_all
from syndicator.web import auth
from syndicator.web.server import WebServer, WebServerError, serve


def test_without_a_login_everything_but_health_is_closed(locked: Site) -> None:
    with client(locked.server) as c:
        for path in ("/", "/episodes", f"/episodes/{locked.ids['xss']}", "/channels", "/problems"):
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next=")
        for path in ("/api/status", "/api/episodes", "/api/openapi.json", "/events"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert "log in" in r.json()["error"]
        r = c.post(
            f"/deliveries/{locked.ids['failed']}/retry", data={"csrf_token": csrf_of_anon(c)}
        )
        assert r.status_code == 303 and "/login" in r.headers["location"]
        assert delivery_state(locked.engine, locked.ids["failed"]) == "failed"
        assert c.get("/api/session").json() == {
            "login_required": True, "authenticated": False, "csrf_token": None,
        }  # fmt: skip
        assert c.get("/healthz").status_code == 503  # open, and says no daemon
        assert c.get("/static/app.css").status_code == 200
        assert c.get("/openapi.json").status_code == 404
        assert c.get("/docs").status_code == 404


def csrf_of_anon(c: httpx.Client) -> str:
    return form_token(c.get("/login").text)


def test_a_wrong_password_is_refused(locked: Site) -> None:
    with client(locked.server) as c:
        r = login(c, "not the password")
        assert r.status_code == 401 and "Wrong password" in r.text
        assert c.get("/").status_code == 303
        r = login(c, "")
        assert r.status_code == 401


def test_login_session_cookie_and_logout(locked: Site) -> None:
    with client(locked.server) as c:
        r = login(c)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on 127.0.0.1
        assert c.get("/").status_code == 200
        assert c.get("/api/session").json()["authenticated"] is True
        # a next= that points off-site is ignored
        page = c.get("/login", params={"next": "//evil.example/"})
        assert page.headers["location"] == "/"

        token = csrf_of(c)
        r = c.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/").status_code == 303
        assert c.get("/api/status").status_code == 401


def test_login_returns_to_the_page_asked_for(locked: Site) -> None:
    with client(locked.server) as c:
        target = f"/episodes/{locked.ids['xss']}"
        r = c.get(target)
        page = c.get(r.headers["location"])
        assert f'value="{target}"' in page.text
        r = c.post(
            "/login",
            data={"password": PASSWORD, "csrf_token": form_token(page.text), "next": target},
        )
        assert r.headers["location"] == target


def test_logins_are_rate_limited(locked: Site) -> None:
    with client(locked.server) as c:
        for _ in range(5):
            assert login(c, "guess").status_code == 401
        r = login(c, "guess")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "Too many wrong passwords" in r.text
        # even the right password waits
        assert login(c).status_code == 429
        assert c.get("/").status_code == 303


def test_the_limiter_forgets_after_its_window() -> None:
    now = [0.0]
    lim = auth.LoginLimiter(max_failures=2, window=60, clock=lambda: now[0])
    lim.failure("a")
    lim.failure("a")
    assert lim.retry_after("a") == 60 and lim.retry_after("b") is None
    now[0] = 61
    assert lim.retry_after("a") is None
    lim.failure("a")
    lim.success("a")
    lim.failure("a")
    assert lim.retry_after("a") is None


def test_the_limiter_counts_a_try_before_it_is_checked() -> None:
    lim = auth.LoginLimiter(max_failures=3, window=60, clock=lambda: 0.0)
    assert [lim.attempt("a") for _ in range(4)] == [None, None, None, 60]
    assert lim.attempt("b") is None  # each address has its own tries
    lim.give_back("a")  # a try the server was too busy to check
    assert lim.attempt("a") is None and lim.attempt("a") == 60
    lim.success("a")
    assert lim.attempt("a") is None


def test_csrf_is_required_on_every_post(locked: Site) -> None:
    with client(locked.server) as c:
        # login itself needs the form's token
        r = c.post("/login", data={"password": PASSWORD})
        assert r.status_code == 403 and "security token is missing" in r.text
        assert login(c).status_code == 303
        url = f"/deliveries/{locked.ids['failed']}/retry"
        r = c.post(url)
        assert r.status_code == 403
        r = c.post(url, data={"csrf_token": "forged"})
        assert r.status_code == 403 and "out of date" in r.text
        r = c.post(url, headers={"X-CSRF-Token": "forged", "Accept": "application/json"})
        assert r.status_code == 403 and "out of date" in r.json()["error"]
        # a token from another browser's session is worth nothing here
        with client(locked.server) as other:
            login(other)
            foreign = csrf_of(other)
        assert c.post(url, data={"csrf_token": foreign}).status_code == 403
        # the right token, but the request came from another site
        r = c.post(url, data={"csrf_token": csrf_of(c)}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "another site" in r.text
        assert delivery_state(locked.engine, locked.ids["failed"]) == "failed"
        for path in (
            "/api/pass",
            f"/api/deliveries/{locked.ids['failed']}/skip",
            "/pass",
            "/logout",
        ):
            assert c.post(path).status_code == 403, path
        assert delivery_state(locked.engine, locked.ids["failed"]) == "failed"
        # and with everything right it works
        r = c.post(url, data={"csrf_token": csrf_of(c)}, headers={"Origin": locked.server.url})
        assert (
            r.status_code == 303
            and delivery_state(locked.engine, locked.ids["failed"]) == "retrying"
        )


def test_the_csrf_token_changes_at_login(locked: Site) -> None:
    with client(locked.server) as c:
        before = csrf_of_anon(c)
        login(c)
        after = csrf_of(c)
        assert before != after
        url = f"/deliveries/{locked.ids['failed']}/retry"
        assert c.post(url, data={"csrf_token": before}).status_code == 403


def test_security_headers_on_every_response(locked: Site) -> None:
    with client(locked.server) as c:
        login(c)
        for path in ("/", "/login", "/api/status", "/healthz", "/nope", "/static/app.css"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
        assert c.get("/").headers["cache-control"] == "no-store"
        html = c.get("/").text
        assert "<script>" not in html and "<style" not in html and "style=" not in html
        assert '<script src="/static/app.js' in html


def test_sessions_survive_a_restart_but_not_a_new_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path)
    with running(settings) as server, client(server) as c:
        login(c)
        cookies = dict(c.cookies)
    with running(settings) as server:
        with client(server) as c:
            c.cookies.update(cookies)
            assert c.get("/").status_code == 200  # the secret lives in the store
        monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", "a brand new password")
    with running(settings) as server, client(server) as c:
        c.cookies.update(cookies)
        assert c.get("/").status_code == 303
    # the signing secret is a row in the store's meta table, made once
    from syndicator.store.db import session
    from syndicator.store.models import Meta

    with session(engine_for(settings)) as s:
        row = s.get(Meta, auth.SECRET_META_KEY)
        assert row is not None and len(row.value) > 40
        assert auth.session_secret(engine_for(settings)) == row.value


def test_secure_cookies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    forced = web_settings(tmp_path, web={"secure_cookies": True})
    with running(forced) as server, client(server) as c:
        assert "Secure" in c.get("/login").headers["set-cookie"]
    dispose_all()

    proxied = web_settings(tmp_path, web={"trusted_proxies": ["127.0.0.1"]})
    with running(proxied) as server, client(server) as c:
        r = c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in r.headers["set-cookie"]
        assert "Secure" not in c.get("/login").headers["set-cookie"]
    dispose_all()

    untrusted = web_settings(tmp_path)  # no trusted proxy: the header is ignored
    with running(untrusted) as server, client(server) as c:
        r = c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in r.headers["set-cookie"]


def test_the_rate_limit_uses_the_client_address_behind_a_trusted_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path, web={"trusted_proxies": ["127.0.0.1"]})
    with running(settings) as server:
        with client(server) as c:
            c.headers["X-Forwarded-For"] = "203.0.113.7"
            for _ in range(5):
                login(c, "guess")
            assert login(c, "guess").status_code == 429
        with client(server) as c:
            c.headers["X-Forwarded-For"] = "203.0.113.8"
            assert login(c).status_code == 303


def test_no_password_serves_only_on_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    settings = web_settings(tmp_path)
    assert serve(settings, host="0.0.0.0", port=0) == 2
    err = capsys.readouterr().err
    assert "syndicator web set-password" in err and "SYNDICATOR_WEB_PASSWORD" in err
    with pytest.raises(WebServerError, match="without a password"):
        WebServer(settings, host="192.0.2.10", port=0)
    # with a password it may listen anywhere
    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    server = WebServer(settings, host="0.0.0.0", port=0).start()
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}/login", timeout=5)
        assert r.status_code == 200
    finally:
        server.stop()


def test_no_password_means_no_login_but_only_loopback_host_names(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    ids = seed(engine)
    with running(settings) as server, client(server) as c:
        assert c.get("/").status_code == 200
        assert c.get("/login").status_code == 303
        assert c.get("/api/session").json()["authenticated"] is True
        # CSRF still applies: another site could post to 127.0.0.1
        url = f"/deliveries/{ids['failed']}/retry"
        assert c.post(url).status_code == 403
        # a DNS-rebinding page reaches us under its own name: refused
        r = c.get("/", headers={"Host": "attacker.example"})
        assert r.status_code == 421 and "127.0.0.1" in r.text
        r = c.get("/", headers={"Host": f"localhost:{server.port}"})
        assert r.status_code == 200


def test_a_bad_password_hash_stops_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    settings = web_settings(tmp_path, web={"password_hash": "hunter2"})
    assert serve(settings, host="127.0.0.1", port=0) == 2
    assert "not an argon2 hash" in capsys.readouterr().err


def test_a_busy_port_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = web_settings(tmp_path)
    with running(settings) as server:
        assert serve(settings, host="127.0.0.1", port=server.port) == 2
    assert "pick another port" in capsys.readouterr().err


# ---------------------------------------------------------------- set-password


def test_set_password_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "syndicator.toml"
    original = (
        '# my config\n[podcast]\ntitle = "Show"  # the name\n\n'
        '[web]\nhost = "0.0.0.0"\n# password_hash = "..."   # a comment stays\nport = 9000\n\n'
        '[daemon]\nheartbeat = "10s"\n'
    )
    cfg.write_text(original, encoding="utf-8")
    h = auth.write_password_hash(cfg, "first password")
    text = cfg.read_text(encoding="utf-8")
    # every line of the file is still there, in order, and exactly one was added
    added = f'password_hash = "{h}"\n'
    assert text.count(added) == 1
    assert text.replace(added, "", 1) == original
    assert text.index(added) > text.index("[web]") and text.index(added) < text.index("[daemon]")
    settings = config.load(cfg)
    assert settings.web.password_hash == h and settings.web.port == 9000
    assert settings.web.host == "0.0.0.0" and settings.daemon.heartbeat.total_seconds() == 10
    cred = auth.load_credential(settings)
    assert cred is not None and cred.verify("first password") and not cred.verify("nope")

    h2 = auth.write_password_hash(cfg, "second password")
    text2 = cfg.read_text(encoding="utf-8")
    assert text2 == text.replace(h, h2)  # the value changed in place, nothing else did
    assert tomllib.loads(text2)["web"]["password_hash"] == h2


def test_set_password_adds_a_web_table(tmp_path: Path) -> None:
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text('[podcast]\ntitle = "Show"', encoding="utf-8")  # no final newline
    h = auth.write_password_hash(cfg, "a good password")
    data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    assert data == {"podcast": {"title": "Show"}, "web": {"password_hash": h}}


def test_set_password_refuses_what_it_cannot_do_safely(tmp_path: Path) -> None:
    cfg = tmp_path / "syndicator.toml"
    with pytest.raises(auth.PasswordError, match="syndicator init"):
        auth.write_password_hash(cfg, "a good password")
    cfg.write_text('web = { host = "127.0.0.1" }\n', encoding="utf-8")
    with pytest.raises(auth.PasswordError, match="by hand"):
        auth.write_password_hash(cfg, "a good password")
    cfg.write_text('web.host = "127.0.0.1"\n', encoding="utf-8")  # dotted keys
    with pytest.raises(auth.PasswordError, match="by hand"):
        auth.write_password_hash(cfg, "a good password")
    cfg.write_text("[web\n", encoding="utf-8")
    with pytest.raises(auth.PasswordError, match="not valid TOML"):
        auth.write_password_hash(cfg, "a good password")
    cfg.write_text("[web]\n", encoding="utf-8")
    with pytest.raises(auth.PasswordError, match="at least 8"):
        auth.write_password_hash(cfg, "short")
    assert cfg.read_text(encoding="utf-8") == "[web]\n"


def test_the_cli_sets_a_password_that_logs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from syndicator.cli import app

    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n[web]\nport = 8080\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["--config", str(cfg), "web", "set-password", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    settings = config.load(cfg)
    with running(settings) as server, client(server) as c:
        assert c.get("/").status_code == 303
        assert login(c).status_code == 303
        assert c.get("/").status_code == 200


def test_the_serve_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    cfg = tmp_path / "syndicator.toml"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg.write_text(
        f'[database]\nurl = "sqlite:///s.db"\n\n[web]\nport = {port}\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if k != "SYNDICATOR_WEB_PASSWORD"}
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "serve"]

    refused = subprocess.run(
        [*cmd, "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "syndicator web set-password" in refused.stderr

    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 503  # no daemon, but it answers
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"http://127.0.0.1:{port}/" in (proc.stderr.read() if proc.stderr else "")

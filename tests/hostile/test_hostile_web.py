"""Hostile clients of the admin page: forged Host headers, login floods, stolen cookies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import (
    PASSWORD,
    Site,
    client,
    engine_for,
    login,
    running,
    seed,
    web_settings,
)


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

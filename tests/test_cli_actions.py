"""The CLI's actions on deliveries, `announce`, `backup` and JSON logs, as a person runs them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.webhook import FakeWebhook


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as h:
        yield h


def _config(tmp_path: Path, site: Path, hook: FakeWebhook) -> Path:
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "Shipping It"
[database]
url = "sqlite:///s.db"
[[sources]]
name = "episodes"
type = "jekyll"
path = "{site}"
episode_url = "{{site.url}}/podcast/{{slug}}"
guid = "{{site.url}}/podcast/{{slug}}"
[announce]
retry_base = "1s"
[[channels]]
name = "hook"
type = "apprise"
url = "json://127.0.0.1:{hook.port}/h"
""")
    return cfg


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _rows(cfg: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(_cli(cfg, "deliveries", "--json").stdout)  # type: ignore[no-any-return]


def test_failed_delivery_retried_by_hand(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    hook.fail_next(2, status=400, body={"message": "unknown webhook"}, method="POST")
    cfg = _config(tmp_path, site, hook)
    r = _cli(cfg, "run-once")
    assert r.returncode == 1 and "need attention" in r.stderr
    failed = [d for d in _rows(cfg) if d["state"] == "failed"]
    assert len(failed) == 2 and "400" in failed[0]["last_error"]
    again = _cli(cfg, "run-once")  # cron: nothing new, so nothing to mail; still exit 1
    assert again.returncode == 1 and again.stderr == "" and again.stdout == ""
    assert _cli(cfg, "delivery", "retry", str(failed[0]["id"])).returncode == 0
    assert (
        _cli(cfg, "delivery", "skip", str(failed[1]["id"]), "--reason", "wrong text").returncode
        == 0
    )
    assert _cli(cfg, "run-once").returncode == 0
    states = {d["id"]: d for d in _rows(cfg)}
    assert states[failed[0]["id"]]["state"] == "sent"
    assert states[failed[1]["id"]]["state"] == "skipped"
    assert states[failed[1]["id"]]["skip_reason"] == "wrong text"
    assert len(hook.posts("/h")) == 1
    r = _cli(cfg, "delivery", "retry", str(failed[0]["id"]))
    assert r.returncode == 1 and "sent" in r.stderr  # nothing to retry: says why


def test_announce_a_backlog_episode_by_hand(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook)
    _cli(cfg, "run-once")
    before = len(hook.posts("/h"))
    r = _cli(cfg, "announce", "2")
    assert r.returncode == 0 and "queued on hook" in r.stdout
    _cli(cfg, "run-once")
    texts = [b["message"] for b in hook.bodies("/h")]
    assert len(texts) == before + 1 and "Print Shop" in texts[-1]
    assert _cli(cfg, "announce", "no-such-episode").returncode == 1


def test_backup_and_json_logs(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook)
    r = _cli(cfg, "--log-format", "json", "--log-level", "info", "run-once")
    lines = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "message"} <= set(x) for x in lines)
    r = _cli(cfg, "backup", str(tmp_path / "backups" / "copy.db"))
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(tmp_path / "backups" / "copy.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("select count(*) from episodes").fetchone()[0] == 6
    db.close()

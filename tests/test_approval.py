"""A person in the loop (issue #12): `approve = true` holds rows in `awaiting_approval`
until a person approves, edits or rejects them; `announce.delay` holds a new episode for
a grace period; catch-up holds, sends or skips a burst after downtime. Everything here
runs the real CLI against a fake webhook (Apprise's json://) on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from syndicator import config
from syndicator.timeutil import utcnow
from tests.builders import SITE_URLS, jekyll_source, write_config
from tests.fakes.webhook import FakeWebhook

HELD = "awaiting_approval"


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as h:
        yield h


def _config(tmp_path: Path, site: Path, hook: FakeWebhook, channel: str = "", announce: str = ""):
    return write_config(
        tmp_path, jekyll_source(site, keys=SITE_URLS),
        f'[announce]\nretry_base = "1s"\n{announce}',
        f'[[channels]]\nname = "hook"\ntype = "apprise"\nurl = "json://127.0.0.1:{hook.port}/h"\n'
        + channel,
    )  # fmt: skip


def _cli(cfg: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    import os

    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _rows(cfg: Path, *args: str) -> list[dict[str, Any]]:
    r = _cli(cfg, "deliveries", "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _recent(cfg: Path) -> list[dict[str, Any]]:
    """The rows of episodes inside announce.window (not the site's back catalogue)."""
    return [d for d in _rows(cfg) if not (d["skip_reason"] or "").startswith("backlog")]


def _post(site: Path, number: int, title: str, days_ago: int = 0, extra: str = "") -> Path:
    """A new episode post in the example site, dated `days_ago` days before today."""
    day = (utcnow() - timedelta(days=days_ago)).date()
    path = site / f"_posts/podcast/{day:%Y-%m-%d}-{number}-{title.lower().replace(' ', '-')}.md"
    path.write_text(
        f'---\ntitle: "{title}"\nmp3_bytes: "1000"\nmp3_duration: "1:00"\n'
        f'category: "podcast"\n{extra}---\n\nAbout {title}.\n',
        encoding="utf-8",
    )
    return path


def test_approve_edit_and_reject_from_the_cli(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    _post(site, 8, "Held Three")
    cfg = _config(tmp_path, site, hook, channel="approve = true\nlimit = 60\n")
    r = _cli(cfg, "run-once")
    assert r.returncode == 0, r.stderr
    assert hook.posts("/h") == []  # nothing goes out before a person says so
    held = _rows(cfg, "--state", HELD)
    assert len(held) == 3
    assert all("approve = true" in (d["skip_reason"] or "") for d in held)
    assert all(d["text"] for d in held)  # the frozen text is there to read
    status = json.loads(_cli(cfg, "status", "--json").stdout)
    assert status["awaiting_approval"] == 3
    assert status["deliveries"]["hook"][HELD] == 3
    assert "3 announcement(s) wait for approval" in _cli(cfg, "status").stdout

    a, b, c = (d["id"] for d in held)
    # edit with --text: too long for the limit of 60, so it is cut at a word and frozen
    long = "A hand-written announcement that is much too long for this channel's limit, really"
    r = _cli(cfg, "delivery", "edit", str(a), "--text", long)
    assert r.returncode == 0, r.stderr
    assert "cut to fit hook's limit of 60" in r.stderr
    row_a = {d["id"]: d for d in _rows(cfg)}[a]
    assert row_a["state"] == HELD and row_a["edited_at"]
    assert row_a["text"].endswith("…") and long.startswith(row_a["text"][:-1])
    assert len(row_a["text"]) <= 60
    assert _cli(cfg, "delivery", "approve", str(a)).returncode == 0

    # edit in $EDITOR, approving at once
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\nopen(sys.argv[1], 'w').write('Written in the editor https://x.example')\n"
    )
    r = _cli(
        cfg, "delivery", "edit", str(b), "--approve",
        env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "planned" in r.stdout and "Written in the editor" in r.stdout

    r = _cli(cfg, "delivery", "reject", str(c), "--reason", "not this one")
    assert r.returncode == 0 and "skipped" in r.stdout

    assert _cli(cfg, "run-once").returncode == 0
    texts = sorted(x["message"] for x in hook.bodies("/h"))
    assert texts == sorted([row_a["text"], "Written in the editor https://x.example"])
    final = {d["id"]: d for d in _rows(cfg)}
    assert [final[i]["state"] for i in (a, b, c)] == ["sent", "sent", "skipped"]
    assert final[c]["skip_reason"] == "not this one"
    assert final[a]["approved_at"] and final[b]["approved_at"]

    # only a held row can be approved, edited or rejected; each says why not
    for args in (("approve", str(a)), ("reject", str(a)), ("edit", str(a), "--text", "x")):
        r = _cli(cfg, "delivery", *args)
        assert r.returncode == 1 and f"is sent, not {HELD}" in r.stderr, r.stderr
    r = _cli(cfg, "delivery", "approve", "999")
    assert r.returncode == 1 and "no delivery 999" in r.stderr


def test_an_empty_edit_changes_nothing(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook, channel="approve = true\n")
    assert _cli(cfg, "run-once").returncode == 0
    row = _rows(cfg, "--state", HELD)[0]
    r = _cli(cfg, "delivery", "edit", str(row["id"]), "--text", "   ")
    assert r.returncode == 1 and "empty" in r.stderr
    assert {d["id"]: d for d in _rows(cfg)}[row["id"]]["text"] == row["text"]
    r = _cli(cfg, "delivery", "retry", str(row["id"]))  # retry would skip the approval
    assert r.returncode == 1 and "waits for approval" in r.stderr


def test_a_post_withdrawn_or_deleted_within_the_delay_goes_out_nowhere(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    keep = _post(site, 8, "Kept One")
    cfg = _config(tmp_path, site, hook, announce='delay = "10m"\n')
    assert _cli(cfg, "run-once").returncode == 0
    rows = _rows(cfg)
    planned = [d for d in rows if d["state"] == "planned"]
    assert len(planned) == 3 and hook.posts("/h") == []
    for d in planned:  # held for the grace period from when the episode was first seen
        assert d["due_at"] > (utcnow() + timedelta(minutes=9)).isoformat()

    # within the ten minutes: one post is withdrawn, another deleted
    bonus = next(site.glob("_posts/podcast/*-7-bonus-*.md"))
    text = bonus.read_text(encoding="utf-8")
    bonus.write_text(text.replace("---\n", "---\nunder_review: true\n", 1), encoding="utf-8")
    next(site.glob("_posts/podcast/*-6-billing-*.md")).unlink()
    assert _cli(cfg, "run-once").returncode == 0
    assert hook.posts("/h") == []

    later = (utcnow() + timedelta(minutes=11)).isoformat()
    r = _cli(cfg, "run-once", "--now", later, "--force")
    assert r.returncode == 0, r.stderr
    bodies = hook.bodies("/h")
    assert len(bodies) == 1 and "Kept One" in bodies[0]["message"]
    states = sorted(
        (d["state"], d["skip_reason"])
        for d in _rows(cfg)
        if not (d["skip_reason"] or "").startswith("backlog")
    )
    assert states == [
        ("sent", None),
        ("skipped", "episode withdrawn"),
        ("skipped", "episode withdrawn"),
    ]
    assert keep.exists()


@pytest.mark.parametrize("policy", ["hold", "send", "skip"])
def test_catch_up_after_downtime(
    tmp_path: Path, site: Path, hook: FakeWebhook, policy: str
) -> None:
    _post(site, 8, "Third While Down")
    # announce.catch_up is "skip"; the channel's own catch_up wins
    cfg = _config(
        tmp_path, site, hook, channel=f'catch_up = "{policy}"\n',
        announce='catch_up_limit = 2\ncatch_up = "skip"\n',
    )  # fmt: skip
    alerts = {"SYNDICATOR_ALERTS_URL": f"json://127.0.0.1:{hook.port}/alerts"}
    r = _cli(cfg, "run-once", env=alerts)
    rows = _recent(cfg)
    assert len(rows) == 3
    if policy == "send":
        assert r.returncode == 0, r.stderr
        assert len(hook.posts("/h")) == 3 and {d["state"] for d in rows} == {"sent"}
        assert hook.posts("/alerts") == []
        return
    assert r.returncode == 1 and "catch-up on hook: 3 announcements" in r.stderr
    assert hook.posts("/h") == []
    if policy == "skip":
        assert {d["state"] for d in rows} == {"skipped"}
        assert all("catch_up = skip" in d["skip_reason"] for d in rows)
        return
    assert {d["state"] for d in rows} == {HELD}
    assert all("announce.catch_up_limit = 2" in d["skip_reason"] for d in rows)
    told = hook.bodies("/alerts")
    assert len(told) == 1  # one alert for the burst, not one per row
    assert "3 announcement(s) on hook wait for approval" in told[0]["message"]
    # the next pass holds nothing new and tells nobody again
    assert _cli(cfg, "run-once", env=alerts).returncode == 0
    assert len(hook.posts("/alerts")) == 1
    # approved by a person, all three go out together: catch-up never holds them again
    for d in rows:
        assert _cli(cfg, "delivery", "approve", str(d["id"])).returncode == 0
    assert _cli(cfg, "run-once", env=alerts).returncode == 0
    assert len(hook.posts("/h")) == 3
    assert {d["state"] for d in _recent(cfg)} == {"sent"}


def test_the_config_says_what_is_wrong_with_the_new_keys(tmp_path: Path) -> None:
    from pydantic import ValidationError

    base: dict[str, Any] = {"podcast": {"title": "T"}}
    for announce, words in (
        ({"delay": -5}, "can't be negative"),
        ({"delay": "soon"}, "invalid duration"),
        ({"catch_up_limit": 0}, "greater than or equal to 1"),
        ({"catch_up": "burst"}, "'hold', 'send' or 'skip'"),
    ):
        with pytest.raises(ValidationError) as exc:
            config.from_dict({**base, "announce": announce}, tmp_path)
        assert words in str(exc.value), exc.value
    channel = {"name": "h", "type": "apprise", "url": "json://x", "approve": "maybe"}
    with pytest.raises(ValidationError) as exc:
        config.from_dict({**base, "channels": [channel]}, tmp_path)
    assert "approve" in str(exc.value)
    ok = config.from_dict({**base, "announce": {"delay": "10m"}}, tmp_path).announce
    assert ok.delay == timedelta(minutes=10) and ok.catch_up_limit == 3 and ok.catch_up == "hold"


def test_hold_approve_and_send_on_both_stores(
    tmp_path: Path, site: Path, hook: FakeWebhook, db_url: str
) -> None:
    """The same hold → approve → send, in-process, on SQLite and on PostgreSQL."""
    from syndicator.announce import approval
    from syndicator.pipeline import run_once
    from syndicator.store import deliveries
    from syndicator.store.db import open_store, session
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, db_url,
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False,
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        announce={"catch_up_limit": 1},
        channels=[{"name": "hook", "type": "apprise", "url": f"json://127.0.0.1:{hook.port}/h"}],
    )  # fmt: skip
    report = run_once(settings)
    assert report.catch_up and "2 announcements" in report.catch_up[0]
    assert report.exit_code == 1 and hook.posts("/h") == []
    engine = open_store(settings)
    with session(engine) as s:
        held = deliveries.in_states(s, [HELD])
    assert len(held) == 2
    approval.approve(engine, held[0].id or 0, utcnow(), by="test")
    report = run_once(settings)
    assert report.catch_up == [] and report.sends.sent == 1
    with session(engine) as s:
        states = {d.id: d.state for d in deliveries.in_states(s, [HELD, "sent"])}
    assert states == {held[0].id: "sent", held[1].id: HELD}
    assert len(hook.posts("/h")) == 1

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
verify_audio = false
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
    # the pass's events, with their fields; the migrations stay quiet
    assert {"stored", "planned", "sent", "source"} <= {x.get("event") for x in lines}
    assert not [x for x in lines if x["logger"].startswith("alembic")]
    r = _cli(cfg, "backup", str(tmp_path / "backups" / "copy.db"))
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(tmp_path / "backups" / "copy.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("select count(*) from episodes").fetchone()[0] == 6
    db.close()


def _plain_config(tmp_path: Path, path: str) -> Path:
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "Shipping It"
[database]
url = "sqlite:///s.db"
[[sources]]
name = "episodes"
type = "jekyll"
verify_audio = false
path = "{path}"
""")
    return cfg


def test_check_prints_a_problem_repeated_in_many_posts_once(tmp_path: Path, site: Path) -> None:
    for n in range(5):
        (site / f"_posts/podcast/2026-11-2{n}-{40 + n}-inc.md").write_text(
            f'---\ntitle: "Inc {n}"\nmp3_bytes: "1"\ncategory: "podcast"\n---\n'
            + "\n" * n
            + "{% include nope.html %}\n"
        )
    r = _cli(_plain_config(tmp_path, str(site)), "check")
    assert r.stderr.count("nope.html") == 1, r.stderr  # five posts, one line
    assert "in 5 places" in r.stderr and "2026-11-20-40-inc.md:6" in r.stderr


def _record(cfg: Path, *problems: tuple[str, str, str, str]) -> None:
    from syndicator.sources.base import ProblemData
    from syndicator.store import problems as store
    from syndicator.store.db import session, upgrade
    from syndicator.timeutil import utcnow

    engine = upgrade("sqlite:///" + str(cfg.parent / "s.db"))
    with session(engine, write=True) as s:
        for location, kind, message, severity in problems:
            store.record(s, "episodes", ProblemData(location, kind, message, 3, severity), utcnow())


def test_status_groups_problems_and_keeps_notices_quiet(tmp_path: Path, site: Path) -> None:
    cfg = _plain_config(tmp_path, str(site))
    assert _cli(cfg, "run-once").returncode == 0
    tag = "plugin tag {% asset_path %} dropped"
    _record(
        cfg,
        *[(f"_includes/p{n}.html", "liquid-tag", tag, "notice") for n in range(40)],
        *[(f"_includes/w{n}.html", "include", f"include 'w{n}.html' dropped", "warning")
          for n in range(3)],
    )  # fmt: skip
    # Notices alone need nobody: a pass exits 0 and prints nothing under cron.
    r = _cli(cfg, "run-once")
    assert r.returncode == 0 and r.stderr == "", r.stderr

    text = " ".join(_cli(cfg, "status").stdout.split())  # however the terminal wraps it
    assert text.count("asset_path") == 1 and "in 40 places" in text
    assert "40 notice(s), no action needed" in text
    assert "3 open problem(s)" in text and text.count("dropped") == 2  # 3 warnings, 1 line
    assert text.index("open problem(s)") < text.index("notice(s)")

    data = json.loads(_cli(cfg, "status", "--json").stdout)
    assert len(data["problems"]) == 43  # every row, as before
    assert data["problem_counts"] == {"error": 0, "warning": 3, "notice": 40}
    groups = {g["kind"]: g for g in data["problem_groups"]}
    assert groups["liquid-tag"]["count"] == 40 and groups["liquid-tag"]["severity"] == "notice"
    assert groups["liquid-tag"]["examples"][0] == {"location": "_includes/p0.html", "line": 3}
    assert groups["include"]["count"] == 3
    assert [g["severity"] for g in data["problem_groups"]] == ["warning", "notice"]


def test_check_exits_0_when_only_notices_remain(tmp_path: Path, site: Path) -> None:
    cfg = _plain_config(tmp_path, str(site))
    _record(cfg, ("_includes/x.html", "liquid-tag", "plugin tag {% x %} dropped", "notice"))
    r = _cli(cfg, "check")
    assert r.returncode == 0 and "config and sources OK" in r.stdout


def test_a_wrong_site_path_says_the_folder_does_not_exist(tmp_path: Path) -> None:
    cfg = _plain_config(tmp_path, "sitez")  # relative: taken from the config's folder
    r = _cli(cfg, "check")
    assert r.returncode == 1
    assert f"the site folder {tmp_path / 'sitez'} does not exist" in r.stderr
    assert "_config.yml" not in r.stderr
    r = _cli(cfg, "run-once")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_a_withdrawn_episode_is_not_announced_by_hand(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = _config(tmp_path, site, hook)
    _cli(cfg, "run-once")
    eps = json.loads(_cli(cfg, "episodes", "--json").stdout)
    gone = next(e for e in eps if e["withdrawn"])
    r = _cli(cfg, "announce", str(gone["number"]))
    assert r.returncode == 1, r.stdout
    assert "withdrawn" in r.stderr and "restore" in r.stderr and "queued" not in r.stdout
    assert not [d for d in _rows(cfg) if d["episode"] == gone["guid"] and d["state"] == "planned"]
    p = _cli(cfg, "preview", str(gone["number"]))
    assert p.returncode == 0 and "withdrawn" in p.stdout
    assert json.loads(_cli(cfg, "preview", str(gone["number"]), "--json").stdout)[0]["withdrawn"]


def test_options_with_fixed_values_refuse_others_and_list_them(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    from syndicator.announce.outbox import STATES
    from syndicator.cli import DeliveryState

    assert tuple(DeliveryState) == STATES  # the CLI offers exactly the outbox's states
    cfg = _config(tmp_path, site, hook)
    r = _cli(cfg, "deliveries", "--state", "bogus")
    assert r.returncode == 2 and "bogus" in r.stderr
    for s in STATES:
        assert s in r.stderr, s
    assert _cli(cfg, "deliveries", "--state", "failed").returncode == 0
    r = _cli(cfg, "--log-level", "loud", "status")
    assert r.returncode == 2 and "warning" in r.stderr
    for cmd in (["announce", "1"], ["preview", "1"]):
        r = _cli(cfg, *cmd, "--channel", "nope")
        assert r.returncode == 2 and "'nope'" in r.stderr and "valid: hook" in r.stderr


def test_square_brackets_survive_in_help_and_messages(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    cfg = _config(tmp_path, site, hook)
    r = _cli(cfg, "serve", "--help")
    assert "default from [web]" in r.stdout and "from )" not in r.stdout
    assert "SYNDICATOR_<CHANNEL>_<KEY>" in _cli(cfg, "--help").stdout
    r = subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "web", "set-password"],
        input="s3cret-pass-word\ns3cret-pass-word\n", cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"written to [web] in {cfg}" in r.stdout


def test_flags_show_no_value_hint_in_help(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook)
    for args in ([], ["run-once"], ["feed", "build"], ["status"]):
        r = _cli(cfg, *args, "--help")
        assert r.returncode == 0 and "--help" in r.stdout
        assert "<bool>" not in r.stdout, args


def test_off_a_terminal_no_line_is_wrapped(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook)
    r = _cli(cfg, "run-once", "--verbose")  # a pipe, as under cron
    summary = [line for line in r.stdout.splitlines() if line.startswith("announcements:")]
    assert len(summary) == 1 and "failed" in summary[0], r.stdout  # one whole line
    out = _cli(cfg, "episodes").stdout
    titles = [e["title"] for e in json.loads(_cli(cfg, "episodes", "--json").stdout)]
    assert max(len(t) for t in titles) > 50  # long enough to wrap at 80 columns
    for t in titles:
        assert any(t in line for line in out.splitlines()), t
    status = _cli(cfg, "status").stdout
    assert any("episodes" in line and "jekyll" in line for line in status.splitlines())

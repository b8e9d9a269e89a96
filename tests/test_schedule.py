"""Publish times: daily slot, quiet hours, future-dated posts, evergreen reshares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syndicator.pipeline import run_once
from tests.conftest import make_settings
from tests.fakes.webhook import FakeWebhook

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as h:
        yield h


def _settings(
    tmp_path: Path,
    url: str,
    site: Path,
    hook: FakeWebhook,
    tz: str = "UTC",
    channel: dict[str, Any] | None = None,
    **announce: Any,
):  # type: ignore[no-untyped-def]
    s = make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False,
                  "episode_url": "{site.url}/podcast/{slug}"}],
        channels=[{"name": "hook", "type": "apprise", "url": f"json://127.0.0.1:{hook.port}/h",
                   **(channel or {})}],
        announce={"window": "14d", **announce},
    )  # fmt: skip
    s.podcast.timezone = tz
    return s


def _sent(hook: FakeWebhook) -> list[str]:
    return [b["message"] for b in hook.bodies("/h")]


def test_daily_slot_in_the_podcast_time_zone(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    s = _settings(tmp_path, sqlite_url, site, hook, tz="America/New_York", at="09:00")
    run_once(s, now=NOW)  # 07:00 in New York
    assert _sent(hook) == []
    run_once(s, now=datetime(2026, 11, 27, 13, 59, tzinfo=UTC))  # 08:59
    assert _sent(hook) == []
    run_once(s, now=datetime(2026, 11, 27, 14, 0, 30, tzinfo=UTC))  # 09:00:30
    assert len(_sent(hook)) == 2


def test_quiet_hours_hold_sends(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    s = _settings(tmp_path, sqlite_url, site, hook, channel={"quiet_hours": "22:00-07:00"})
    run_once(s, now=datetime(2026, 11, 27, 23, 0, tzinfo=UTC))
    assert _sent(hook) == []
    run_once(s, now=datetime(2026, 11, 28, 6, 59, tzinfo=UTC))
    assert _sent(hook) == []
    run_once(s, now=datetime(2026, 11, 28, 7, 1, tzinfo=UTC))
    assert len(_sent(hook)) == 2


def test_future_dated_post_waits_for_its_time(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    (site / "_posts/podcast/2026-11-30-8-coming-monday.md").write_text(
        '---\ntitle: "Coming Monday"\ndate: 2026-11-30 10:00:00 +0000\ncategory: "podcast"\n'
        'mp3_bytes: "100"\nmp3_duration: "2:00"\n---\nSoon.\n'
    )
    s = _settings(tmp_path, sqlite_url, site, hook)
    run_once(s, now=NOW)
    assert not any("Coming Monday" in t for t in _sent(hook))
    run_once(s, now=datetime(2026, 11, 30, 9, 59, tzinfo=UTC))
    assert not any("Coming Monday" in t for t in _sent(hook))
    run_once(s, now=datetime(2026, 11, 30, 10, 0, 5, tzinfo=UTC))
    assert sum("Coming Monday" in t for t in _sent(hook)) == 1


def test_evergreen_reshares_oldest_first_without_flooding(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    ev = {"evergreen": {"enabled": True, "every": "7d", "min_days_between": 90, "min_age": "30d"}}
    s = _settings(tmp_path, sqlite_url, site, hook, channel=ev)
    run_once(s, now=NOW)
    reshares = [t for t in _sent(hook) if "archive" in t.lower()]
    assert len(reshares) == 1 and "Welcome to Shipping It" in reshares[0]  # the oldest
    run_once(s, now=NOW + timedelta(days=1))
    assert len([t for t in _sent(hook) if "archive" in t.lower()]) == 1  # not yet a week
    run_once(s, now=NOW + timedelta(days=7, minutes=1))
    reshares = [t for t in _sent(hook) if "archive" in t.lower()]
    assert len(reshares) == 2 and "Print Shop" in reshares[1]  # next oldest, not the same
    run_once(s, now=NOW + timedelta(days=70))  # after a long downtime: one, not ten
    assert len([t for t in _sent(hook) if "archive" in t.lower()]) == 3


def test_a_rescheduled_post_follows_its_new_date(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    post = site / "_posts/podcast/2026-11-30-8-coming-monday.md"
    post.write_text(
        '---\ntitle: "Coming Monday"\ndate: 2026-11-30 10:00:00 +0000\ncategory: "podcast"\n'
        'mp3_bytes: "100"\nmp3_duration: "2:00"\n---\nSoon.\n'
    )
    s = _settings(tmp_path, sqlite_url, site, hook)
    run_once(s, now=NOW)
    post.write_text(post.read_text().replace("2026-11-30 10:00", "2026-11-28 10:00").replace(
        "Coming Monday", "Coming Saturday"))  # fmt: skip
    run_once(s, now=NOW + timedelta(minutes=1))
    run_once(s, now=datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC))
    sent = [t for t in _sent(hook) if "Coming" in t]
    assert len(sent) == 1 and "Coming Saturday" in sent[0]  # new date, new text

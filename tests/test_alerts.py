"""Operator alerts go out once per incident, not once per pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicator.pipeline import run_once
from tests.conftest import make_settings
from tests.fakes.webhook import FakeWebhook

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def hooks() -> Iterator[tuple[FakeWebhook, FakeWebhook]]:
    with FakeWebhook() as channel, FakeWebhook() as operator:
        yield channel, operator


def test_failed_delivery_and_failing_source_alert_once(
    tmp_path: Path, sqlite_url: str, site: Path, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    channel, operator = hooks
    channel.fail_next(50, status=400, body={"message": "bad webhook"}, method="POST")
    settings = make_settings(
        tmp_path, sqlite_url,
        sources=[
            {"name": "episodes", "type": "jekyll", "path": str(site), "verify_audio": False},
            {"name": "partner", "type": "feed", "url": f"http://127.0.0.1:{operator.port}/missing",
             "every": "1s", "timeout": "1s"},
        ],
        channels=[{"name": "hook", "type": "apprise", "url": f"json://127.0.0.1:{channel.port}/c"}],
        alerts={"url": f"json://127.0.0.1:{operator.port}/ops", "source_errors": 2},
    )  # fmt: skip
    for i in range(4):
        run_once(settings, now=NOW + timedelta(minutes=i * 30))
    alerts = [b["message"] for b in operator.bodies("/ops")]
    text = "\n".join(alerts)
    assert text.count("Delivery failed on hook") == 2  # two episodes, each told once
    assert text.count("Source partner failing") == 1
    assert "bad webhook" in text or "400" in text

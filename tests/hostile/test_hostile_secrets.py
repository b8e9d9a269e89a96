"""Secrets that must show nowhere: a webhook token in a channel's URL is masked in errors,
and is in no database column, command output, API answer, page or log line.

Real Apprise channels posting to a webhook receiver on 127.0.0.1 (tests/fakes/webhook.py),
real `syndicator` commands under the corpus's memory ceiling, and the real admin page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from syndicator import config
from syndicator.channels.apprise.client import AppriseChannel
from syndicator.channels.base import PermanentError, TransientError
from syndicator.channels.registry import make_channel
from syndicator.config import ChannelConfig
from tests.fakes import FakeWebhook, refused_url
from tests.hostile.conftest import run_cli, site_config
from tests.test_channels_apprise import TIMEOUT, post
from tests.test_web_support import client, running


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def test_a_token_in_the_url_is_masked_in_errors(hook: FakeWebhook) -> None:
    token, query_token = "tok-PATH-9f8e7d6c", "tok-QUERY-1a2b3c4d"
    url = f"json://127.0.0.1:{hook.port}/hooks/{token}?token={query_token}"
    ch = make_channel(ChannelConfig(name="hook", type="apprise", url=url), timeout=TIMEOUT)
    assert isinstance(ch, AppriseChannel)
    assert token not in ch.where and query_token not in ch.where
    # a server that echoes the path it was asked for, and a refused connection
    hook.fail_next(status=404, body={"message": f"no webhook at /hooks/{token}"})
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert "HTTP 404: no webhook at /" in info.value.message
    refused = make_channel(
        ChannelConfig(name="hook", type="apprise", url=f"{refused_url('json')}/hooks/{token}"),
        timeout=TIMEOUT,
    )
    with pytest.raises(TransientError) as info2:
        refused.send(post())
    for err in (info.value, info2.value):
        assert token not in str(err) and query_token not in str(err), str(err)


def test_a_webhook_token_is_in_no_column_output_api_or_log(
    tmp_path: Path, site: Path, hook: FakeWebhook
) -> None:
    """discord:// and json:// tokens, a failing fake: the token is shown nowhere."""
    tokens = ["DiscordTok-5e6f7a8b9c", "JsonPathTok-0d1e2f3a", "QueryTok-4b5c6d7e"]
    # the json:// endpoint echoes the path it was asked for, as some servers do
    hook.fail_next(50, status=404, body={"message": f"nothing at /hooks/{tokens[1]}"}, path="^/h")
    hook.fail_next(50, status=404, body={"message": "Unknown Webhook"}, path="^/api/webhooks/")
    db = tmp_path / "s.db"
    cfg = site_config(
        tmp_path,
        site,
        db_url=f"sqlite:///{db}",
        extra=f"""
[announce]
window = "3650d"
catch_up = "send"  # every channel tries at once (not held for a person)
[[channels]]
name = "discord"
type = "apprise"
url = "discord://424242/{tokens[0]}"
api_url = "http://127.0.0.1:{hook.port}"
timeout = "2s"
[[channels]]
name = "hook"
type = "apprise"
url = "json://127.0.0.1:{hook.port}/hooks/{tokens[1]}?token={tokens[2]}"
timeout = "2s"
[[channels]]
name = "down"
type = "apprise"
url = "{refused_url("json")}/hooks/{tokens[1]}"
timeout = "2s"
""",
    )
    outputs: list[str] = []
    commands = [
        ["--log-level", "debug", "run-once", "-v"],
        ["deliveries", "--json"],
        ["deliveries"],
        ["status", "--json"],
        ["status"],
    ]
    for args in commands:
        done = run_cli(cfg, *args, timeout=80)
        outputs += [done.stdout, done.stderr]
    assert hook.requests("POST"), "the channels never tried"
    assert '"last_error"' in outputs[2] and "404" in outputs[2]  # failures were recorded
    with sqlite3.connect(db) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            for row in con.execute(f'SELECT * FROM "{name}"'):
                outputs.append(" ".join(str(v) for v in row))
    settings = config.load(cfg)
    with running(settings) as server, client(server) as c:
        for path in ["/api/status", "/api/deliveries", "/api/channels", "/api/problems",
                     "/api/episodes", "/deliveries", "/channels", "/problems", "/"]:  # fmt: skip
            resp = c.get(path)
            outputs.append(resp.text)
    text = "\n".join(outputs)
    for token in tokens:
        assert token not in text, token

"""A cron `run-once` imports only what the pass needs (issue 14): no network library when
no channel is due, only the due channel's one when one is, and never the web stack.

Each pass runs in a fresh interpreter that calls the CLI entry and then prints the names
in its sys.modules, on a config with a feed source served from 127.0.0.1 and a live
channel of every built-in kind (secrets in the environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.builders import every_kind_channels, feed_source, write_config
from tests.feedserver import FeedServer, make_feed_xml

# the CLI entry as the `syndicator` script calls it, then what it imported
CHILD = """
import sys
from syndicator.cli import main
sys.argv[0] = "syndicator"
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code)
print("MODULES", " ".join(sorted(sys.modules)))
"""

# each built-in kind's network library (top-level package) by channel name in the config
LIBRARIES = {
    "x": "tweepy",
    "toot": "mastodon",
    "sky": "atproto_client",
    "li": "linkedin_api",
    "chat": "apprise",
    # nostr-sdk itself is loaded: the channel's account is its public key (joined.py
    # asks every pass), which takes the key library; the relay client is not
    "relay": "websockets",
    "thr": "syndicator.channels.threads.client",  # plain httpx: its client module
}
NEVER = ("fastapi", "starlette", "uvicorn", "PIL", "twitter_text", "atproto_core")


def run(cfg: Path, env: dict[str, str], *args: str) -> tuple[str, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "--config", str(cfg), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    modules = next(ln for ln in lines if ln.startswith("MODULES ")).split()[1:]
    exit_line = next((ln for ln in lines if ln.startswith("EXIT ")), "EXIT 0")
    return exit_line.split(" ", 1)[1], set(modules)


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A config with one feed (every item older than the announce window: nothing is
    announced) and a channel of every built-in kind; its first pass has run."""
    with FeedServer() as srv:
        srv.add_feed("/feed.xml", make_feed_xml(3, start=datetime(2020, 1, 1, tzinfo=UTC)))
        tables, secrets = every_kind_channels(srv.url("").rstrip("/"))
        # the items' audio is on a host that doesn't exist: announce without asking it
        source = feed_source(srv.url("/feed.xml"), keys="verify_audio = false")
        cfg = write_config(tmp_path, source, *tables)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
        env.update(secrets)
        code, _ = run(cfg, env, "run-once")  # stores the feed's episodes (a 200)
        assert code in ("0", "None")
        yield cfg, env


def test_nothing_due_imports_no_network_library(site: tuple[Path, dict[str, str]]) -> None:
    cfg, env = site
    code, modules = run(cfg, env, "run-once", "--force")  # the feed answers 304
    assert code in ("0", "None")
    assert loaded(modules, "syndicator.pipeline")  # the pass did run in this process
    for lib in (*LIBRARIES.values(), *NEVER):
        assert not loaded(modules, lib), f"{lib} imported by a pass with nothing due"
    # the kinds themselves are loaded: their config models validated the channels
    assert loaded(modules, "syndicator.channels.mastodon")


def test_a_due_delivery_imports_only_its_channels_library(
    site: tuple[Path, dict[str, str]],
) -> None:
    cfg, env = site
    code, _ = run(cfg, env, "announce", "#1", "--channel", "toot")  # queued now
    assert code in ("0", "None")
    # the fake instance is the feed server: the post is refused (a 404), which is fine,
    # what counts is that it was attempted with Mastodon.py and nothing else
    code, modules = run(cfg, env, "run-once")
    assert code == "1"  # the pass ran; the refused post needs attention
    assert loaded(modules, "mastodon")
    others = [lib for name, lib in LIBRARIES.items() if name != "toot"]
    for lib in (*others, *NEVER):
        assert not loaded(modules, lib), f"{lib} imported when only Mastodon had a post due"

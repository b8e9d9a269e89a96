"""Channel kinds are plugins: the rule that only syndicator/channels/ knows networks, the
built-in kinds as entry points, and a third-party kind installed with pip and used end to
end without a change to syndicator."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import syndicator
from syndicator import config
from syndicator.config import ConfigError
from tests.fakes.webhook import FakeWebhook

PKG = Path(syndicator.__file__).parent
EXAMPLE = Path(__file__).parent / "plugins" / "syndicator-example-channel"

# A network's name, its hosts or its client libraries (case-insensitive).
NETWORK = re.compile(
    r"twitter|tweepy|\bx\.com|mastodon|fosstodon|bluesky|bsky|atproto|apprise|discord",
    re.IGNORECASE,
)
# Branching on a channel's kind instead of asking it.
BRANCH = re.compile(r"\b(?:ch|c|channel|cfg|conf)\.type\s*(?:==|!=|in\b|not in\b)")
# Modules that use the Apprise *library* for operator alerts (not a channel kind).
ALLOWED = {
    "alerts.py": "operator alerts are sent with the Apprise library itself",
    "logs.py": "quiets the Apprise library's logger, used by alerts.py",
}


def _code(path: Path) -> str:
    """The module's code without docstrings and comments (docs may name networks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def test_no_module_outside_channels_names_a_network() -> None:
    found: list[str] = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "channels" or str(rel) in ALLOWED:
            continue
        code = _code(path)
        for line in code.splitlines():
            if NETWORK.search(line) or BRANCH.search(line):
                found.append(f"syndicator/{rel}: {line.strip()[:120]}")
    assert found == [], "ask the channel kind instead:\n" + "\n".join(found)


def test_the_rule_sees_through_nothing_but_docs(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text('"""Posts to Mastodon."""\n# Bluesky too\nLIMITS = {"twitter": 280}\n')
    assert NETWORK.search(_code(mod)) is not None
    assert "Mastodon" not in _code(mod) and "Bluesky" not in _code(mod)


def test_builtin_kinds_are_entry_points() -> None:
    names = {ep.name for ep in entry_points(group="syndicator.channels")}
    assert names >= {"twitter", "mastodon", "bluesky", "apprise", "ping"}


def test_the_feed_pings_channel_name_is_reserved_by_its_kind(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[[channels]]\nname = "directory"\ntype = "mastodon"\n')
    with pytest.raises(ConfigError, match=r"channels \"directory\".*feed pings"):
        config.load(tmp_path / "s.toml")


def test_an_error_names_the_kinds_own_keys(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        '[[channels]]\nname = "fosstodon"\ntype = "mastodon"\ninstanse = "https://m.example"\n'
        '[[channels]]\nname = "sky"\ntype = "bluesky"\nhandel = "me.example"\n'
    )
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "s.toml")
    text = str(err.value)
    assert 'channels "fosstodon": unknown key \'instanse\' (did you mean "instance"?)' in text
    assert 'channels "sky": unknown key \'handel\' (did you mean "handle"?)' in text
    # a key of another kind is not one of this kind's
    (tmp_path / "s.toml").write_text(
        '[[channels]]\nname = "fosstodon"\ntype = "mastodon"\nservice = "https://x.example"\n'
    )
    with pytest.raises(ConfigError, match="unknown key 'service'"):
        config.load(tmp_path / "s.toml")


# --- a third-party kind --------------------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def example_kind() -> Iterator[None]:
    """tests/plugins/syndicator-example-channel installed into this venv, then removed."""
    r = _pip("install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        _pip("uninstall", "-q", "-y", "syndicator-example-channel")


def _cli(cfg: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_pip_installed_kind_announces_like_a_builtin(
    example_kind: None, tmp_path: Path, site: Path
) -> None:
    day = datetime.now(UTC) - timedelta(hours=2)
    (site / "_posts" / "podcast" / f"{day:%Y-%m-%d}-120-plugins.md").write_text(
        f'---\ntitle: "Plugins All the Way Down"\ndate: {day:%Y-%m-%d %H:%M:%S} +0000\n'
        'category: "podcast"\nmp3_bytes: "100"\nmp3_duration: "2:00"\n'
        'guest: "Ann Lee"\nguest_example: "@Ann"\nguest_2: "Bo"\n---\nBody.\n'
    )
    with FakeWebhook() as hook:
        cfg = tmp_path / "s.toml"
        cfg.write_text(
            '[database]\nurl = "sqlite:///s.db"\n'
            f'[[sources]]\nname = "episodes"\ntype = "jekyll"\npath = "{site}"\n'
            "verify_audio = false\n"
            'episode_url = "{site.url}/podcast/{slug}"\n'
            '[handles]\n"Bo" = { example = "bo" }\n'
            '[[channels]]\nname = "team"\ntype = "example"\n'
            f'endpoint = "http://127.0.0.1:{hook.port}/announce"\n'
        )
        env = {"SYNDICATOR_TEAM_TOKEN": "s3cret"}
        run = _cli(cfg, "run-once", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        posts = hook.posts("/announce")
        bodies = [json.loads(p.body) for p in posts]
        mine = [b for b in bodies if "Plugins All the Way Down" in b["text"]]
        # the kind's own template, its mention form, front matter and [handles] both
        assert [b["text"] for b in mine] == [
            "Plugins All the Way Down, with @ann@example and @bo@example. " + mine[0]["url"]
        ], bodies
        assert all(p.headers["authorization"] == "Bearer s3cret" for p in posts)
        # a second pass sends nothing again
        assert _cli(cfg, "run-once", env=env).returncode == 0
        assert len(hook.posts("/announce")) == len(posts)
        rows = json.loads(_cli(cfg, "deliveries", "--json", env=env).stdout)
        team = [r["state"] for r in rows if r["channel"] == "team"]
        assert team.count("sent") == len(posts) and set(team) <= {"sent", "skipped"}, team
        # the episode's guests carry the kind's handles in --json
        eps = json.loads(_cli(cfg, "episodes", "--json", env=env).stdout)
        guests = next(e for e in eps if e["title"] == "Plugins All the Way Down")["guests"]
        assert guests[0]["handles"] == {"example": "@Ann"} and guests[0]["example"] == "@Ann"


def test_a_pip_installed_kind_has_its_own_config_model(example_kind: None, tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[[channels]]\nname = "team"\ntype = "example"\nendpont = "http://x"\n')
    r = _cli(cfg, "check", env={})
    assert r.returncode == 2
    assert 'channels "team": unknown key \'endpont\' (did you mean "endpoint"?)' in r.stderr


def test_guests_hash_as_before_handles_were_a_map() -> None:
    """Stored episodes must not all look changed after the upgrade (the hash below was
    computed by the code before `Guest.handles`)."""
    from syndicator.sources.base import EpisodeData, Guest

    ep = EpisodeData(
        guid="g", title="T", date=datetime(2026, 1, 1, tzinfo=UTC), key="k",
        guests=[
            Guest(name="A", handles={"twitter": "a", "mastodon": "@a@m.example"}, website="w"),
            Guest(name="B"),
        ],
    )  # fmt: skip
    assert ep.content_hash() == ("9e4722462135972caec84eb03f7ce190736151a04cc65d86165b5ae5f8298c1c")
    assert ep.guests[0].mastodon == "@a@m.example" and ep.guests[1].bluesky is None


def test_the_hosts_handles_are_keys_of_the_installed_kinds(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[podcast.host]\nname = "Jane"\nmastodon = "@jane@m.example"\n')
    assert config.load(cfg).podcast.host.handles == {"mastodon": "@jane@m.example"}
    cfg.write_text('[podcast.host]\nname = "Jane"\nmastodn = "@jane@m.example"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'mastodn' \(did you mean \"mastodon\"\?\)"):
        config.load(cfg)


def test_a_loaded_kind_is_checked_against_the_protocol_plugins_states() -> None:
    """plugins.py imports nothing of syndicator, so it states what it reads of a kind as a
    Protocol: every built-in has all of it, and an object missing a member does not."""
    from syndicator.plugins import Kind, kinds

    assert set(kinds()) >= {"twitter", "mastodon", "bluesky", "apprise"}
    assert all(isinstance(k, Kind) for k in kinds().values())

    class Half:  # a kind's attributes, but no way to count or build
        name, config, secrets, default_limit = "half", None, (), 500

    assert not isinstance(Half(), Kind)

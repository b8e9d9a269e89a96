"""Config: typed settings, relative paths, secrets from the environment, clear errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from syndicator import config
from syndicator.config import ConfigError, JekyllSourceConfig

GOOD = """
[podcast]
title = "Show"
timezone = "Europe/Berlin"

[database]
url = "sqlite:///data/s.db"

[[sources]]
name = "episodes"
type = "jekyll"
path = "site"

[[sources]]
name = "partner"
type = "feed"
url = "https://partner.example/feed.xml"
every = "1h30m"

[announce]
window = "14d"

[[channels]]
name = "fosstodon"
type = "mastodon"
instance = "https://fosstodon.org"
min_interval = "10m"
"""


def test_load_types_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(GOOD)
    s = config.load(tmp_path / "s.toml")
    src = s.sources[0]
    assert isinstance(src, JekyllSourceConfig)
    assert src.path == (tmp_path / "site").resolve()
    assert s.database.url == "sqlite:///" + str((tmp_path / "data" / "s.db").resolve())
    assert s.sources[1].every == timedelta(hours=1, minutes=30)
    assert s.announce.window == timedelta(days=14)
    assert s.channels[0].min_interval == timedelta(minutes=10)
    assert s.podcast.tz.key == "Europe/Berlin"


def test_every_problem_reported_with_line(tmp_path: Path) -> None:
    bad = GOOD.replace('every = "1h30m"', 'every = "3 parsecs"').replace(
        'timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'
    )
    (tmp_path / "s.toml").write_text(bad)
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "s.toml")
    lines = {p.where: p.line for p in err.value.problems}
    text = bad.splitlines()
    assert "3 parsecs" in text[lines["sources.1.every"] - 1]
    assert "Mars" in text[lines["podcast.timezone"] - 1]
    assert any("IANA" in p.message for p in err.value.problems)


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[podcast]\ntitle = "x\n')
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "s.toml")
    assert err.value.problems[0].line == 2


def test_unknown_keys_and_duplicate_names_rejected(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        GOOD + '\n[[channels]]\nname = "fosstodon"\ntype = "twitter"\n'
    )
    with pytest.raises(ConfigError, match="unique"):
        config.load(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(GOOD.replace("[announce]", "[announce]\nwindoww = 3"))
    with pytest.raises(ConfigError, match="windoww"):
        config.load(tmp_path / "s.toml")


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATOR_FOSSTODON_ACCESS_TOKEN", "tok")
    monkeypatch.setenv("SYNDICATOR_MY_BSKY_APP_PASSWORD", "pw")
    assert config.secret("fosstodon", "access_token") == "tok"
    assert config.secret("my-bsky", "app_password") == "pw"
    assert config.secret("x", "access_token") is None


def test_secret_keys_are_not_accepted_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(GOOD + 'access_token = "oops"\n')
    with pytest.raises(ConfigError, match="access_token"):
        config.load(tmp_path / "s.toml")


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", *args], cwd=cwd, capture_output=True, text=True,
        env=env, timeout=120,
    )  # fmt: skip


def test_init_writes_an_example_that_loads(tmp_path: Path) -> None:
    r = _cli("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = config.load(tmp_path / "syndicator.toml")
    assert s.channels and all(c.dry_run for c in s.channels)
    assert _cli("init", cwd=tmp_path).returncode == 2  # won't overwrite


def test_init_tells_about_podcast_locked(tmp_path: Path) -> None:
    # podcast:locked is on by default: the config `init` writes must say so, and what it does
    assert _cli("init", cwd=tmp_path).returncode == 0
    text = (tmp_path / "syndicator.toml").read_text("utf-8")
    podcast = text.split("[podcast]", 1)[1].split("\n[", 1)[0]
    lines = podcast.splitlines()
    i = next(i for i, x in enumerate(lines) if x.startswith("locked"))
    assert lines[i].split("#")[0].split("=")[1].strip() == "true"
    comment = " ".join(lines[i - 3 : i + 1])
    assert "podcast:locked" in comment and "import" in comment and "false" in comment
    assert config.load(tmp_path / "syndicator.toml").podcast.locked is True


def test_missing_config_is_exit_2_with_advice(tmp_path: Path) -> None:
    r = _cli("--config", str(tmp_path / "nope.toml"), "status", cwd=tmp_path)
    assert r.returncode == 2
    assert "syndicator init" in r.stderr


def test_bad_config_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(GOOD.replace('"10m"', '"ten minutes"'))
    r = _cli("--config", "s.toml", "check", cwd=tmp_path)
    assert r.returncode == 2
    assert "s.toml:" in r.stderr and "min_interval" in r.stderr


def test_directory_is_a_reserved_channel_name(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[[channels]]\nname = "directory"\ntype = "twitter"\n')
    with pytest.raises(ConfigError, match="feed pings"):
        config.load(tmp_path / "s.toml")


def test_login_limits_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[web]\nlogin_attempts = 3\nlogin_window = "2m"\nlogin_queue = 0\n')
    web = config.load(cfg).web
    assert (web.login_attempts, web.login_window.total_seconds(), web.login_queue) == (3, 120, 0)
    for bad, line in (
        ('login_window = "0s"', 2),
        ("login_attempts = 0", 2),
        ("login_checks = -1", 2),
    ):
        cfg.write_text(f"[web]\n{bad}\n")
        with pytest.raises(ConfigError) as err:
            config.load(cfg)
        assert err.value.problems[0].line == line, bad


def test_jekyll_ignore_tags_and_limits() -> None:
    src = JekyllSourceConfig.model_validate(
        {
            "type": "jekyll",
            "name": "site",
            "path": "site",
            "ignore_tags": ["all_tags", "{% asset_path x %}", " post_url "],
            "max_render_seconds": "2s",
        }
    )
    assert src.ignore_tags == ["all_tags", "asset_path", "post_url"]
    assert src.max_render_seconds == timedelta(seconds=2)
    assert (src.max_render_bytes, src.max_loop_iterations, src.max_yaml_nodes) == (
        2 * 1024 * 1024,
        100_000,
        100_000,
    )
    with pytest.raises(ValueError, match="max_loop_iterations"):
        JekyllSourceConfig.model_validate(
            {"type": "jekyll", "name": "s", "path": "s", "max_loop_iterations": 0}
        )


def test_config_errors_name_items_by_name_and_suggest_keys(tmp_path: Path) -> None:
    bad = (
        GOOD.replace('min_interval = "10m"', 'min_interval = "10m"\ntimout = "3s"')
        .replace('type = "mastodon"', 'type = "mastodn"')
        .replace("[announce]", '[announce]\nwindw = "1d"', 1)
    )
    (tmp_path / "s.toml").write_text(bad)
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "s.toml")
    text = "\n".join(str(p) for p in err.value.problems)
    channel = "fosstodon"
    assert f'channels "{channel}": type must be one of' in text, text
    assert "channels.0" not in text and "channels.1" not in text
    assert f'channels "{channel}": unknown key \'timout\' (did you mean "timeout"?)' in text
    assert "[announce]: unknown key 'windw' (did you mean \"window\"?)" in text
    assert all(p.line for p in err.value.problems)


def test_an_unnamed_source_is_named_by_its_position(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[[sources]]\ntype = "feed"\nurl = "https://x.example/f"\n')
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "s.toml")
    assert any(str(p).startswith(f"{tmp_path / 's.toml'}:") and "sources #1" in str(p)
               for p in err.value.problems), [str(p) for p in err.value.problems]  # fmt: skip

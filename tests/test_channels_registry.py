"""make_channel: secrets from the environment, and errors that say what to set."""

from __future__ import annotations

from typing import Any

import pytest

from syndicator.channels.apprise.client import AppriseChannel
from syndicator.channels.base import PermanentError
from syndicator.channels.bluesky.client import BlueskyChannel
from syndicator.channels.mastodon.client import MastodonChannel
from syndicator.channels.registry import ConfigurationError, env_var, make_channel
from syndicator.channels.twitter.client import TwitterChannel
from syndicator.config import ChannelConfig

TWITTER_KEYS = ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SYNDICATOR_"):
            monkeypatch.delenv(key)


def cfg(**kw: Any) -> ChannelConfig:
    return ChannelConfig.model_validate(kw)


def test_twitter_missing_secrets_names_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATOR_MY_X_API_KEY", "k")
    with pytest.raises(ConfigurationError) as info:
        make_channel(cfg(name="my-x", type="twitter"))
    err = info.value
    assert isinstance(err, PermanentError)
    assert err.env == [
        "SYNDICATOR_MY_X_API_SECRET",
        "SYNDICATOR_MY_X_ACCESS_TOKEN",
        "SYNDICATOR_MY_X_ACCESS_TOKEN_SECRET",
    ]
    for var in err.env:
        assert var in err.message
    assert "SYNDICATOR_MY_X_API_KEY" not in err.message  # that one is set


def test_twitter_built_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in TWITTER_KEYS:
        monkeypatch.setenv(f"SYNDICATOR_X_{key}", "v")
    ch = make_channel(cfg(name="x", type="twitter"))
    assert isinstance(ch, TwitterChannel)
    assert (ch.name, ch.type, ch.unknown_policy, ch.limit()) == ("x", "twitter", "readback", 280)
    assert make_channel(cfg(name="x", type="twitter", limit=25000)).limit() == 25000


def test_mastodon_needs_token_and_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="needs `instance`"):
        make_channel(cfg(name="toot", type="mastodon"))
    with pytest.raises(ConfigurationError) as info:
        make_channel(cfg(name="toot", type="mastodon", instance="https://example.social"))
    assert "SYNDICATOR_TOOT_ACCESS_TOKEN" in info.value.message
    monkeypatch.setenv("SYNDICATOR_TOOT_ACCESS_TOKEN", "t")
    ch = make_channel(cfg(name="toot", type="mastodon", instance="https://example.social"))
    assert isinstance(ch, MastodonChannel)
    assert ch.unknown_policy == "idempotent"


def test_bluesky_needs_handle_and_app_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="needs `handle`"):
        make_channel(cfg(name="sky", type="bluesky"))
    with pytest.raises(ConfigurationError) as info:
        make_channel(cfg(name="sky", type="bluesky", handle="pod.bsky.social"))
    assert info.value.env == ["SYNDICATOR_SKY_APP_PASSWORD"]
    assert "export SYNDICATOR_SKY_APP_PASSWORD=" in info.value.message
    monkeypatch.setenv("SYNDICATOR_SKY_APP_PASSWORD", "p")
    ch = make_channel(cfg(name="sky", type="bluesky", handle="@pod.bsky.social"))
    assert isinstance(ch, BlueskyChannel)
    assert ch.handle == "pod.bsky.social"
    assert (ch.unknown_policy, ch.limit()) == ("readback", 300)


def test_apprise_url_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_channel(cfg(name="team-chat", type="apprise"))
    assert info.value.env == ["SYNDICATOR_TEAM_CHAT_URL"]
    assert "SYNDICATOR_TEAM_CHAT_URL" in info.value.message
    monkeypatch.setenv("SYNDICATOR_TEAM_CHAT_URL", "discord://1234567890/secret-token_XY")
    ch = make_channel(cfg(name="team-chat", type="apprise"))
    assert isinstance(ch, AppriseChannel)
    assert (ch.unknown_policy, ch.limit()) == ("none", 2000)
    ch2 = make_channel(cfg(name="hook", type="apprise", url="json://127.0.0.1:9/x"))
    assert ch2.limit() == 32768


def test_bad_apprise_url_is_a_configuration_error_without_the_secret() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_channel(cfg(name="chat", type="apprise", url="nosuchscheme://hunter2@host"))
    assert "nosuchscheme" in info.value.message
    assert "hunter2" not in info.value.message


def test_bad_api_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in TWITTER_KEYS:
        monkeypatch.setenv(f"SYNDICATOR_X_{key}", "v")
    with pytest.raises(ConfigurationError, match="api_url"):
        make_channel(cfg(name="x", type="twitter", api_url="api.x.com"))


def test_env_var_matches_config_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicator.config import secret

    monkeypatch.setenv(env_var("My.Chan-1", "app_password"), "yes")
    assert secret("My.Chan-1", "APP_PASSWORD") == "yes"

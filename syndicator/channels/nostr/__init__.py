"""Nostr, the kind: config (relays), the secret key, handles (npubs), socialInteract.

The channel that signs notes and talks to relays (nostr-sdk, websockets) is `client.py`,
imported by `build()` only. nostr-sdk itself is imported by the methods that need keys or
bech32 (a handle, the account's public key, a note's nevent URI), not with the kind.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from syndicator.channels.kind import ChannelKind
from syndicator.channels.nostr.shared import DEFAULT_LIMIT, UNKNOWN_POLICY, event_uri
from syndicator.channels.registry import ConfigurationError, env_var
from syndicator.config import ChannelConfig, secret

if TYPE_CHECKING:
    from nostr_sdk import Keys, PublicKey

    from syndicator.channels.nostr.client import NostrChannel

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def relay_url_problem(url: str) -> str | None:
    """Why `url` is not a usable relay address, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("wss", "ws") or not parts.hostname:
        return "a relay URL starts with wss:// and names a host"
    if parts.scheme == "ws" and parts.hostname not in _LOOPBACK:
        return "ws:// (unencrypted) is only for a relay on this machine; use wss://"
    return None


class NostrConfig(ChannelConfig):
    type: Literal["nostr"]
    relays: list[str] = Field(default_factory=list)  # wss:// URLs (ws:// on 127.0.0.1)
    min_relays: int = Field(default=1, ge=1)  # OKs needed before a note counts as sent

    @field_validator("relays")
    @classmethod
    def _relays(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for url in (u.strip() for u in v):
            problem = relay_url_problem(url)
            if problem:
                raise ValueError(f"{url!r}: {problem}")
            if url not in out:
                out.append(url)
        return out

    @model_validator(mode="after")
    def _enough_relays(self) -> NostrConfig:
        if self.relays and self.min_relays > len(self.relays):
            raise ValueError(
                f"min_relays = {self.min_relays} but only {len(self.relays)} relays are listed; "
                "add relays or lower min_relays"
            )
        return self


def _keys(value: str) -> Keys | None:
    from nostr_sdk import Keys, NostrSdkError

    try:
        return Keys.parse(value.strip())
    except NostrSdkError:
        return None


class NostrKind(ChannelKind):
    """Code points of the whole note; no hard limit, `limit` (default 1,000) keeps it short."""

    name = "nostr"
    config = NostrConfig
    secrets = ("NSEC",)
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    # podcast:socialInteract: a note hosts replies (NIP-10)
    interact_protocol: ClassVar[str | None] = "nostr"
    threads = True  # NIP-10 marked `e` tags (root, reply) and a `p` tag

    def handle(self, value: Any) -> str:
        """An npub, hex key, nprofile or nostr: URI -> the npub; anything else is ""."""
        v = str(value or "").strip().lstrip("@")
        if not v:
            return ""
        from nostr_sdk import NostrSdkError, PublicKey

        try:
            return str(PublicKey.parse(v).to_bech32())
        except NostrSdkError:
            return ""

    def mention(self, handle: str) -> str:
        return f"nostr:{handle}" if handle else ""  # NIP-27; the p tag comes from it

    def check(self, cfg: Any) -> None:
        if not cfg.relays:
            raise ConfigurationError(
                f"channel {cfg.name!r} (nostr) needs `relays`, the relays to publish to, "
                'e.g. relays = ["wss://relay.example.org"]'
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> NostrChannel:
        from syndicator.channels.nostr.client import NostrChannel

        keys = _keys(secrets["NSEC"])
        if keys is None:
            raise ConfigurationError(
                f"channel {cfg.name!r} (nostr): {env_var(cfg.name, 'NSEC')} is not a Nostr "
                "private key; set it to the nsec1… key or its 64 hex digits"
            )
        return NostrChannel(
            cfg.name,
            relays=cfg.relays,
            keys=keys,
            min_relays=cfg.min_relays,
            timeout=timeout,
            limit=cfg.limit,
        )

    def endpoint(self, cfg: Any) -> str:
        return ", ".join(cfg.relays)

    def account(self, cfg: Any) -> str | None:
        keys = _keys(secret(cfg.name, "nsec") or "")
        return keys.public_key().to_hex() if keys else None  # the public key names it

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        """The note as `nostr:nevent1…` and the author's npub."""
        from nostr_sdk import Nip19Event, NostrSdkError, PublicKey

        uri = remote_url if remote_url and remote_url.startswith("nostr:nevent1") else None
        author: PublicKey | None = None
        try:
            if uri:
                author = Nip19Event.from_nostr_uri(uri).author()
            elif remote_id and re.fullmatch(r"[0-9a-f]{64}", remote_id):
                account = self.account(cfg)
                uri = event_uri(remote_id, account, list(getattr(cfg, "relays", [])))
                author = PublicKey.parse(account) if account else None
        except NostrSdkError:
            return None
        if not uri:
            return None
        out = {"uri": uri}
        if author is not None:
            out["accountId"] = str(author.to_bech32())
        return out

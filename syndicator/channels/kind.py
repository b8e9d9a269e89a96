"""A channel kind: everything syndicator knows about one network, in one object.

Kinds are plugins. Each registers a `ChannelKind` subclass in the `syndicator.channels`
entry-point group (the built-in ones too, in syndicator's own pyproject.toml):

    [project.entry-points."syndicator.channels"]
    mastodon = "syndicator.channels.mastodon:MastodonKind"

The rest of syndicator never names a network: it asks the kind (see docs/plugins.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from syndicator.channels.base import Channel
    from syndicator.config import ChannelConfig


class ChannelKind:
    """Subclass this; override what differs. Instances hold no state."""

    # the `type` in [[channels]]; also the entry point's name
    name: ClassVar[str] = ""
    # the kind's config model: a ChannelConfig subclass with `type: Literal["<name>"]`;
    # None for a kind that is never configured by hand (the feed pings)
    config: ClassVar[type[ChannelConfig] | None] = None
    # SYNDICATOR_<CHANNEL>_<KEY> variables the kind needs, in the order they are reported
    secrets: ClassVar[tuple[str, ...]] = ()
    # post length limit when neither the config nor the network says otherwise
    default_limit: ClassVar[int] = 500
    # what the sender does with an `unknown` row: "idempotent" (resend is safe),
    # "readback" (ask the network with `reconcile`), "none" (a person decides)
    unknown_policy: ClassVar[str] = "none"
    # guests have handles on this network: front matter `guest_<name>`, [handles] key <name>
    has_handles: ClassVar[bool] = False
    # the kind's handle was a field of Guest before handles became a map: an episode's
    # content hash keeps a None for it, so stored hashes stay the same. A kind added
    # later leaves it False, so installing it changes no stored episode's hash.
    hashed_when_absent: ClassVar[bool] = False
    # other keys in [handles] and in `fit.count` that mean this kind (e.g. "x")
    aliases: ClassVar[tuple[str, ...]] = ()
    # a channel that exists without a [[channels]] entry, and whose name is reserved
    implicit_channel: ClassVar[str | None] = None
    implicit_purpose: ClassVar[str] = ""  # what that channel is, for the reserved-name error
    # a folder with this kind's default template(s) `<name>.j2`, searched after the
    # user's and the shipped folders (third-party kinds ship theirs here)
    templates: ClassVar[Path | None] = None
    # the podcast:socialInteract protocol of a post on this network, or None when its
    # posts can't host comments ("activitypub", "atproto", "twitter", "nostr", ...)
    interact_protocol: ClassVar[str | None] = None
    # the channel can post replies to its own posts (Post.reply_to / Post.reply_root):
    # `thread` / `thread_template` in a [[channels]] entry are allowed only then
    threads: ClassVar[bool] = False
    # the episode card's size in pixels on this network (None: [cards] width x height);
    # the channel gets it as Post.image_file when the channel's `image` is "card"
    card_size: ClassVar[tuple[int, int] | None] = None
    # False: the kind's channels have no `read_counts`, so a pass never builds one (and
    # imports its library) only to find that out when its sent posts are due a read
    reads_counts: ClassVar[bool] = True

    # -- counting

    def count(self, text: str) -> int:
        """The length of `text` as the network measures it against its limit."""
        return len(text)

    # -- guests' handles

    def source_handle(self, value: str) -> str:
        """What a source stores from a front matter value (a light clean-up)."""
        return value.strip()

    def handle(self, value: Any) -> str:
        """A handle normalised for this network; "" when it is not a usable one."""
        return str(value or "").strip().lstrip("@")

    def mention(self, handle: str) -> str:
        """The text that mentions an already normalised handle."""
        return "@" + handle if handle else ""

    def mention_for(self, handle: str, name: str) -> str:
        """The text that mentions a guest by handle and display name ("" when it can't be
        written: the plain name is shown). Networks whose mention carries the name as
        well as the id (LinkedIn's `@[Name](urn:li:person:...)`) override this; the
        default is `mention(handle)`."""
        return self.mention(handle)

    # -- channels

    def check(self, cfg: Any) -> None:
        """Raise ConfigurationError for settings the kind needs (checked before secrets)."""

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> Channel:
        """The channel for `cfg`; raise ValueError or ConfigurationError when it can't be."""
        raise NotImplementedError

    def implicit(self, settings: Any, timeout: float) -> Channel | None:
        """The implicit channel for these settings, or None when it has nothing to do."""
        return None

    def endpoint(self, cfg: Any) -> str:
        """What the web page shows as where the channel posts (never a secret)."""
        return ""

    def account(self, cfg: Any) -> str | None:
        """Text that picks the account the channel posts as (endpoint and the secret or
        handle), or None when nothing names it; only a hash of it is stored."""
        return None

    def account_key(self, cfg: Any) -> str | None:
        who = self.account(cfg)
        if not who:
            return None
        return hashlib.sha256(f"syndicator-account|{self.name}|{who}".encode()).hexdigest()[:24]

    # -- the feed

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        """{"uri": ..., "accountId": ..., "accountUrl": ...} for a sent post (accountId and
        accountUrl may be omitted), or None when it can't be said.

        The default, for a kind with an `interact_protocol`: the post's URL (else its id)
        as the uri, and no account."""
        if not self.interact_protocol:
            return None
        uri = (remote_url or remote_id or "").strip()
        return {"uri": uri} if uri else None

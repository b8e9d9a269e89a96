"""One small interface every channel implements, and the three ways a send can fail.

Channels know nothing of files, feeds or the store: they get a frozen `Post` and
either return where it went or raise one of the errors below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from syndicator.retry_after import clamp_wait


class SendError(Exception):
    """Base of the send errors; `message` keeps the API's own words."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(SendError):
    """Not sent; try again later (rate limit, 429, connection refused before sending)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ):
        super().__init__(message, status=status)
        # seconds, from Retry-After or a rate-limit reset header; held to a sane range here
        # too, as some come from client libraries' own header parsing
        self.retry_after = clamp_wait(retry_after)


class PermanentError(SendError):
    """Will never succeed as is (auth, validation, 4xx): the row becomes `failed`."""


class UnknownOutcome(SendError):
    """The request may have reached the network (timeout after sending, reset, 5xx)."""


class Progress:
    """What earlier attempts at one delivery recorded mid-send; kept on its row.

    A post that takes more than one request (Threads: create a container, then publish
    it) records the first step's result before taking the next, so the attempt after a
    crash or a lost answer continues from it instead of doing the first step again. A
    post built once and sent identically on every attempt (a signed Nostr note) records
    what it built before its first network call.
    """

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._values = dict(values or {})
        # stores the values on the row; raises TransientError when it can't (the lease
        # was lost, the database failed): the next step must then not be taken
        self._save = save

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def record(self, **values: Any) -> None:
        """Store these values (None removes a key); returns only once they are kept."""
        merged = {k: v for k, v in {**self._values, **values}.items() if v is not None}
        if self._save is not None:
            self._save(merged)
        self._values = merged


@dataclass(frozen=True)
class ReplyRef:
    """A sent post that a reply answers: what its row stored when it was sent."""

    remote_id: str
    remote_url: str | None = None
    # what the network needs beyond the id, from `Sent.ref` (Bluesky: {"cid": ...};
    # Nostr: {"pubkey": ...})
    ref: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Post:
    """What a delivery row froze: the same bytes go out on every attempt."""

    delivery_id: int
    text: str
    idempotency_key: str  # deterministic per delivery (Mastodon Idempotency-Key)
    record_key: str  # a TID frozen on the row (Bluesky rkey)
    created_at: datetime  # frozen createdAt (aware UTC)
    kind: str = "announce"  # announce | reshare | reply | ping
    url: str | None = None  # the episode's page (link card)
    title: str | None = None  # link card title
    description: str | None = None  # link card description
    image: str | None = None
    target: str | None = None  # pings: the hub or endpoint URL
    feed_url: str | None = None  # pings: the feed that changed
    extra: dict[str, Any] = field(default_factory=dict)
    # reply threads (kind "reply"): the post this one answers, and the thread's first post
    # (the announcement); both None for a post that starts no thread or is not a reply
    reply_to: ReplyRef | None = None
    reply_root: ReplyRef | None = None
    # what earlier attempts recorded mid-send (multi-step posts); see Progress
    progress: Progress = field(default_factory=Progress, compare=False)
    # the image frozen on the row (a card, the artwork or the episode's image): a local
    # file, its sha256 (the same bytes on every attempt), alt text, MIME type, and its
    # public URL when the site serves it (Nostr links it, Threads has Meta fetch it).
    # None: post without an image.
    image_file: str | None = None
    image_sha256: str | None = None
    image_alt: str | None = None
    image_type: str | None = None
    image_url: str | None = None
    # what `upload(post)` returned on an earlier attempt (a media id), kept on the row
    media: dict[str, Any] | None = None


@dataclass
class Sent:
    remote_id: str | None = None
    remote_url: str | None = None
    # what a later reply to this post needs besides the id (stored on the row, handed
    # back as ReplyRef.ref): Bluesky's record cid, a Nostr note's author
    ref: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    name: str
    type: str
    # "idempotent": resending is safe; "readback": can look for the post; "none": can't tell
    unknown_policy: str

    def limit(self) -> int:
        """This network's length limit (the instance's own when it can be read)."""
        ...

    def send(self, post: Post) -> Sent:
        """Publish; raise TransientError, PermanentError or UnknownOutcome."""
        ...

    def reconcile(self, post: Post) -> Sent | None:
        """For an `unknown` row: the post if the network has it, None if it surely hasn't.

        Raise UnknownOutcome when it still can't tell (the row stays `unknown`).
        """
        ...

    def close(self) -> None: ...

    # Optional, found with getattr by the sender:
    #   def upload(self, post: Post) -> dict[str, Any]:
    #       Upload post.image_file (a media id, a blob ref); called once before send when
    #       the post has an image and no `post.media` yet. The sender stores the result on
    #       the row before sending, so a crash after the upload reuses it (no second upload,
    #       no lost post). Raise TransientError to retry; PermanentError posts without image.
    #   media_ttl: float  (optional) seconds an upload stays usable; older ones are redone


# Optional: a channel whose network tells what listeners did with a post also has
#
#     def read_counts(self, remote_id: str) -> dict[str, int]:
#
# Callers find it with `getattr(channel, "read_counts", None)`; see `ReadsCounts`.
GONE_STATUSES = (404, 410)  # a PermanentError with one of these: the post no longer exists


class ReadsCounts(Protocol):
    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Counts for one sent post, keys from: "likes", "reposts", "replies", "quotes",
        "views" (only those the network gives). Raise PermanentError when the network refuses
        (no permission, API tier), with status 404 or 410 when the post is gone, and
        TransientError on a temporary failure (with retry_after when the network says)."""
        ...

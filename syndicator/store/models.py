"""SQLModel tables. Every datetime is stored as naive UTC and read back as aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_origin

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel

from syndicator.sources import episode_fields
from syndicator.sources.episode_fields import EpisodeField
from syndicator.timeutil import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (SQLite has no zones), aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Source(SQLModel, table=True):
    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    type: str
    url: str | None = None  # feeds: the current URL (a permanent redirect updates it)
    config_url: str | None = None  # the URL the config gave when `url` was set
    etag: str | None = None
    last_modified: str | None = None
    last_poll_at: datetime | None = _ts()
    last_ok_at: datetime | None = _ts()
    next_due_at: datetime | None = _ts(index=True)  # workers claim the earliest due first
    consecutive_errors: int = 0
    last_error: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    first_pass_at: datetime | None = _ts()  # set after the first complete pass (backlog rule)
    alerted: bool = False  # an alert for the current run of errors went out
    polls: int = 0  # counters for /metrics
    poll_errors: int = 0
    # PostgreSQL workers: who is polling it now, and until when (the database's clock)
    lease_owner: str | None = None
    lease_until: datetime | None = _ts()


# How the store keeps the declared episode fields (sources.episode_fields): by type a
# datetime is a UTCDateTime, a list a JSON array; these need more than their type says.
_EPISODE_COLUMNS: dict[str, Callable[[EpisodeField], Any]] = {
    "id": lambda f: Field(default=f.default, primary_key=True),
    "guid": lambda f: Field(unique=True, index=True),  # fixed at first sight
    "source": lambda f: Field(index=True),
    "date": lambda f: _ts(index=True),
    "enclosure_length": lambda f: Field(default=f.default, sa_column=Column(sa.BigInteger)),
    "show_notes_html": lambda f: Field(
        default=f.default, sa_column=Column(sa.Text, nullable=False)
    ),
}


def _episode_column(f: EpisodeField) -> Any:
    if f.name in _EPISODE_COLUMNS:
        return _EPISODE_COLUMNS[f.name](f)
    if f.type == datetime | None:
        return _ts()
    if get_origin(f.type) is list:
        return _json_list()
    return Field(default=f.default)


# The declared fields as a (non-table) model; Episode adds what only the store knows.
DeclaredEpisode = type(SQLModel)(
    "DeclaredEpisode",
    (SQLModel,),
    {
        "__module__": __name__,
        "__doc__": "The episode's declared columns (sources.episode_fields).",
        "__annotations__": {f.name: f.type for f in episode_fields.STORED},
        **{f.name: _episode_column(f) for f in episode_fields.STORED},
    },
)


class Episode(DeclaredEpisode, table=True):  # type: ignore[misc, valid-type]
    __tablename__ = "episodes"
    __table_args__ = (sa.Index("ix_episodes_source_number", "source", "number"),)

    item_key: str | None = Field(default=None, index=True)  # feeds: guid, link or enclosure URL
    path: str | None = None  # current file (jekyll) relative to the site
    content_hash: str = ""
    first_seen_at: datetime | None = _ts(nullable=False)
    last_changed_at: datetime | None = _ts(nullable=False)
    backlog: bool = False  # seen on a source's first pass and older than the window


class EpisodePath(SQLModel, table=True):
    """Every path an episode's file has had: identity survives renames and moves."""

    __tablename__ = "episode_paths"
    __table_args__ = (sa.UniqueConstraint("source", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episodes.id", index=True)
    source: str
    path: str
    first_seen_at: datetime | None = _ts(nullable=False)


class EpisodeEvent(SQLModel, table=True):
    """An episode's history: identity decisions (merged, not merged, restored) and why."""

    __tablename__ = "episode_events"

    id: int | None = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episodes.id", index=True)
    at: datetime | None = _ts(nullable=False)
    event: str  # e.g. matched, not-merged, number-reused, restored
    detail: str = Field(default="", sa_column=Column(sa.Text, nullable=False))


class SourceFile(SQLModel, table=True):
    """Stat cache of the files a Jekyll source has now: unchanged files are not parsed again."""

    __tablename__ = "source_files"
    __table_args__ = (sa.UniqueConstraint("source", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    path: str
    mtime_ns: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    size: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    content_hash: str
    episode_id: int | None = None
    ok: bool = True  # False: the file is broken; stat/hash still cached so it isn't re-reported


class Problem(SQLModel, table=True):
    __tablename__ = "problems"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)  # a source name, a channel, "feed:<name>", "config"
    location: str  # a file path or URL
    line: int | None = None
    kind: str  # yaml, front-matter, liquid, http, xml, ...
    message: str = Field(sa_column=Column(sa.Text, nullable=False))
    severity: str = "error"  # error | warning (a person must act) | notice (no action needed)
    first_seen_at: datetime | None = _ts(nullable=False)
    last_seen_at: datetime | None = _ts(nullable=False)
    resolved_at: datetime | None = _ts(index=True)


class Delivery(SQLModel, table=True):
    """The outbox: one row per (episode, channel, kind), written before any network call."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_due", "state", "next_attempt_at"),
        sa.Index("ix_deliveries_episode", "episode_id"),
        sa.Index("ix_deliveries_channel_state", "channel", "state"),  # counts per channel/state
        sa.Index("ix_deliveries_updated_at", "updated_at"),  # the web page's change poll
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # e.g. "announce:<episode id>:<channel>"
    kind: str = "announce"  # announce | reshare | ping
    episode_id: int | None = Field(default=None, foreign_key="episodes.id")
    channel: str = Field(index=True)
    target: str | None = None  # pings: the hub / endpoint URL
    state: str = "planned"  # planned sending sent retrying unknown failed skipped
    text: str = Field(default="", sa_column=Column(sa.Text, nullable=False))  # frozen
    text_length: int | None = None
    record_key: str | None = None  # Bluesky TID, frozen
    idempotency_key: str | None = None  # Mastodon Idempotency-Key, frozen
    frozen_at: datetime | None = _ts()  # createdAt sent to networks that take one
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    due_at: datetime | None = _ts()  # publish time (future-dated episodes, daily slot)
    next_attempt_at: datetime | None = _ts()
    lease_owner: str | None = None
    lease_until: datetime | None = _ts()
    remote_id: str | None = None
    remote_url: str | None = None
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text))
    skip_reason: str | None = None
    planned_at: datetime | None = _ts(nullable=False)
    sent_at: datetime | None = _ts()
    updated_at: datetime | None = _ts(nullable=False)
    latency_seconds: float | None = None
    alerted: bool = False  # the operator was told this row failed


class DeliveryCount(SQLModel, table=True):
    """What listeners did with a sent post, read back from its network: one row per reading,
    so the rows of a delivery are a time series. A count the network doesn't give is None."""

    __tablename__ = "delivery_counts"
    __table_args__ = (sa.Index("ix_delivery_counts_delivery_at", "delivery_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id")
    channel: str = Field(index=True)
    at: datetime | None = _ts(nullable=False, index=True)
    likes: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    reposts: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    replies: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    quotes: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    views: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    gone: bool = False  # the network says the post no longer exists: not read again


class AudioCheck(SQLModel, table=True):
    """Whether an episode's enclosure answered (announce/audio.py): one row per episode,
    so a passed check is not repeated per channel or per pass; a new URL starts over."""

    __tablename__ = "audio_checks"

    episode_id: int = Field(foreign_key="episodes.id", primary_key=True)
    url: str = Field(sa_column=Column(sa.Text, nullable=False))  # the enclosure checked
    state: str = "failing"  # passed | failing
    checks: int = 0  # failed checks of this URL so far (the back-off counts them)
    status: int | None = None  # the last answer's HTTP status
    content_type: str | None = None
    length: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text))
    first_failed_at: datetime | None = _ts()
    last_checked_at: datetime | None = _ts()
    next_check_at: datetime | None = _ts()
    passed_at: datetime | None = _ts()
    timed_out_at: datetime | None = _ts()  # verify_audio_timeout passed: a problem was made
    alerted: bool = False  # the operator was told it timed out


class FeedState(SQLModel, table=True):
    __tablename__ = "feeds"

    name: str = Field(primary_key=True)
    podcast_guid: str  # stored once; kept when the URL changes
    url: str = ""
    path: str = ""
    content_hash: str = ""
    built_at: datetime | None = _ts()
    changed_at: datetime | None = _ts()
    size_bytes: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))
    episode_count: int = 0
    build_seconds: float = 0.0
    check_problems: list[str] = _json_list()
    last_error: str | None = None


class Lease(SQLModel, table=True):
    """Named leases (the daemon's leader lease)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True)
    owner: str
    until: datetime | None = _ts(nullable=False)
    acquired_at: datetime | None = _ts(nullable=False)


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeats"

    owner: str = Field(primary_key=True)  # host:pid:random
    pid: int
    host: str
    role: str = "daemon"  # daemon | leader | follower
    state: str = "idle"  # what it is doing now
    detail: str | None = None
    started_at: datetime | None = _ts(nullable=False)
    updated_at: datetime | None = _ts(nullable=False, index=True)
    next_pass_at: datetime | None = _ts()
    last_pass_at: datetime | None = _ts()


class Worker(SQLModel, table=True):
    """One `syndicator run` process: its heartbeat and what it did (status, dashboard)."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True)  # the process owner: host:pid:random
    host: str
    pid: int
    started: datetime | None = _ts(nullable=False)
    last_seen: datetime | None = _ts(nullable=False, index=True)  # heartbeat
    stopped: bool = False  # ended cleanly (a SIGKILL leaves it False and stale)
    polls: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))
    sends: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))


class Meta(SQLModel, table=True):
    """Small key/value facts (e.g. an alert's open incident)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(sa.Text, nullable=False))
    updated_at: datetime | None = _ts(nullable=False)


class AdminSession(SQLModel, table=True):
    """A login to the admin page. The cookie holds a random id; this row, its hash.

    Logging out deletes the row, so a copied cookie stops working with it.
    """

    __tablename__ = "admin_sessions"

    key: str = Field(primary_key=True)  # sha256 hex of the cookie's session id
    created_at: datetime | None = _ts(nullable=False)
    seen_at: datetime | None = _ts(nullable=False, index=True)


class NetworkShow(SQLModel, table=True):
    """A remote feed's own show, as a network feed shows it on that feed's items (artwork,
    name) and in its podroll and OPML. One row per feed source, updated on each read."""

    __tablename__ = "network_shows"

    source: str = Field(primary_key=True)
    title: str = ""
    image: str | None = None
    author: str = ""
    link: str | None = None
    feed_url: str = ""  # where the source reads it now
    podcast_guid: str | None = None  # the feed's own podcast:guid, as written
    updated_at: datetime | None = _ts(nullable=False)


class RemoteChapters(SQLModel, table=True):
    """A fetched `podcast:chapters` file: fetched once, read from here afterwards. A failed
    fetch is kept too (with its reason) and tried again after a while."""

    __tablename__ = "remote_chapters"

    url: str = Field(sa_column=Column(sa.Text, primary_key=True))
    chapters: list[dict[str, Any]] = _json_list()
    error: str | None = Field(default=None, sa_column=Column(sa.Text))
    fetched_at: datetime | None = _ts(nullable=False)


def now() -> datetime:
    return utcnow()

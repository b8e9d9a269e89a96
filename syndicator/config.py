"""TOML configuration -> typed, validated settings.

Relative paths are resolved against the config file's folder. Secrets are never
read from the file: `secret()` takes them from the environment as
SYNDICATOR_<NAME>_<KEY>.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from syndicator.apple_categories import normalize_category
from syndicator.suggest import did_you_mean
from syndicator.timeutil import format_duration, parse_duration

DEFAULT_CONFIG_NAME = "syndicator.toml"


class ConfigError(Exception):
    """A configuration problem, with every problem found (file, line, reason)."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class ConfigProblem:
    file: str
    line: int | None
    where: str
    message: str
    label: str = ""  # for people: `channels "fosstodon"` rather than `channels.1`

    def __str__(self) -> str:
        pos = f"{self.file}:{self.line}" if self.line else self.file
        if self.label:
            return f"{pos}: {self.label}: {self.message}"
        where = f" [{self.where}]" if self.where else ""
        return f"{pos}:{where} {self.message}"


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


Dur = Annotated[timedelta, BeforeValidator(_duration)]
OptDur = Annotated[timedelta | None, BeforeValidator(lambda v: None if v is None else _duration(v))]


class HostConfig(_Base):
    name: str = ""
    website: str = ""
    avatar: str = ""
    # the host's handle per channel kind: written as `<kind> = "..."` in [podcast.host]
    handles: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _kind_keys(cls, data: Any) -> Any:
        # `mastodon = "@me@example.social"`: a key naming an installed kind is a handle.
        if not isinstance(data, dict):
            return data
        from syndicator.plugins import handle_kinds

        names = {k.name for k in handle_kinds()}
        out = {k: v for k, v in data.items() if k not in names}
        found = {k: v for k, v in data.items() if k in names}
        if found:
            out["handles"] = {**found, **dict(out.get("handles") or {})}
        return out


class PodcastConfig(_Base):
    title: str = "Untitled podcast"
    description: str = ""
    link: str = ""
    feed_url: str = ""
    image: str = ""
    language: str = "en"
    author: str = ""
    owner_name: str = ""
    owner_email: str = ""
    categories: list[str] = Field(default_factory=list)
    explicit: bool = False
    timezone: str = "UTC"
    type: Literal["episodic", "serial"] = "episodic"
    copyright: str = ""
    locked: bool = True
    funding_url: str = ""
    funding_text: str = ""
    # the episode pages play from `?t=<seconds>`: reply threads link each chapter there
    chapter_links: bool = False
    host: HostConfig = Field(default_factory=HostConfig)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as Europe/Berlin)"
            ) from exc
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        # Apple's list, with sub-categories; stored as "Category" or "Category > Sub".
        return [normalize_category(c) for c in v]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatabaseConfig(_Base):
    url: str = "sqlite:///syndicator.db"
    busy_timeout_ms: int = 10_000


class _SourceBase(_Base):
    name: str
    every: Dur = timedelta(minutes=5)
    cron: str | None = None  # a crontab expression instead of `every`
    enabled: bool = True
    # Announce an episode with an enclosure only once its audio answers (announce/audio.py);
    # after `verify_audio_timeout` of failed checks it becomes a problem and an alert.
    verify_audio: bool = True
    verify_audio_timeout: Dur = timedelta(hours=6)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("use letters, digits, '-', '_' or '.' in a source name")
        return v

    @field_validator("verify_audio_timeout")
    @classmethod
    def _verify_audio_timeout(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError('must be longer than 0, e.g. "6h" (verify_audio = false turns it off)')
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            from croniter import croniter

            if not croniter.is_valid(v):
                raise ValueError(f"invalid cron expression {v!r}")
        return v


class JekyllSourceConfig(_SourceBase):
    type: Literal["jekyll"]
    path: Path
    categories: list[str] = Field(default_factory=lambda: ["podcast"])
    episode_url: str = "{site.url}/{slug}"
    enclosure_url: str = ""
    enclosure_type: str = "audio/mpeg"
    guid: str = "{site.url}/{slug}"
    image_url: str = (
        ""  # template for an episode image, e.g. "{site.url}/images/{guest_avatar}.jpg"
    )
    transcript_url: str = ""  # template; used only when `transcripts` has a file for the episode
    transcripts: Path | None = None  # folder of "<number>.vtt|srt|txt" transcripts
    max_file_bytes: int = 5 * 1024 * 1024
    # Jekyll plugin tags to drop without a notice, e.g. ["all_tags", "asset_path"].
    ignore_tags: list[str] = Field(default_factory=list)
    # Bounds on one post's Liquid and front matter: a hostile post fails alone.
    max_render_seconds: Dur = timedelta(seconds=5)
    max_render_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_loop_iterations: int = Field(default=100_000, ge=100)
    max_yaml_nodes: int = Field(default=100_000, ge=100)

    @field_validator("ignore_tags")
    @classmethod
    def _ignore_tags(cls, v: list[str]) -> list[str]:
        # "{% all_tags %}" and "all_tags" both name the tag `all_tags`.
        names = [t.strip().removeprefix("{%").removesuffix("%}").strip() for t in v]
        return [n.split()[0] for n in names if n]


class FeedSourceConfig(_SourceBase):
    type: Literal["feed"]
    url: str
    every: Dur = timedelta(minutes=30)
    timeout: Dur = timedelta(seconds=20)
    max_bytes: int = 20 * 1024 * 1024
    categories: list[str] = Field(default_factory=list)  # categories given to its episodes
    # follow redirects to private/loopback/link-local addresses; None: [fetch]'s setting
    allow_private_redirects: bool | None = None


SourceConfig = Annotated[JekyllSourceConfig | FeedSourceConfig, Field(discriminator="type")]


class FetchConfig(_Base):
    user_agent: str = ""
    max_per_host: int = 4
    max_connections: int = 50
    max_backoff: Dur = timedelta(hours=6)
    allow_private_redirects: bool = False  # see FeedSourceConfig; per source overrides this


class AnnounceConfig(_Base):
    window: Dur = timedelta(days=14)
    at: str | None = None  # daily slot "HH:MM" in the podcast's time zone
    hashtags: dict[str, str] = Field(default_factory=dict)  # tag -> hashtag ("" drops it)
    max_hashtags: int = 5
    templates: Path | None = None  # a folder whose files override the shipped templates
    max_attempts: int = 8
    lease: Dur = timedelta(minutes=2)  # how long a claimed delivery is held by one process
    retry_base: Dur = timedelta(seconds=30)  # first back-off; doubles per attempt
    retry_max: Dur = timedelta(hours=6)
    # A person in the loop (issue #12): a grace period before a new episode's rows fall
    # due, and what a pass does when more than `catch_up_limit` are due at once on a channel.
    delay: Dur = timedelta(0)
    catch_up_limit: int = Field(default=3, ge=1)
    catch_up: Literal["hold", "send", "skip"] = "hold"

    @field_validator("delay")
    @classmethod
    def _delay(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("a delay can't be negative: use 0 (no grace period) or e.g. 10m")
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", v):
            raise ValueError("use HH:MM, e.g. 09:00")
        return v


# What an announcement attaches: a rendered card, the show's artwork, the episode's own
# image, or nothing.
ImageMode = Literal["card", "artwork", "episode", "none"]


def _hex_colour(v: str) -> str:
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", v):
        raise ValueError(f"use a colour as #RRGGBB, e.g. #1d2b53; got {v!r}")
    return v


Colour = Annotated[str, AfterValidator(_hex_colour)]


class CardsConfig(_Base):
    """[cards]: the image card per episode (announce/cards.py, docs/cards.md)."""

    image: ImageMode = "none"  # what channels attach unless a channel or feed says otherwise
    # where cards are written; None: a cards/ folder beside the first feed's file, so the
    # site serves them (Nostr notes link the card by URL)
    dir: Path | None = None
    # public URL of that folder; None: the first feed's URL with its file name replaced by
    # "cards/"
    base_url: str | None = None
    width: int = Field(default=1200, ge=200, le=4096)  # unless the channel's kind prefers
    height: int = Field(default=675, ge=200, le=4096)  # another size (ChannelKind.card_size)
    background: Colour = "#1d2b53"
    foreground: Colour = "#ffffff"
    accent: Colour = "#ffcc00"
    font: Path | None = None  # a .ttf/.otf for the title; the shipped fonts cover the rest
    logo: Path | None = None  # a small image drawn in the top right corner
    artwork: str = ""  # the show's artwork (path or URL); default: podcast.image
    # guests' avatars: a path or URL pattern with {avatar}, e.g. "site/images/{avatar}.jpg";
    # a guest whose avatar is already a URL or path is read as it is
    avatars: str = ""
    fetch_timeout: Dur = timedelta(seconds=5)  # per artwork or avatar download
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)  # per download

    @field_validator("fetch_timeout")
    @classmethod
    def _fetch_timeout(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=0) < v <= timedelta(seconds=60):
            raise ValueError("use a timeout between 0 and 60s, e.g. 5s (a pass waits on it)")
        return v


class EvergreenConfig(_Base):
    enabled: bool = False
    every: Dur = timedelta(days=7)
    template: str | None = None
    min_days_between: int = 90
    min_age: Dur = timedelta(days=30)


class ChannelConfig(_Base):
    """What every [[channels]] entry has. Each channel kind subclasses this with its own
    keys and `type: Literal["<kind>"]`; `ChannelConfig(type=...)` and validation pick the
    installed kind's model by `type`, so an error names that kind's own keys."""

    name: str
    type: str
    enabled: bool = True
    dry_run: bool = False
    template: str | None = None
    # filters
    categories: list[str] = Field(default_factory=list)
    tags_include: list[str] = Field(default_factory=list)
    tags_exclude: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    max_age: OptDur = None
    # pacing
    min_interval: Dur = timedelta(seconds=0)
    max_per_hour: int | None = None
    quiet_hours: str | None = None  # "22:00-07:00" in the podcast's time zone
    limit: int | None = None  # override the network's length limit
    timeout: Dur = timedelta(seconds=20)
    max_attempts: int | None = None
    on_unknown: Literal["hold", "resend"] = "hold"
    # The channel's old name: its deliveries are kept, nothing is posted again.
    renamed_from: str | None = None
    evergreen: EvergreenConfig = Field(default_factory=EvergreenConfig)
    # reply threads: what follows the announcement as replies to it, in order
    # ("chapters": the episode's chapter list), and/or a template of the channel's own
    thread: list[Literal["chapters"]] = Field(default_factory=list)
    thread_template: str | None = None
    # A person in the loop: every announcement waits in `awaiting_approval`; and this
    # channel's catch-up policy (None: announce.catch_up).
    approve: bool = False
    catch_up: Literal["hold", "send", "skip"] | None = None
    # cards (issue 12): the image this channel attaches; None: the feed's, else [cards]'
    image: ImageMode | None = None

    def __new__(cls, *args: Any, **data: Any) -> Any:
        # ChannelConfig(name=..., type="mastodon", ...) builds the kind's own model.
        if cls is ChannelConfig:
            cls = _kind_model(data.get("type"))
        return super().__new__(cls)

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data: Any, handler: Any) -> Any:
        if cls is not ChannelConfig or not isinstance(data, dict):
            return handler(data)
        try:
            model = _kind_model(data.get("type"))
        except ValidationError as exc:
            # no such kind: still report the common keys' problems, but not the keys
            # some installed kind knows
            errors: list[Any] = list(exc.errors())
            try:
                handler({**data, "type": ""})
            except ValidationError as common:
                errors += [e for e in common.errors() if not _kind_key(e)]
            raise ValidationError.from_exception_data("ChannelConfig", errors) from None
        return model.model_validate(data)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", v):
            raise ValueError("use letters, digits, '-' or '_' in a channel name")
        from syndicator.plugins import reserved_names

        purpose = reserved_names().get(v)
        if purpose is not None:
            raise ValueError(f'"{v}" is the name of {purpose}; choose another')
        return v

    @model_validator(mode="after")
    def _threads(self) -> ChannelConfig:
        if not (self.thread or self.thread_template):
            return self
        from syndicator.plugins import kind

        try:
            k = kind(self.type)
        except KeyError:
            return self  # no such kind: reported by the type check
        if not k.threads:
            key = "thread" if self.thread else "thread_template"
            raise ValueError(
                f"channel {self.name!r}: {key} is set, but {self.type} channels cannot post "
                "replies to their own posts; remove it (or announce the chapters in the "
                "announcement template)"
            )
        return self

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{1,2}:\d\d-\d{1,2}:\d\d", v):
            raise ValueError("use HH:MM-HH:MM, e.g. 22:00-07:00")
        return v


def _kind_key(err: Any) -> bool:
    """An unknown-key error for a key that some installed kind's config has."""
    from syndicator.plugins import configurable

    if err["type"] != "extra_forbidden" or len(err["loc"]) != 1:
        return False
    return any(
        err["loc"][0] in (k.config.model_fields if k.config else {})
        for k in configurable().values()
    )


def _kind_model(kind: Any) -> type[ChannelConfig]:
    """The config model of the installed kind `kind`; a validation error naming the
    installed kinds when there is none."""
    from pydantic_core import InitErrorDetails, PydanticCustomError

    from syndicator.plugins import configurable

    models = {n: k.config for n, k in configurable().items() if k.config is not None}
    if isinstance(kind, str) and kind in models:
        return models[kind]
    expected = ", ".join(repr(n) for n in models)
    err: InitErrorDetails
    if kind is None:
        err = {"type": "missing", "loc": ("type",), "input": kind}
    else:
        err = {
            "type": PydanticCustomError(
                "literal_error",
                "Input should be {expected}",
                {"expected": expected},
            ),
            "loc": ("type",),
            "input": kind,
        }
    raise ValidationError.from_exception_data("ChannelConfig", [err])


class FeedConfig(_Base):
    """One published podcast feed (the show's own, or a network feed)."""

    name: str = "main"
    path: Path = Path("public/feed.xml")
    url: str = ""  # defaults to podcast.feed_url
    sources: list[str] = Field(default_factory=list)  # empty: every source
    title: str | None = None
    description: str | None = None
    link: str | None = None
    image: str | None = None
    json_feed: Path | None = None
    chapters_url: str = ""  # base URL where the chapters files beside the feed are served
    hubs: list[str] = Field(default_factory=list)
    podcast_index: bool = False
    podcast_index_url: str = "https://api.podcastindex.org/api/1.0/hub/pubnotify"
    limit: int | None = None  # newest N episodes only
    # directory/: additive fields
    json_feed_url: str = ""  # URL of json_feed; default: beside the feed URL
    podcast_guid: str = ""  # keep a podcast:guid the show already has; default: from the URL
    # what an item's <description> holds: the episode's short description (else the start
    # of its notes as plain text), within Apple's 4,000 bytes ("summary"); or the show notes
    # when they fit in 4,000 bytes ("notes"). content:encoded always has the whole notes.
    item_description: Literal["notes", "summary"] = "summary"
    avatar_url: str = ""  # guest img when an avatar is a bare name: "https://x/img/{avatar}.jpg"
    # socialInteract and pings (issue 13): the channels whose first post of an episode is
    # its comment thread (podcast:socialInteract), in priority order; None: every channel
    # whose kind can host comments, in config order; "disabled": protocol="disabled"
    social_interact: list[str] | Literal["disabled"] | None = None
    podping: bool = False  # ping podping.cloud on every change (SYNDICATOR_PODPING_TOKEN)
    podping_url: str = "https://podping.cloud/"
    medium: str | None = None  # podcast:medium, also the podping medium (None: "podcast")
    # a network feed (issue 15): podcast:podroll of its shows, and an OPML of them beside
    # the feed (`opml_file`, a file name in the feed's folder; "": the feed's name + .opml)
    podroll: bool = False
    opml: bool = False
    opml_file: str = ""
    # cards (issue 12): the image announcements of this feed's episodes attach; None: [cards]'
    announce_image: ImageMode | None = None

    @field_validator("social_interact", mode="before")
    @classmethod
    def _social_interact(cls, v: Any) -> Any:
        if v is False or v == "disabled":
            return "disabled"
        if v is True or v is None:
            return None  # true: the default, every channel that can host comments
        if isinstance(v, str):
            raise ValueError(
                f'must be a list of channel names (e.g. ["news", "chat"]), or '
                f'"disabled" / false; got {v!r}'
            )
        return v

    @field_validator("medium")
    @classmethod
    def _medium(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if v not in MEDIUMS:
            raise ValueError(
                f"unknown medium {v!r}{did_you_mean(v, list(MEDIUMS))}; one of: "
                + ", ".join(MEDIUMS)
            )
        return v

    @field_validator("opml_file")
    @classmethod
    def _opml_file(cls, v: str) -> str:
        v = v.strip()
        if v and (v in (".", "..") or "/" in v or "\\" in v or not v.lower().endswith(".opml")):
            raise ValueError(
                f"must be a file name ending in .opml, written beside the feed (e.g. "
                f'"shows.opml"), not a path; got {v!r}'
            )
        return v

    @field_validator("podping_url")
    @classmethod
    def _podping_url(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL (default https://podping.cloud/); got {v!r}")
        return v


# podcast:medium values (the podcast namespace's list, with each one's "L" list variant);
# podping takes the same names.
_MEDIUM_BASE = ("podcast", "music", "video", "film", "audiobook", "newsletter", "blog",
                "publisher", "course")  # fmt: skip
MEDIUMS: tuple[str, ...] = _MEDIUM_BASE + tuple(m + "L" for m in _MEDIUM_BASE) + ("mixed",)


class WebConfig(_Base):
    host: str = "127.0.0.1"
    port: int = 8080
    password_hash: str = ""
    secure_cookies: bool | None = None  # None: Secure when served over https
    # web/: reverse proxies (IPs or CIDRs) whose X-Forwarded-For/-Proto are believed
    trusted_proxies: list[str] = Field(default_factory=list)
    # web/: wrong passwords a client address may try per login_window, then 429
    login_attempts: int = Field(default=5, ge=1)
    login_window: Dur = timedelta(seconds=60)
    # web/: password checks (argon2: 64 MiB each) at once; 0 = one per CPU
    login_checks: int = Field(default=0, ge=0)
    login_queue: int = Field(default=16, ge=0)  # logins waiting for a check; more get 503

    @field_validator("login_window")
    @classmethod
    def _window(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("use at least 1s (a shorter window would not limit logins)")
        return v


class DaemonConfig(_Base):
    heartbeat: Dur = timedelta(seconds=10)
    leader_lease: Dur = timedelta(seconds=30)
    jitter: Dur = timedelta(seconds=10)
    misfire_grace: Dur = timedelta(minutes=5)
    watch: bool = True


class WorkersConfig(_Base):
    """Many `syndicator run` workers on one PostgreSQL (ignored on SQLite)."""

    # How long a worker's claim on a source lasts: past it, a dead worker's sources go to
    # the others. Longer than polling one batch (the fetch timeout and its retries).
    source_lease: Dur = timedelta(minutes=5)
    # Sources or deliveries one claim takes (smaller: fairer spread; larger: fewer trips).
    claim_batch: int = Field(default=25, ge=1, le=1000)
    # Rows of workers not seen for this long are deleted.
    forget_after: Dur = timedelta(days=7)

    @field_validator("source_lease", "forget_after")
    @classmethod
    def _at_least_a_second(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError(f'{format_duration(v)} is too short: give at least 1s (e.g. "5m")')
        return v


class AlertsConfig(_Base):
    url: str = ""  # Apprise URL; or SYNDICATOR_ALERTS_URL
    source_errors: int = 3  # alert after this many consecutive poll errors


class StatsConfig(_Base):
    """[stats]: what listeners did with the sent posts, read back from the networks."""

    enabled: bool = True
    days: int = 14  # read posts younger than this many days
    every: Dur = timedelta(hours=6)  # each post is read at most this often

    @field_validator("days")
    @classmethod
    def _days(cls, v: int) -> int:
        if not 1 <= v <= 365:
            raise ValueError("use a number of days from 1 to 365, e.g. days = 14")
        return v

    @field_validator("every")
    @classmethod
    def _every(cls, v: timedelta) -> timedelta:
        if v < timedelta(minutes=10):
            raise ValueError(
                'use at least "10m" (networks rate-limit reads; counts move slowly), e.g. "6h"'
            )
        return v


class Settings(_Base):
    podcast: PodcastConfig = Field(default_factory=PodcastConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    announce: AnnounceConfig = Field(default_factory=AnnounceConfig)
    handles: dict[str, dict[str, str]] = Field(default_factory=dict)
    channels: list[ChannelConfig] = Field(default_factory=list)
    feeds: list[FeedConfig] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    cards: CardsConfig = Field(default_factory=CardsConfig)

    # not from the file
    config_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for kind, items in (
            ("source", self.sources),
            ("channel", self.channels),
            ("feed", self.feeds),
        ):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"two {kind}s are named {item.name!r}: names must be unique")
                seen.add(item.name)
        current = {c.name for c in self.channels}
        for c in self.channels:
            if c.renamed_from is not None and c.renamed_from in current:
                raise ValueError(
                    f"channel {c.name!r}: renamed_from {c.renamed_from!r} names a channel that "
                    "is still configured; remove the old one, or drop renamed_from"
                )
        # A feed's `sources` may also name stored sources (`syndicator sources import`),
        # which only the store knows: `check` and the feed build report unknown names.
        for feed in self.feeds:
            self._check_social_interact(feed)
        return self

    def feed_sources_outside_config(self, feed: FeedConfig) -> list[str]:
        """The names in a feed's `sources` that no [[sources]] table has (stored
        sources, or typos), in the order listed."""
        names = {s.name for s in self.sources}
        return [n for n in dict.fromkeys(feed.sources) if n not in names]

    def _check_social_interact(self, feed: FeedConfig) -> None:
        if not isinstance(feed.social_interact, list):
            return
        choices = [c.name for c in self.interact_capable()]
        listed = ", ".join(map(repr, choices)) or "none (no channel's kind can host comments)"
        seen: set[str] = set()
        for name in feed.social_interact:
            if name in seen:
                raise ValueError(f"feed {feed.name!r}: social_interact lists {name!r} twice")
            seen.add(name)
            if name not in choices:
                why = (
                    "is not a configured channel"
                    if name not in {c.name for c in self.channels}
                    else "is a channel whose posts can't host comments"
                )
                raise ValueError(
                    f"feed {feed.name!r}: social_interact {name!r} {why}"
                    f"{did_you_mean(name, choices)}; the choices: {listed}"
                )

    def interact_capable(self) -> list[ChannelConfig]:
        """The channels whose kind has a podcast:socialInteract protocol, in config order."""
        from syndicator.plugins import kinds

        found = kinds()
        out = []
        for c in self.channels:
            k = found.get(c.type)
            if k is not None and getattr(k, "interact_protocol", None):
                out.append(c)
        return out

    def social_interact_channels(self, feed: FeedConfig) -> list[ChannelConfig] | None:
        """The channels whose posts a feed's items show as socialInteract, in priority
        order; None when the feed says "disabled"."""
        if feed.social_interact == "disabled":
            return None
        capable = self.interact_capable()
        if feed.social_interact is None:
            return capable
        by_name = {c.name: c for c in capable}
        return [by_name[n] for n in feed.social_interact if n in by_name]

    def source(self, name: str) -> JekyllSourceConfig | FeedSourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()


def env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def secret(owner: str, key: str, default: str | None = None) -> str | None:
    """SYNDICATOR_<OWNER>_<KEY> from the environment (the only place secrets live)."""
    return os.environ.get(f"SYNDICATOR_{env_name(owner)}_{env_name(key)}", default)


def default_config_path() -> Path:
    return Path(os.environ.get("SYNDICATOR_CONFIG") or DEFAULT_CONFIG_NAME)


def unknown_source_message(feed: str, source: str) -> str:
    """What `check` and the feed build say of a feed's source name no one has."""
    return (
        f"feed {feed!r} lists unknown source {source!r}: no [[sources]] table and no "
        "stored source has that name (`syndicator sources list` shows the stored ones); "
        "fix the name in the feed's `sources`. Until then the feed is not rebuilt (the "
        "file already published stays as it is)."
    )


def _resolve_paths(settings: Settings, base: Path) -> None:
    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    for s in settings.sources:
        if isinstance(s, JekyllSourceConfig):
            s.path = fix(s.path)  # type: ignore[assignment]
            s.transcripts = fix(s.transcripts)
    for f in settings.feeds:
        f.path = fix(f.path)  # type: ignore[assignment]
        f.json_feed = fix(f.json_feed)
    settings.announce.templates = fix(settings.announce.templates)
    settings.cards.dir = fix(settings.cards.dir)
    settings.cards.font = fix(settings.cards.font)
    settings.cards.logo = fix(settings.cards.logo)
    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            settings.database.url = "sqlite:///" + str((base / rel).resolve())


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Find the line in the TOML text where a validation error's location lives.

    tomllib keeps no positions, so walk the table headers and keys by hand.
    """
    lines = text.splitlines()
    parts = [p for p in loc if not (isinstance(p, str) and p in {"jekyll", "feed"})]
    table: list[str] = []
    counts: dict[str, int] = {}
    best: int | None = None
    # target header path and key
    header: list[str] = []
    index: int | None = None
    key: str | None = None
    i = 0
    while i < len(parts):
        p = parts[i]
        if isinstance(p, int):
            index = p
        elif i == len(parts) - 1:
            key = p
        else:
            header.append(p)
        i += 1
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        m = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", line)
        if m:
            table = m.group(1).split(".")
            counts[m.group(1)] = counts.get(m.group(1), -1) + 1
            if table == header and (index is None or counts[m.group(1)] == index):
                best = n
            continue
        m = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if m:
            table = m.group(1).split(".")
            if table == header + ([key] if key else []):
                best = n
            continue
        m = re.match(r'^"?([A-Za-z0-9_.-]+)"?\s*=', line)
        if m and key and m.group(1) == key:
            cur = ".".join(table)
            want = ".".join(header)
            in_array = index is None or counts.get(want, -1) == index
            if cur == want and in_array:
                return n
            if not header and not table:
                return n
    return best


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model a validation error's location points into (for its keys)."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        if part in ("jekyll", "feed") and model is None:
            model = JekyllSourceConfig if part == "jekyll" else FeedSourceConfig
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return model
        ann = field.annotation
        inner = [a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif len(inner) == 1:
            model = inner[0]
        else:  # a list of a union (sources): the next part names the member
            model = None
    return model if isinstance(model, type) else None


def _explain(data: dict[str, Any], loc: tuple[Any, ...], err: Any) -> tuple[str, str]:
    """A person's label and message for one validation error: a named array item by its
    name, an unknown key with the close known ones."""
    parts = [p for p in loc if p not in ("jekyll", "feed")]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
        msg = f"must be one of {err['ctx']['expected']}"
    if err["type"] == "extra_forbidden" and parts:
        model = _model_at(tuple(loc[:-1]))
        if model is ChannelConfig and len(parts) == 3:  # the channel's own kind's keys
            item = data["channels"][parts[1]]
            with contextlib.suppress(ValidationError):
                model = _kind_model(item.get("type") if isinstance(item, dict) else None)
        known = list(model.model_fields) if model else []
        if model is HostConfig:  # a handle per kind, e.g. `mastodon = "@me@example.social"`
            from syndicator.plugins import handle_kinds

            known += [k.name for k in handle_kinds()]
        msg = f"unknown key {parts[-1]!r}{did_you_mean(str(parts[-1]), known)}"
    label = ""
    if len(parts) >= 2 and isinstance(parts[1], int) and isinstance(data.get(parts[0]), list):
        items = data[parts[0]]
        item = items[parts[1]] if parts[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        label = f'{parts[0]} "{name}"' if name else f"{parts[0]} #{parts[1] + 1}"
        rest = ".".join(str(p) for p in parts[2:])
        if rest and err["type"] != "extra_forbidden":
            msg = f"{rest} {msg}" if msg.startswith("must ") else f"{rest}: {msg}"
    elif err["type"] == "extra_forbidden" and len(parts) > 1:
        label = "[" + ".".join(str(p) for p in parts[:-1]) + "]"
    return label, msg


def load(path: Path | str | None = None) -> Settings:
    """Read and validate the config; raise ConfigError listing every problem."""
    cfg = Path(path) if path else default_config_path()
    if not cfg.exists():
        raise ConfigError(
            [
                ConfigProblem(
                    str(cfg), None, "", "no such file; run `syndicator init` to write an example"
                )
            ]
        )
    text = cfg.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            [ConfigProblem(str(cfg), int(m.group(1)) if m else None, "", f"invalid TOML: {exc}")]
        ) from exc
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc if p not in ("jekyll", "feed"))
            label, msg = _explain(data, loc, err)
            problems.append(ConfigProblem(str(cfg), _line_of(text, loc), where, msg, label))
        raise ConfigError(problems) from exc
    settings.config_path = cfg.resolve()
    _resolve_paths(settings, cfg.resolve().parent)
    return settings


def from_dict(data: dict[str, Any], base: Path) -> Settings:
    """Build settings from a dict (tests, embedding), paths relative to `base`."""
    settings = Settings.model_validate(data)
    settings.config_path = base / DEFAULT_CONFIG_NAME
    _resolve_paths(settings, base)
    return settings

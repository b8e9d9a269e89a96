"""What every source hands to the store: episodes as read, and problems found.

Sources know nothing of the store's tables, channels or feeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import datetime
from typing import Any

from syndicator.sources import episode_fields
from syndicator.sources.values import Chapter, Enclosure, Guest, Person

__all__ = [
    "Chapter", "Enclosure", "EpisodeData", "FileResult", "FileStamp", "Guest",
    "Person", "PollResult", "ProblemData", "ScanResult", "ShowData",
]  # fmt: skip


def _hashed_guest(g: Guest) -> dict[str, Any]:
    """A guest as content_hash has always seen it: each handle under its kind's name, and
    None for each kind whose handle was a Guest field (`hashed_when_absent`) the guest has
    none on, so the hashes of stored episodes stay the same, also when a kind is added."""
    from syndicator.plugins import handle_kinds  # the installed plugins

    out: dict[str, Any] = {"name": g.name, "website": g.website, "avatar": g.avatar}
    out["title"] = g.title
    out.update({k.name: None for k in handle_kinds() if k.hashed_when_absent})
    out.update(g.handles)
    return out


def _plain(value: Any) -> Any:
    """What `dataclasses.asdict` makes of a field's value, without its deep copies (a
    cold pass hashes every item; the copies were most of the hash's time)."""
    if hasattr(type(value), "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple, as asdict does
        return type(value)(*(_plain(v) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _content_hash(self: Any) -> str:
    """A hash of everything the episode shows, to tell a real change from a touch."""
    data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
    for k in ("file_hash", "path", "guid", "chapters_url"):
        data.pop(k, None)
    if not data.get("persons"):
        data.pop("persons", None)  # as before persons were kept: stored hashes stay
    if data.get("image_alt") is None:
        data.pop("image_alt", None)  # added later: absent, stored hashes stay the same
    data["guests"] = [_hashed_guest(g) for g in self.guests]
    raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


# One episode as a source read it, made from sources.episode_fields (keyword arguments
# only). `guid` is only a candidate: the store keeps the guid it assigned at first sight.
# `key` is the source's own identity hint (Jekyll: none, matched by number then path;
# feeds: guid, else link, else enclosure URL).
EpisodeData = make_dataclass(
    "EpisodeData",
    episode_fields.source_fields(),
    # __module__: pickled by name (a process pool's parse results travel back that way)
    namespace={
        "__module__": __name__,
        "__doc__": "One episode as a source read it.",
        "content_hash": _content_hash,
    },
    kw_only=True,
)


@dataclass
class ProblemData:
    location: str  # file path or URL
    kind: str  # e.g. "yaml", "front-matter", "liquid", "http", "xml", "too-large"
    message: str
    line: int | None = None
    severity: str = "error"  # error | warning (a person must act) | notice (no action needed)

    def __str__(self) -> str:
        where = f"{self.location}:{self.line}" if self.line else self.location
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class FileStamp:
    """What the store remembers of a file, so an unchanged one is not parsed again."""

    mtime_ns: int
    size: int
    content_hash: str
    ok: bool = True


@dataclass
class FileResult:
    """One file under a Jekyll source after a scan."""

    path: str  # relative to the source root
    stamp: FileStamp
    status: str  # "unchanged" (stat same), "same-hash" (touched), "parsed", "ignored", "bad"
    episode: EpisodeData | None = None


@dataclass
class ScanResult:
    """A Jekyll scan: every file present, what was parsed, and the problems."""

    files: list[FileResult] = field(default_factory=list)
    problems: list[ProblemData] = field(default_factory=list)
    complete: bool = True  # False when the folder could not be listed: infer no deletions


@dataclass
class ShowData:
    """A remote feed's show (its channel), as plain text and http(s) URLs."""

    title: str = ""
    description: str = ""
    link: str = ""
    image: str = ""
    author: str = ""
    owner_name: str = ""
    owner_email: str = ""
    language: str = ""
    categories: list[str] = field(default_factory=list)  # "Category" or "Category > Sub"
    podcast_guid: str | None = None
    new_feed_url: str = ""  # itunes:new-feed-url: the feed moved (followed like a 301)
    locked: bool | None = None  # podcast:locked; None when the feed does not say
    locked_owner: str = ""
    funding: list[dict[str, str]] = field(default_factory=list)  # {"url", "text"}
    value: dict[str, Any] = field(default_factory=dict)  # podcast:value and its recipients
    medium: str = ""
    last_build_date: datetime | None = None


@dataclass
class PollResult:
    """A remote feed poll."""

    url: str
    status: str  # "ok", "not-modified", "error", "gone"
    episodes: list[EpisodeData] = field(default_factory=list)
    problems: list[ProblemData] = field(default_factory=list)
    new_url: str | None = None  # a permanent redirect
    etag: str | None = None
    last_modified: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After
    error: str | None = None
    http_status: int | None = None
    elapsed: float = 0.0
    show: ShowData | None = None  # the feed's channel, when the body was read
    final_url: str | None = None  # where the body came from, after every redirect

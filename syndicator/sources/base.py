"""What every source hands to the store: episodes as read, and problems found.

Sources know nothing of the store's tables, channels or feeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, make_dataclass
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


@dataclass
class ShowData:
    """A remote feed's own channel, as far as a network feed shows it (its items' show)."""

    title: str = ""
    image: str | None = None  # itunes:image / <image>, http(s) only
    author: str = ""
    link: str | None = None
    podcast_guid: str | None = None  # the channel's podcast:guid, as written


def _content_hash(self: Any) -> str:
    """A hash of everything the episode shows, to tell a real change from a touch."""
    data = asdict(self)
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
    show: ShowData | None = None  # the feed's channel (title, artwork, podcast:guid)

"""What every source hands to the store: episodes as read, and problems found.

Sources know nothing of the store's tables, channels or feeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Guest:
    name: str
    website: str | None = None
    avatar: str | None = None
    title: str | None = None
    # the guest's handle per channel kind: {kind name: handle as the source wrote it}
    handles: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str | None:
        # `guest.<kind>` reads that kind's handle (None when the guest has none there).
        if name.startswith("_") or name == "handles":
            raise AttributeError(name)
        return self.__dict__.get("handles", {}).get(name)

    def to_dict(self) -> dict[str, Any]:
        # each handle also under its kind's name, as stored and shown before `handles`
        return {**asdict(self), **self.handles}


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
class Chapter:
    start: int  # seconds
    title: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Enclosure:
    url: str
    length: int | None = None
    type: str = "audio/mpeg"


@dataclass
class EpisodeData:
    """One episode as a source read it.

    `guid` is only a candidate: the store keeps the guid it assigned at first
    sight. `key` is the source's own identity hint (Jekyll: none, matched by
    number then path; feeds: guid, else link, else enclosure URL).
    """

    title: str
    date: datetime | None  # aware UTC
    guid: str
    key: str | None = None
    number: int | None = None
    slug: str | None = None
    path: str | None = None  # relative to the source root
    url: str | None = None
    guests: list[Guest] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    enclosure: Enclosure | None = None
    duration_seconds: int | None = None
    description: str = ""
    show_notes_html: str = ""
    chapters: list[Chapter] = field(default_factory=list)
    image: str | None = None
    transcript_url: str | None = None
    transcript_type: str | None = None
    explicit: bool | None = None
    episode_type: str = "full"
    withdrawn: bool = False
    withdrawn_reason: str | None = None
    file_hash: str | None = None  # the raw file's hash (Jekyll stat cache)
    image_alt: str | None = None  # front matter `image_alt`: the image card's alt text

    def content_hash(self) -> str:
        """A hash of everything the episode shows, to tell a real change from a touch."""
        data = asdict(self)
        for k in ("file_hash", "path", "guid"):
            data.pop(k, None)
        if data.get("image_alt") is None:
            data.pop("image_alt", None)  # added later: absent, stored hashes stay the same
        data["guests"] = [_hashed_guest(g) for g in self.guests]
        raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


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

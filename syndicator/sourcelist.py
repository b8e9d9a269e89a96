"""Feed sources in bulk: OPML import and export, and the sources kept in the store.

The config's `[[sources]]` and the store's sources are polled together (`merged`); a
config source wins over a stored one of the same name. A feed already followed (the
same URL, after redirects, or the same podcast:guid) is reported and not added twice.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.config import FeedSourceConfig, Settings
from syndicator.sources.base import PollResult, ProblemData
from syndicator.store import problems as problem_store
from syndicator.store import shows as store_shows
from syndicator.store import source_rows
from syndicator.store.db import session
from syndicator.store.views import source_dict
from syndicator.timeutil import utcnow

DEFAULT_EVERY = timedelta(minutes=30)
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 60  # characters of a name made from a title


class SourceListError(ValueError):
    """A `sources` command that cannot be done; the message says why and what to do."""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # "url: why", not added
    skipped: list[str] = field(default_factory=list)  # outlines the file could not give
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "names": self.added,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }


def url_key(url: str) -> str:
    """A feed URL as duplicates are told apart: scheme, host case, default port, fragment
    and a trailing slash do not make another feed."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    except ValueError:
        return url.strip()
    return urlunsplit(("", host + port, parts.path.rstrip("/") or "/", parts.query, ""))


def name_for(title: str, url: str, taken: set[str]) -> str:
    """A source name from the feed's title (else its host), unique among `taken`."""
    base = _NAME_BAD.sub("-", title.lower()).strip("-._")[:MAX_NAME].strip("-._")
    if not base:
        host = urlsplit(url).hostname or "feed"
        base = _NAME_BAD.sub("-", host.lower()).strip("-._") or "feed"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _known(s: Session, settings: Settings) -> tuple[set[str], dict[str, str]]:
    names, urls = source_rows.taken(s)
    names |= {src.name for src in settings.sources}
    keyed = {url_key(u): n for u, n in urls.items()}
    for src in settings.sources:
        url = getattr(src, "url", None)
        if url:
            keyed.setdefault(url_key(url), src.name)
    return names, keyed


def import_opml(
    engine: Engine,
    settings: Settings,
    path: Path,
    *,
    every: timedelta | None = None,
    categories: list[str] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Add every feed of an OPML file not already followed; one transaction."""
    from syndicator.sources import opml  # lxml: only for OPML, not for every pass

    started = time.perf_counter()
    listing = opml.read(path)  # OpmlError: nothing is added
    report = ImportReport(skipped=list(listing.skipped))
    seconds = int((every or DEFAULT_EVERY).total_seconds())
    with session(engine, write=True) as s:
        names, urls = _known(s, settings)
        rows: list[source_rows.NewSource] = []
        for feed in listing.feeds:
            key = url_key(feed.url)
            if key in urls:
                report.duplicates.append(
                    f"{path}:{feed.line}: {feed.url} is already followed as {urls[key]!r}"
                )
                continue
            name = name_for(feed.title, feed.url, names)
            urls[key] = name
            cats = list(dict.fromkeys([*(categories or []), *feed.categories]))
            rows.append(
                source_rows.NewSource(
                    name, feed.url, feed.title, seconds, cats, f"opml:{path.name}"
                )
            )
        source_rows.add_many(s, rows, now or utcnow())
        report.added = [r.name for r in rows]
    report.seconds = time.perf_counter() - started
    return report


def add(
    engine: Engine,
    settings: Settings,
    url: str,
    *,
    name: str | None = None,
    every: timedelta | None = None,
    categories: list[str] | None = None,
    now: datetime | None = None,
) -> str:
    """Add one feed; its name (given, else made from the URL's host)."""
    if not url.lower().startswith(("http://", "https://")):
        raise SourceListError(f"{url!r} is not an http(s) URL; give the feed's RSS URL.")
    if name is not None:
        try:
            FeedSourceConfig(name=name, type="feed", url=url)
        except ValueError as exc:
            raise SourceListError(f"source name {name!r}: {_first_error(exc)}") from None
    with session(engine, write=True) as s:
        names, urls = _known(s, settings)
        key = url_key(url)
        if key in urls:
            raise SourceListError(f"{url} is already followed as {urls[key]!r}; nothing was added.")
        if name is not None and name in names:
            raise SourceListError(f"a source named {name!r} exists already; pick another --name.")
        chosen = name or name_for("", url, names)
        seconds = int((every or DEFAULT_EVERY).total_seconds())
        row = source_rows.NewSource(chosen, url, "", seconds, list(categories or []), "cli")
        source_rows.add_many(s, [row], now or utcnow())
    return chosen


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return str(errors()[0].get("msg", exc))
    return str(exc)


def _stored_only(settings: Settings, name: str, verb: str) -> None:
    if any(src.name == name for src in settings.sources):
        raise SourceListError(
            f"source {name!r} is in the config file ([[sources]]); {verb} it there."
        )


def remove(engine: Engine, settings: Settings, name: str) -> None:
    _stored_only(settings, name, "remove")
    with session(engine, write=True) as s:
        if not source_rows.remove(s, name):
            raise SourceListError(f"no stored source is named {name!r}; see `sources list`.")


def set_enabled(engine: Engine, settings: Settings, name: str, enabled: bool) -> None:
    _stored_only(settings, name, "set `enabled = false` for" if not enabled else "enable")
    with session(engine, write=True) as s:
        if not source_rows.set_enabled(s, name, enabled):
            raise SourceListError(f"no stored source is named {name!r}; see `sources list`.")


def merged(engine: Engine, settings: Settings) -> tuple[Settings, list[ProblemData]]:
    """The settings with the store's enabled sources after the config's; a stored source
    whose name a config source has is left out, and is a notice."""
    with session(engine) as s:
        rows = source_rows.all_rows(s, enabled_only=True)
    if not rows:
        return settings, []
    names = {src.name for src in settings.sources}
    notices: list[ProblemData] = []
    extra: list[Any] = []
    for r in rows:
        if r.name in names:
            notices.append(
                ProblemData(
                    "config", "name-clash",
                    f"stored source {r.name!r} ({r.url}) has the name of a [[sources]] entry "
                    "in the config, which wins; the stored one is not polled. Rename one, or "
                    f"`syndicator sources remove {r.name}`.",
                    severity="notice",
                )
            )  # fmt: skip
            continue
        # Built without validation (10,000 a pass): the row was checked when it was
        # added; the keys not given take the model's own defaults.
        extra.append(
            FeedSourceConfig.model_construct(
                name=r.name, type="feed", url=r.url, every=timedelta(seconds=r.every_seconds),
                categories=list(r.categories),
            )
        )  # fmt: skip
    return settings.model_copy(update={"sources": [*settings.sources, *extra]}), notices


def due_stored(engine: Engine, settings: Settings, now: datetime) -> list[str]:
    """The stored sources due for a poll (the daemon's `poll:stored` job asks for these);
    a name the config also has is the config's, scheduled on its own."""
    with session(engine) as s:
        names = source_rows.due_names(s, now)
    config = {src.name for src in settings.sources}
    return [n for n in names if n not in config]


def record_show(s: Session, name: str, result: PollResult, now: datetime) -> None:
    """After a feed was read: keep its show, follow itunes:new-feed-url, and report (and,
    for a stored source, disable) a second source of the same show."""
    stored = source_rows.by_name(s, name)
    if result.new_url and stored is not None:
        source_rows.move(s, name, result.new_url)
    show = result.show
    if show is None:
        return
    final = result.final_url or result.url
    store_shows.upsert(s, name, show, final, now)
    others = store_shows.others_with(s, name, show.podcast_guid, final)
    if not others:
        return
    other, why = others[0]
    action = (
        "it is disabled so the show is not followed twice; remove one with "
        f"`syndicator sources remove {name}`"
        if stored is not None
        else "remove one of them from the config"
    )
    if stored is not None:
        source_rows.set_enabled(s, name, False)
    problem_store.record(
        s, name,
        ProblemData(
            result.url, "duplicate",
            f"source {name!r} is the same show as {other!r} (same {why}); {action}.",
            severity="warning",
        ),
        now,
    )  # fmt: skip


def export(engine: Engine, settings: Settings) -> bytes:
    """Every feed source (config and stored), as OPML 2.0, with each show's title."""
    from syndicator.sources import opml

    feeds: list[opml.OpmlFeed] = []
    with session(engine) as s:
        stored = source_rows.all_rows(s)
        found = store_shows.by_sources(
            s, [src.name for src in settings.sources] + [r.name for r in stored]
        )
        config_names = {src.name for src in settings.sources}
        for src in settings.sources:
            if isinstance(src, FeedSourceConfig):
                show = found.get(src.name)
                feeds.append(
                    opml.OpmlFeed(
                        src.url, show.title if show and show.title else src.name,
                        show.link if show else "", list(src.categories),
                    )
                )  # fmt: skip
        for r in stored:
            if r.name in config_names:
                continue
            show = found.get(r.name)
            title = (show.title if show else "") or r.title or r.name
            feeds.append(opml.OpmlFeed(r.url, title, show.link if show else "", list(r.categories)))
    return opml.write(feeds, settings.podcast.title or "syndicator sources")


def listing(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    """Every source for `sources list`: where it comes from, its poll state, its show."""
    with session(engine) as s:
        pages = source_rows.page(s, offset=0, limit=10**9)
        stored = {r.name: r for r in source_rows.all_rows(s)}
    config = {src.name: src for src in settings.sources}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for src, show, episodes in pages.rows:
        row = source_dict(src, show, episodes)
        _origin(row, config, stored)
        out.append(row)
        seen.add(src.name)
    for name, r in stored.items():  # stored, never polled (an older store had no poll row)
        if name not in seen:
            row = {"name": name, "type": "feed", "url": r.url, "show": None, "episodes": 0}
            _origin(row, config, stored)
            out.append(row)
    for name, src in config.items():  # configured, no pass has run yet
        if name not in seen:
            url = getattr(src, "url", None)
            out.append({"name": name, "type": src.type, "url": url, "show": None,
                        "episodes": 0, "origin": "config", "enabled": src.enabled})  # fmt: skip
    return sorted(out, key=lambda r: r["name"])


def _origin(row: dict[str, Any], config: dict[str, Any], stored: dict[str, Any]) -> None:
    name = row["name"]
    if name in config:
        row["origin"], row["enabled"] = "config", config[name].enabled
        row["shadowed"] = name in stored  # a stored source of the same name is not polled
    elif name in stored:
        r = stored[name]
        row["origin"], row["enabled"] = "store", r.enabled
        row["every_seconds"], row["categories"] = r.every_seconds, list(r.categories)
        row["added_from"], row["title"] = r.origin, r.title  # the OPML outline's title
    else:
        row["origin"], row["enabled"] = "removed", False

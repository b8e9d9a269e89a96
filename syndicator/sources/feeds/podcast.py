"""The podcast namespaces: podcast:person / podcast:transcript (podcastindex.org) and
psc:chapters (Podlove Simple Chapters), read beside feedparser's pass.

feedparser keeps only the last podcast:person and podcast:transcript of an item, so a
second, streaming pass with defusedxml collects all of them (`podcast_ns_items`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from syndicator.sources import bounds
from syndicator.sources.base import Chapter, Guest, Person
from syndicator.sources.text import fix_text
from syndicator.timeutil import clock_seconds

PODCAST_NS = {
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
}
_TRANSCRIPT_PREFERENCE = [
    "text/vtt",
    "application/x-subrip",
    "application/srt",
    "text/srt",
    "application/json",
    "text/html",
    "text/plain",
]
# auto: parse in one thread until a pass has received this much feed text, then start a
# process pool for the rest (at ~3.5 MB/s per core, that is a few seconds of parsing)

_SPACE = re.compile(r"\s+")


@dataclass
class NsItem:
    guid: str | None
    link: str | None
    guests: list[Guest]
    transcripts: list[tuple[str, str]]  # (url, type)
    # network: every other podcast:person (host, producer...) and podcast:chapters' URL
    persons: list[Person] = field(default_factory=list)
    chapters_url: str | None = None


_ITEM_TAGS = {"item", "{http://purl.org/rss/1.0/}item", "{http://www.w3.org/2005/Atom}entry"}


def podcast_ns_items(body: bytes) -> tuple[list[NsItem], str | None]:
    """podcast:person and podcast:transcript per item (feedparser keeps only the last of each).

    Runs defusedxml (no DTD entities, no external references) over the bytes. On XML that is
    not well-formed it returns the items complete before the error, and the error.
    """
    from defusedxml.ElementTree import iterparse

    items: list[NsItem] = []
    try:
        for _event, elem in iterparse(io.BytesIO(body), events=("end",)):
            _ns_item(elem, items)
    except Exception as exc:  # ParseError, or defusedxml refusing something
        return items, str(exc) or type(exc).__name__
    return items, None


def _ns_item(elem: Any, items: list[NsItem]) -> None:
    """Collect one item element's podcast-namespace children, then free it."""
    if elem.tag not in _ITEM_TAGS:
        return
    guid = link = None
    guests: list[Guest] = []
    transcripts: list[tuple[str, str]] = []
    persons: list[Person] = []
    chapters_url: str | None = None
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if ns in PODCAST_NS:
            if local == "person":
                role = (child.get("role") or "host").strip().lower()
                name = _SPACE.sub(" ", child.text or "").strip()
                if role == "guest" and name:
                    guests.append(
                        Guest(
                            name=fix_text(name),
                            website=(child.get("href") or "").strip() or None,
                            avatar=(child.get("img") or "").strip() or None,
                        )
                    )
                elif name:
                    persons.append(
                        Person(
                            name=fix_text(name),
                            role=role,
                            group=(child.get("group") or "cast").strip().lower(),
                            href=(child.get("href") or "").strip() or None,
                            img=(child.get("img") or "").strip() or None,
                        )
                    )
            elif local == "chapters" and chapters_url is None and child.get("url"):
                chapters_url = child.get("url", "").strip() or None
            elif local == "transcript" and child.get("url"):
                transcripts.append((child.get("url", "").strip(), child.get("type") or ""))
        elif local in ("guid", "id") and guid is None:
            guid = (child.text or "").strip() or None
        elif local == "link" and link is None:
            link = (child.text or child.get("href") or "").strip() or None
    items.append(NsItem(guid, link, guests, transcripts, persons, chapters_url))
    elem.clear()


def pick_transcript(options: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    if not options:
        return None
    for want in _TRANSCRIPT_PREFERENCE:
        for url, kind in options:
            if kind.split(";")[0].strip().lower() == want:
                return url, kind
    return options[0]


def psc_chapters(entry: Any) -> list[Chapter]:
    """psc:chapters of a feedparser entry; a start that is no clock time is skipped."""
    chapters: list[Chapter] = []
    for ch in (entry.get("psc_chapters") or {}).get("chapters") or []:
        start = ch.get("start_parsed")
        secs = (
            int(start.total_seconds())
            if isinstance(start, timedelta)
            else chapter_start(ch.get("start") or "")
        )
        if secs is not None:
            chapters.append(Chapter(start=secs, title=fix_text((ch.get("title") or "").strip())))
    return chapters


def chapter_start(value: str) -> int | None:
    """Chapter start "HH:MM:SS.mmm", "MM:SS" or "SS.s" -> whole seconds; None if absurd."""
    try:
        return bounds.duration_seconds(clock_seconds(value, fractional=True))
    except ValueError:  # bounds.OutOfRange is one
        return None

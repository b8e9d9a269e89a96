"""A remote feed's show: its channel's own elements (title, artwork, owner, podcast:guid...).

feedparser keeps a few channel fields and none of the podcast namespace's (guid, locked,
funding, value, medium), so the channel's direct children are read with defusedxml (no
entities, no external references), stopping at the first item; feedparser's view fills
what that pass did not find (an Atom feed's title and link).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syndicator.sources.base import ShowData
from syndicator.sources.feeds.safety import Refused, web_url
from syndicator.sources.text import fix_text
from syndicator.textutil import html_to_text, text_excerpt
from syndicator.timeutil import as_utc

ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
PODCAST = "{https://podcastindex.org/namespace/1.0}"
_ITEMS = {"item", "{http://purl.org/rss/1.0/}item", "{http://www.w3.org/2005/Atom}entry"}
MAX_TEXT = 4000  # bytes of a show's description kept
MAX_FUNDING = 20  # funding links kept
MAX_RECIPIENTS = 50  # value recipients kept


def _text(value: str | None, limit: int = 500) -> str:
    return text_excerpt(fix_text(html_to_text(value or "")), limit)


def _channel_children(body: bytes) -> list[Any]:
    """The channel's direct children (elements), read up to the first item."""
    from defusedxml.ElementTree import iterparse

    out: list[Any] = []
    depth = 0
    channel_depth: int | None = None
    try:
        for event, elem in iterparse(io.BytesIO(body), events=("start", "end")):
            if event == "start":
                depth += 1
                if elem.tag in _ITEMS:
                    break
                if channel_depth is None and elem.tag in (
                    "channel",
                    "{http://www.w3.org/2005/Atom}feed",
                ):
                    channel_depth = depth
                continue
            if channel_depth is not None and depth == channel_depth + 1:
                out.append(elem)
            depth -= 1
    except Exception:  # not well-formed past this point: keep what was complete
        pass
    return out


def _rfc822(value: str) -> datetime | None:
    import email.utils

    try:
        return as_utc(email.utils.parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError):
        return None


def _category(elem: Any) -> list[str]:
    top = (elem.get("text") or "").strip()
    if not top:
        return []
    subs = [(c.get("text") or "").strip() for c in elem if c.tag == ITUNES + "category"]
    return [f"{top} > {s}" for s in subs if s] or [top]


def _value(elem: Any, base: str, refused: Refused) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: v for k, v in elem.attrib.items() if k in ("type", "method", "suggested")
    }
    recipients = []
    for r in elem:
        if r.tag == PODCAST + "valueRecipient" and len(recipients) < MAX_RECIPIENTS:
            recipients.append(
                {
                    k: _text(r.get(k), 200)
                    for k in ("name", "type", "address", "split", "customKey", "customValue")
                    if r.get(k)
                }
            )
    if recipients:
        out["recipients"] = recipients
    return out


def read_show(body: bytes, url: str, feed: Mapping[str, Any] | None = None) -> ShowData:
    """The show of a feed body already known to be a feed. Never raises for bad input."""
    show = ShowData()
    refused: Refused = []
    for elem in _channel_children(body):
        tag, text = elem.tag, (elem.text or "").strip()
        if tag == "title" or tag == "{http://www.w3.org/2005/Atom}title":
            show.title = _text(text)
        elif tag == "description" or (tag == ITUNES + "summary" and not show.description):
            show.description = _text(text, MAX_TEXT)
        elif tag == "link" and text:
            show.link = web_url(text, url, "link", refused) or ""
        elif tag == ITUNES + "image" and elem.get("href"):
            show.image = web_url(elem.get("href"), url, "image", refused) or show.image
        elif tag == "image" and not show.image:
            href = next((c.text for c in elem if c.tag == "url" and c.text), None)
            show.image = web_url(href, url, "image", refused) or ""
        elif tag == ITUNES + "author":
            show.author = _text(text)
        elif tag == ITUNES + "owner":
            for c in elem:
                if c.tag == ITUNES + "name":
                    show.owner_name = _text(c.text)
                elif c.tag == ITUNES + "email":
                    show.owner_email = _text(c.text, 320)
        elif tag == "language":
            show.language = _text(text, 35)
        elif tag == ITUNES + "category":
            show.categories.extend(c for c in _category(elem) if c not in show.categories)
        elif tag == PODCAST + "guid" and text:
            show.podcast_guid = _text(text, 200)
        elif tag == ITUNES + "new-feed-url" and text:
            show.new_feed_url = web_url(text, url, "new-feed-url", refused) or ""
        elif tag == PODCAST + "locked":
            show.locked = text.lower() == "yes"
            show.locked_owner = _text(elem.get("owner"), 320)
        elif tag == PODCAST + "funding" and len(show.funding) < MAX_FUNDING:
            link = web_url(elem.get("url"), url, "funding", refused)
            if link:
                show.funding.append({"url": link, "text": _text(text, 128)})
        elif tag == PODCAST + "value":
            show.value = _value(elem, url, refused)
        elif tag == PODCAST + "medium":
            show.medium = _text(text, 40).lower()
        elif tag == "lastBuildDate" and text:
            show.last_build_date = _rfc822(text)
    _fill_from_feedparser(show, url, feed or {}, refused)
    return show


def _fill_from_feedparser(
    show: ShowData, url: str, feed: Mapping[str, Any], refused: Refused
) -> None:
    """feedparser's reading of what the channel pass did not find (Atom's names)."""
    if not show.title:
        show.title = _text(feed.get("title"))
    if not show.description:
        show.description = _text(feed.get("subtitle") or feed.get("summary"), MAX_TEXT)
    if not show.link:
        show.link = web_url(feed.get("link"), url, "link", refused) or ""
    if not show.image:
        image = feed.get("image") or {}
        show.image = web_url(image.get("href") or image.get("url"), url, "image", refused) or ""
    if not show.author:
        show.author = _text(feed.get("author"))
    if not show.language:
        show.language = _text(feed.get("language"), 35)

"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1) beside the RSS, when configured.

Same episodes, guids and URLs as the RSS; the audio is an attachment. The output
has no build time in it, so an unchanged feed gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

from syndicator.config import FeedConfig
from syndicator.directory import rss
from syndicator.directory.check import bad_scheme

VERSION = "https://jsonfeed.org/version/1.1"


def json_feed_url(feed: FeedConfig, feed_url: str) -> str | None:
    """FeedConfig.json_feed_url, else the JSON file's name beside the RSS feed's URL."""
    if feed.json_feed_url:
        return feed.json_feed_url
    if feed.json_feed is None:
        return None
    return urljoin(feed_url, feed.json_feed.name)


def _date(ep: rss.EpisodeLike) -> str | None:
    dt = ep.date or getattr(ep, "first_seen_at", None)
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def build_json_feed(
    meta: rss.FeedMeta, episodes: Sequence[rss.EpisodeLike], *, url: str | None = None
) -> bytes:
    """The JSON Feed's bytes (UTF-8, stable key order)."""
    doc: dict[str, Any] = {
        "version": VERSION,
        "title": meta.title,
        "home_page_url": meta.link,
    }
    if url:
        doc["feed_url"] = url
    doc["description"] = meta.description
    if meta.image:
        doc["icon"] = meta.image
    if meta.author:
        doc["authors"] = [{"name": meta.author}]
    doc["language"] = meta.language
    items = []
    for ep in episodes:
        if not ep.enclosure_url:
            continue
        # never a javascript:/data:/file: link (the RSS build reports it; items whose audio
        # URL is one are not given here at all)
        link = ep.url if ep.url and not bad_scheme(ep.url) else None
        notes = rss.sanitize_html(ep.show_notes_html or "", link)
        item: dict[str, Any] = {"id": ep.guid}
        if link:
            item["url"] = link
        item["title"] = rss.item_title(ep)
        summary = rss.xml_text(ep.description).strip()
        if notes:
            item["content_html"] = notes
        else:
            item["content_text"] = summary or item["title"]
        if summary:
            item["summary"] = summary
        published = _date(ep)
        if published:
            item["date_published"] = published
        image = rss.absolute_url(ep.image, link or meta.link) if ep.image else None
        if image:
            item["image"] = image
        attachment: dict[str, Any] = {
            "url": ep.enclosure_url,
            "mime_type": rss.enclosure_type(ep.enclosure_url, ep.enclosure_type),
        }
        if ep.enclosure_length:
            attachment["size_in_bytes"] = int(ep.enclosure_length)
        if ep.duration_seconds:
            attachment["duration_in_seconds"] = int(ep.duration_seconds)
        item["attachments"] = [attachment]
        if ep.tags:
            item["tags"] = list(ep.tags)
        items.append(item)
    doc["items"] = items
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

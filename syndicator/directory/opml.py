"""The OPML 2.0 list of a network feed's shows, written beside the feed (`opml = true`).

One `<outline type="rss">` per show, in the order of the feed's sources, with the show's
title and its feed URL (what podcast apps import) and its site. No dateCreated: the same
shows give the same bytes, so an unchanged file is not rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from syndicator.directory.rss import xml_text


@dataclass(frozen=True)
class OpmlShow:
    title: str
    feed_url: str
    link: str | None = None


def opml_document(title: str, shows: Sequence[OpmlShow], *, owner_name: str = "") -> bytes:
    """OPML 2.0 bytes listing `shows` under a head titled `title`."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = xml_text(title).strip() or "Shows"
    if owner_name.strip():
        etree.SubElement(head, "ownerName").text = xml_text(owner_name).strip()
    body = etree.SubElement(root, "body")
    for show in shows:
        name = xml_text(show.title).strip() or xml_text(show.feed_url)
        attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": xml_text(show.feed_url)}
        if show.link:
            attrs["htmlUrl"] = xml_text(show.link)
        etree.SubElement(body, "outline", attrs)
    return etree.tostring(root, pretty_print=True, encoding="UTF-8", xml_declaration=True)

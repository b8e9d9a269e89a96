"""OPML subscription lists: read (every podcast app's export) and write (OPML 2.0).

lxml parses (it keeps each outline's line for messages); a DOCTYPE that declares entities
is refused before it parses, and lxml is told to load no DTD and fetch nothing. A feed is
an outline with an `xmlUrl`; the outlines around it (folders) and its `category`
attribute give its categories.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from lxml import etree

from syndicator.sources.feeds.safety import declares_entities
from syndicator.sources.text import fix_text
from syndicator.textutil import html_to_text

MAX_OPML_BYTES = 50 * 1024 * 1024  # an OPML file larger than this is refused
MAX_OUTLINES = 100_000  # feeds read from one file


# Folders apps wrap every feed in (Pocket Casts, Overcast): not a category.
_WRAPPERS = frozenset({"feeds", "podcasts", "subscriptions", "playlists"})


class OpmlError(ValueError):
    """The file is not OPML syndicator can read; the message has the file, line and why."""


@dataclass
class OpmlFeed:
    url: str
    title: str = ""
    html_url: str = ""
    categories: list[str] = field(default_factory=list)
    line: int | None = None


@dataclass
class OpmlList:
    title: str = ""
    feeds: list[OpmlFeed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "line N: why", outlines not read


def _plain(value: str | None) -> str:
    if not value:
        return ""
    if "<" not in value and "&" not in value:  # most titles: no markup to take out
        return fix_text(value).strip()
    return fix_text(html_to_text(value)).strip()


def read(path: Path) -> OpmlList:
    """Read an OPML file; raise OpmlError (file, line, reason) when it cannot be read."""
    try:
        size = path.stat().st_size
        if size > MAX_OPML_BYTES:
            raise OpmlError(
                f"{path}: {size:,} bytes is more than the {MAX_OPML_BYTES:,} an OPML file may "
                "have; split it into smaller files and import each."
            )
        body = path.read_bytes()
    except OSError as exc:
        raise OpmlError(f"{path}: cannot read the file ({exc.strerror or exc}).") from exc
    return parse(body, str(path))


def parse(body: bytes, where: str) -> OpmlList:
    if declares_entities(body):
        raise OpmlError(
            f"{where}:1: the file declares XML entities (<!DOCTYPE ... [<!ENTITY ...>]>), "
            "which can expand without bound or read local files; remove that block and import "
            "again."
        )
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 1)
        raise OpmlError(
            f"{where}:{line}: not well-formed XML ({exc.msg}); fix the file (or export it "
            "again from the app) and import again."
        ) from None
    if root is None or etree.QName(root).localname.lower() != "opml":
        tag = etree.QName(root).localname if root is not None else "nothing"
        line = root.sourceline if root is not None else 1
        raise OpmlError(
            f"{where}:{line}: the document is <{tag}>, not <opml>; is this a feed rather than "
            "a subscription list? Use `sources add URL` for one feed."
        )
    body_el = next((c for c in root if _local(c) == "body"), None)
    if body_el is None:
        raise OpmlError(
            f"{where}:{root.sourceline}: the <opml> has no <body>, so it lists no feeds; "
            "export the list again from the app."
        )
    head = next((c for c in root if _local(c) == "head"), None)
    title = ""
    if head is not None:
        title = _plain(next((c.text for c in head if _local(c) == "title"), ""))
    out = OpmlList(title=title)
    _walk(body_el, [], out, where)
    return out


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _attrs(el: etree._Element) -> dict[str, str]:
    """The attributes by lower-case name (apps write xmlUrl, xmlurl, XMLURL)."""
    return {str(k).lower(): str(v).strip() for k, v in el.items()}


def _categories(value: str) -> list[str]:
    # OPML 2.0: comma-separated, each a "/"-separated path ("/Tech/Podcasts").
    out = []
    for part in value.split(","):
        name = " > ".join(p.strip() for p in part.split("/") if p.strip())
        if name:
            out.append(name)
    return out


def _walk(parent: etree._Element, folders: list[str], out: OpmlList, where: str) -> None:
    for el in parent:
        if not isinstance(el.tag, str) or etree.QName(el).localname != "outline":
            continue
        a = _attrs(el)
        # gPodder writes the show's name in `title` and its description in `text`
        text = _plain(a.get("title") or a.get("text"))
        url = a.get("xmlurl", "")
        if not url:
            folder = text and text.lower() not in _WRAPPERS
            _walk(el, [*folders, text] if folder else folders, out, where)
            continue
        if not url.lower().startswith(("http://", "https://")):
            out.skipped.append(
                f"{where}:{el.sourceline}: {url[:200]!r} is not an http(s) URL, so it was not "
                "imported"
            )
            continue
        if len(out.feeds) >= MAX_OUTLINES:
            out.skipped.append(
                f"{where}:{el.sourceline}: more than {MAX_OUTLINES:,} feeds; the rest were not "
                "imported (split the file)"
            )
            return
        cats = [*folders, *_categories(a.get("category", ""))]
        out.feeds.append(
            OpmlFeed(
                url=url,
                title=text,
                html_url=a.get("htmlurl", ""),
                categories=list(dict.fromkeys(cats)),
                line=el.sourceline,
            )
        )


def write(feeds: Iterable[OpmlFeed], title: str, now: datetime | None = None) -> bytes:
    """OPML 2.0: one `type="rss"` outline per feed, its categories in `category`."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC))
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for f in feeds:
        el = etree.SubElement(body, "outline", type="rss", text=f.title or f.url)
        el.set("title", f.title or f.url)
        el.set("xmlUrl", f.url)
        if f.html_url:
            el.set("htmlUrl", f.html_url)
        if f.categories:
            el.set("category", ",".join("/" + c.replace(" > ", "/") for c in f.categories))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

"""feedparser -> EpisodeData: one feed body in, episodes and problems out.

Parsing is feedparser, but the bytes are checked first (safety.py): a feed that declares
XML entities (billion laughs, external entities such as file:///etc/passwd) is refused
before any parser sees it. HTML is sanitized with nh3 rather than feedparser's own
sanitizer and URI resolver, which took half of the parse time. Runs in a worker thread
or process (poll.py), so it imports neither config nor the network code.
"""

from __future__ import annotations

import email.utils
import html
import io
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import nh3

from syndicator.sources import bounds
from syndicator.sources.base import Enclosure, EpisodeData, Person, ProblemData, ShowData
from syndicator.sources.feeds.podcast import (
    NsItem,
    pick_transcript,
    podcast_ns_items,
    psc_chapters,
)
from syndicator.sources.feeds.safety import (
    ENTITY_REFUSAL,
    Refused,
    abs_url,
    bounded,
    declares_entities,
    problem,
    refused_problem,
    web_url,
)
from syndicator.sources.text import clean_episode, fix_text
from syndicator.textutil import html_to_text, text_excerpt
from syndicator.timeutil import as_utc, clock_seconds, parse_iso

_SPACE = re.compile(r"\s+")


@dataclass
class ParsedFeed:
    """What parse_feed() made of one body."""

    ok: bool
    episodes: list[EpisodeData] = field(default_factory=list)
    problems: list[ProblemData] = field(default_factory=list)
    error: str | None = None  # short, when not ok
    show: ShowData | None = None  # the feed's channel: its title, artwork, podcast:guid
    seconds: float = 0.0  # wall time of the parse
    cpu_seconds: float = 0.0  # CPU time of the parsing thread (contention-free cost)


def clean_html(value: str, base: str | None) -> str:
    """Sanitize show notes; relative links are made absolute against `base`."""
    if not value:
        return ""
    try:
        if base and base.startswith(("http://", "https://")):
            return nh3.clean(value, url_relative=("rewrite_with_base", base)).strip()
    except (ValueError, TypeError):
        pass  # a base nh3 cannot use: keep the links as they are
    return nh3.clean(value).strip()


def parse_itunes_duration(value: Any) -> int | None:
    """itunes:duration "1:02:03", "62:03", "3723" or "3723.5" -> seconds; else None.

    Raises `bounds.OutOfRange` for a duration that is not finite or past a week.
    """
    if value is None:
        return None
    raw = str(value).strip()
    if not raw:
        return None
    try:
        secs = clock_seconds(raw, fractional=True)
    except ValueError:
        return None
    return bounds.duration_seconds(secs)


def _parse_date(raw: str, tz: tzinfo) -> datetime | None:
    try:
        dt = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        dt = None
    if dt is None:
        try:
            return parse_iso(raw, tz)  # type: ignore[arg-type]
        except ValueError:
            return None
    return as_utc(dt, tz)  # type: ignore[arg-type]


def _entry_date(entry: Any, tz: tzinfo) -> datetime | None:
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if raw:
            dt = _parse_date(raw, tz)
            if dt is not None:
                return dt
        parsed = entry.get(key + "_parsed")
        if parsed:  # feedparser's reading (already UTC) of a format we do not know
            return datetime(*parsed[:6], tzinfo=UTC)
    return None


_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html)", re.I | re.S)
_ALT_LINK = re.compile(
    r"<link\b[^>]*\btype=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.IGNORECASE
)
_HREF = re.compile(r"\bhref=[\"']([^\"']+)[\"']", re.IGNORECASE)


def _html_page_problem(url: str, body: bytes) -> ProblemData:
    hint = ""
    m = _ALT_LINK.search(body[:200_000].decode("utf-8", "replace"))
    if m:
        href = _HREF.search(m.group(0))
        if href:
            hint = f" The page links to a feed at {urljoin(url, html.unescape(href.group(1)))}."
    return problem(
        url,
        "not-a-feed",
        "the URL returned an HTML page, not an RSS/Atom feed (probably the site's home page); "
        f"set the source's url to the feed itself.{hint}",
    )


# Reads a body into feedparser's result shape (`feedparser_read` below); another reader
# (a candidate fast parser, bench/compare_parsers.py) is compared through the same code.
Reader = Callable[[bytes, dict[str, str]], Any]


def feedparser_read(body: bytes, headers: dict[str, str]) -> Any:
    # A file object, never bytes: feedparser opens a bytes value that names a file.
    return feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,  # nh3 does it below, faster
        resolve_relative_uris=False,  # nh3 rewrites relative links in show notes
    )


def parse_feed(
    body: bytes,
    url: str,
    *,
    content_type: str = "",
    categories: Iterable[str] = (),
    tz: tzinfo = UTC,
    reader: Reader = feedparser_read,
) -> ParsedFeed:
    """Parse one feed body into episodes and problems. Never raises for bad input."""
    started, cpu = time.perf_counter(), time.thread_time()
    result = _parse_feed(body, url, content_type, list(categories), tz, reader)
    result.episodes = [clean_episode(e) for e in result.episodes]
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.thread_time() - cpu
    return result


def _first_three(items: list[str], sep: str) -> str:
    """The first three of a problem's items, and " ..." when there are more."""
    return sep.join(items[:3]) + (" ..." if len(items) > 3 else "")


def _parse_feed(
    body: bytes, url: str, content_type: str, categories: list[str], tz: tzinfo, reader: Reader
) -> ParsedFeed:
    if not body.strip():
        return ParsedFeed(
            ok=False,
            error="empty response",
            problems=[
                problem(
                    url,
                    "empty",
                    "the server answered 200 with an empty body, so there is no feed to read. "
                    "It may be mid-publish; the next poll tries again. If it persists, check "
                    "the URL or tell the feed's publisher.",
                )
            ],
        )
    if declares_entities(body):
        return ParsedFeed(
            ok=False,
            error="XML entities refused",
            problems=[
                problem(
                    url,
                    "xml-entities",
                    f"{ENTITY_REFUSAL}. Nothing from this feed was read; ask the publisher to "
                    "drop the <!DOCTYPE ...[<!ENTITY ...>]> block.",
                )
            ],
        )
    ctype = content_type.split(";")[0].strip().lower()
    looks_html = ctype in ("text/html", "application/xhtml+xml") or bool(
        _HTML_START.match(body[:2048])
    )
    # No content-location: feedparser would urljoin every element against it (a third of its
    # time); the few URLs we keep are made absolute below instead.
    headers = {"content-type": content_type} if content_type else {}
    try:
        d = reader(body, headers)
    except Exception as exc:  # feedparser promises not to raise; contain it if it does
        return ParsedFeed(
            ok=False,
            error="parser crashed",
            problems=[
                problem(
                    url,
                    "xml",
                    f"the feed could not be parsed ({type(exc).__name__}: {exc}); "
                    "tell the feed's publisher; the next poll tries again.",
                )
            ],
        )
    entries = d.get("entries") or []
    problems: list[ProblemData] = []
    if not entries:
        if not d.get("version") and looks_html:
            return ParsedFeed(ok=False, error="HTML page", problems=[_html_page_problem(url, body)])
        if not d.get("version") and ("json" in ctype or body.lstrip()[:1] in (b"{", b"[")):
            return ParsedFeed(
                ok=False,
                error="JSON, not a feed",
                problems=[
                    problem(
                        url,
                        "not-a-feed",
                        "the URL returned JSON (a JSON Feed or an API answer), not RSS/Atom; "
                        "syndicator reads RSS and Atom feeds only: use the podcast's RSS URL.",
                    )
                ],
            )
        if d.get("bozo"):
            return _invalid_xml(url, d.get("bozo_exception"))
        if not d.get("version"):
            return ParsedFeed(
                ok=False,
                error="not a feed",
                problems=[
                    problem(
                        url,
                        "not-a-feed",
                        f"the document is XML but not RSS or Atom (content type "
                        f"{ctype or 'unknown'}); check the source's url.",
                    )
                ],
            )
        problems.append(
            problem(
                url,
                "empty-feed",
                "the feed has no items; nothing to read (if it had episodes before, the "
                "publisher may have emptied it by mistake).",
                severity="warning",
            )
        )
        return ParsedFeed(ok=True, problems=problems)

    ns_items: list[NsItem] | None = None
    if b"odcastindex" in body or b"podcast-namespace" in body:
        ns_items, ns_error = podcast_ns_items(body)
        if ns_error and len(ns_items) < len(entries):  # some items really lost their guests
            problems.append(
                problem(
                    url,
                    "xml",
                    f"podcast:person / podcast:transcript were read only up to an XML error "
                    f"({ns_error}); later items are kept without guests and transcripts.",
                    severity="warning",
                )
            )
    by_index = ns_items is not None and len(ns_items) == len(entries)
    by_key: dict[str, NsItem] = {}
    if ns_items is not None and not by_index:
        for it in ns_items:
            for k in (it.guid, it.link):
                if k:
                    by_key.setdefault(k, it)

    feed_link = abs_url((d.get("feed") or {}).get("link"), url) or url
    episodes: list[EpisodeData] = []
    seen: set[str] = set()
    no_key: list[str] = []
    range_notes: list[str] = []  # numbers out of range, one line per item and field
    many_tags: list[str] = []
    unsafe_items: list[str] = []
    dupes = 0
    for i, e in enumerate(entries):
        item_notes: list[str] = []
        refused: Refused = []
        enclosure = _enclosure(e, url, item_notes, refused)
        guid = (e.get("id") or "").strip() or None
        link = (e.get("link") or "").strip() or None
        key = guid or link or (enclosure.url if enclosure else None)
        title = _title(e)
        if not key:
            no_key.append(title or f"item #{i + 1}")
            continue
        if key in seen:
            dupes += 1
            continue
        seen.add(key)
        ns = None
        if ns_items is not None:
            ns = ns_items[i] if by_index else (by_key.get(guid or "") or by_key.get(link or ""))
        ep = _episode(
            e, key, guid, link, title, enclosure, ns, categories, url, feed_link, tz, item_notes,
            refused,
        )  # fmt: skip
        label = f"{title or 'untitled item'!r} ({key[:200]})"
        range_notes.extend(f"{label}: {n}" for n in item_notes)
        if len(ep.tags) > bounds.MAX_TAGS:
            many_tags.append(f"{label} has {len(ep.tags):,}")
            ep.tags = ep.tags[: bounds.MAX_TAGS]
        episodes.append(ep)
        if refused:
            lost = ", ".join(f"{what} {value[:80]!r}" for what, value in refused)
            unsafe_items.append(f"item {ep.title[:200]!r} ({key[:200]!r}): {lost};")
    if not episodes and d.get("bozo"):
        return _invalid_xml(url, d.get("bozo_exception"))
    if d.get("bozo"):
        problems.insert(
            0,
            problem(
                url,
                "xml",
                f"the feed has an XML problem ({d.get('bozo_exception')}) but {len(episodes)} "
                "episode(s) could still be read; ask the publisher to fix it.",
                severity="warning",
            ),
        )
    if no_key:
        shown = _first_three([repr(t) for t in no_key], ", ")
        problems.append(
            problem(
                url,
                "item",
                f"{len(no_key)} item(s) have no guid, link or enclosure URL and were skipped "
                f"({shown}): without one an item cannot be told apart from the others; ask the "
                "publisher to add a <guid>.",
                severity="warning",
            )
        )
    if range_notes:
        shown = _first_three(range_notes, "; ")
        problems.append(
            problem(
                url,
                "range",
                f"{len(range_notes)} number(s) in the feed's items are out of range and were "
                f"dropped, the items kept without them ({shown}). Ask the publisher to fix them.",
                severity="warning",
            )
        )
    if many_tags:
        shown = _first_three(many_tags, "; ")
        problems.append(
            problem(
                url,
                "too-many-tags",
                f"{len(many_tags)} item(s) have more than {bounds.MAX_TAGS} tags; only the "
                f"first {bounds.MAX_TAGS} of each are kept ({shown}).",
                severity="warning",
            )
        )
    # the channel's own URLs are not published as they are; a non-http(s) one is dropped
    show = _show(d.get("feed") or {}, url, [])
    if unsafe_items:
        problems.append(refused_problem(url, unsafe_items))
    if dupes:
        problems.append(
            problem(
                url,
                "item",
                f"{dupes} item(s) repeat the guid (or, lacking one, the link) of an earlier "
                "item; only the first was kept. Ask the publisher to give every item its own "
                "<guid>.",
                severity="warning",
            )
        )
    return ParsedFeed(ok=True, episodes=episodes, problems=problems, show=show)


def _show(feed: Any, doc_url: str, refused: Refused) -> ShowData:
    """The channel's title, artwork, author, link and podcast:guid (a network feed shows
    each item's own show)."""
    image = feed.get("image")
    href = (image.get("href") or image.get("url")) if isinstance(image, dict) else None
    guid = _SPACE.sub("", str(feed.get("podcast_guid") or ""))[:200] or None
    return ShowData(
        title=fix_text(_SPACE.sub(" ", html_to_text(feed.get("title") or "")).strip())[:500],
        image=web_url(href, doc_url, "image", refused),
        author=fix_text(_SPACE.sub(" ", feed.get("author") or "").strip())[:500],
        link=web_url(feed.get("link"), doc_url, "link", refused),
        podcast_guid=guid,
    )


def _invalid_xml(url: str, reason: object) -> ParsedFeed:
    return ParsedFeed(
        ok=False,
        error="invalid XML",
        problems=[
            problem(
                url,
                "xml",
                f"the feed is not valid XML ({reason}) and no episodes could be read from it. "
                "Nothing stored was changed; ask the publisher to fix the feed (an XML "
                "validator shows the exact spot).",
            )
        ],
    )


def _title(e: Any) -> str:
    raw = e.get("title") or ""
    detail = e.get("title_detail") or {}
    if "html" in (detail.get("type") or "") or "<" in raw:
        raw = html_to_text(raw)
    return fix_text(_SPACE.sub(" ", raw).strip())


def title_from_url(url: str | None) -> str:
    """A title for an item that has none, the way podcast apps make one (gPodder): the file
    name of its enclosure without the extension ("" when the URL names no file)."""
    if not url:
        return ""
    name = unquote(urlsplit(url.strip()).path.rstrip("/").rpartition("/")[2])
    stem, ext = os.path.splitext(name)
    return _SPACE.sub(" ", stem if stem else ext).strip()


def _enclosure(e: Any, base: str, notes: list[str], refused: Refused) -> Enclosure | None:
    """The item's file: its first <enclosure> with an http(s) URL (kept as written, made
    absolute later), else Media RSS."""
    for enc in e.get("enclosures") or []:
        href = (enc.get("href") or enc.get("url") or "").strip()
        if href and web_url(href, base, "enclosure", refused):
            length = bounded(bounds.enclosure_bytes, enc.get("length"), "enclosure length", notes)
            return Enclosure(
                url=href,
                length=length if length else None,
                type=(enc.get("type") or "").strip() or "audio/mpeg",
            )
    return _media_enclosure(e, base, notes, refused)


def _media_enclosure(e: Any, base: str, notes: list[str], refused: Refused) -> Enclosure | None:
    """Media RSS (media:content, also inside media:group) as the episode's file, for items
    without an <enclosure> (video and YouTube-born podcasts publish only these): the first
    audio file, else the first video; isDefault="true" first within each."""
    best: tuple[int, Enclosure] | None = None
    for mc in e.get("media_content") or []:
        url = (mc.get("url") or "").strip()
        if not url or not web_url(url, base, "media:content", refused):
            continue
        mtype = (mc.get("type") or "").split(";")[0].strip().lower()
        if not mtype:
            mtype = mimetypes.guess_type(urlsplit(url).path)[0] or ""
        kind = mtype.partition("/")[0] if "/" in mtype else (mc.get("medium") or "").lower()
        if kind not in ("audio", "video"):
            continue  # images, documents, players
        rank = (0 if kind == "audio" else 2) + (0 if mc.get("isdefault") == "true" else 1)
        if best is None or rank < best[0]:
            length = bounded(
                bounds.enclosure_bytes, mc.get("filesize"), "media:content fileSize", notes
            )
            default_type = "audio/mpeg" if kind == "audio" else "video/mp4"
            best = (rank, Enclosure(url, length if length else None, mtype or default_type))
    return best[1] if best else None


def _episode(
    e: Any,
    key: str,
    guid: str | None,
    link: str | None,
    title: str,
    enclosure: Enclosure | None,
    ns: NsItem | None,
    categories: list[str],
    doc_url: str,
    feed_link: str,
    tz: tzinfo,
    range_notes: list[str],
    refused: Refused,
) -> EpisodeData:
    # keys stay as written (identity must not depend on where the feed is served from);
    # the URLs shown are made absolute against the feed's own URL
    link = web_url(link, doc_url, "link", refused)
    if enclosure is not None and not enclosure.url.startswith(("http://", "https://")):
        enclosure = Enclosure(
            abs_url(enclosure.url, doc_url) or "", enclosure.length, enclosure.type
        )
    summary = e.get("summary") or ""
    content = e.get("content") or []
    notes = ""
    base = link or feed_link
    if ns is not None and ns.guests:
        for g in ns.guests:
            g.website = web_url(g.website, doc_url, f"guest {g.name!r} website", refused)
            g.avatar = web_url(g.avatar, doc_url, f"guest {g.name!r} img", refused)
    for c in content:
        if "html" in (c.get("type") or "") and c.get("value"):
            notes = c["value"]
            base = c.get("base") or base
            break
    if not notes:
        stype = (e.get("summary_detail") or {}).get("type") or ""
        notes = summary if "html" in stype else html.escape(summary)
    description = html_to_text(summary) if summary else html_to_text(notes)

    image = (e.get("image") or {}).get("href") if isinstance(e.get("image"), dict) else None
    if not image:
        for thumb in e.get("media_thumbnail") or []:
            if thumb.get("url"):
                image = thumb["url"]
                break

    tags: dict[str, None] = {}  # first of each in order, in linear time
    for t in e.get("tags") or []:
        term = _SPACE.sub(" ", (t.get("term") or "")).strip()
        if term:
            tags.setdefault(fix_text(term), None)

    chapters = psc_chapters(e)

    options = list(ns.transcripts) if ns else []
    if ns is None:
        pt = e.get("podcast_transcript")  # feedparser's view, when the XML pass did not run
        if isinstance(pt, dict) and pt.get("url"):
            options = [(pt["url"], pt.get("type") or "")]
    transcript = pick_transcript(
        [(u, kind) for raw, kind in options if (u := web_url(raw, doc_url, "transcript", refused))]
    )
    transcript_url = transcript[0] if transcript else None
    chapters_url = ns.chapters_url if ns else None
    if ns is None:
        pc = e.get("podcast_chapters")  # feedparser's view, when the XML pass did not run
        chapters_url = (pc.get("url") or None) if isinstance(pc, dict) else None
    persons = [
        Person(
            p.name,
            p.role,
            p.group,
            web_url(p.href, doc_url, f"person {p.name!r} href", refused),
            web_url(p.img, doc_url, f"person {p.name!r} img", refused),
        )
        for p in (ns.persons if ns else [])
    ]

    etype = (e.get("itunes_episodetype") or "full").strip().lower()
    explicit = e.get("itunes_explicit")
    return EpisodeData(
        title=title
        or title_from_url(enclosure.url if enclosure else None)
        or title_from_url(link)
        or "Untitled episode",
        date=_entry_date(e, tz),
        guid=guid or key,
        key=key,
        number=bounded(
            bounds.episode_number, e.get("itunes_episode"), "itunes:episode", range_notes
        ),
        url=link,
        guests=list(ns.guests) if ns else [],
        tags=list(tags),
        categories=list(categories),
        enclosure=enclosure,
        duration_seconds=bounded(
            parse_itunes_duration,
            e.get("itunes_duration"),
            "itunes:duration",
            range_notes,
            digits=False,
        ),
        description=text_excerpt(fix_text(description)),
        show_notes_html=clean_html(fix_text(notes), base),
        chapters=chapters,
        # psc:chapters inline win; else the pipeline fetches the podcast:chapters file
        chapters_url=None if chapters else web_url(chapters_url, doc_url, "chapters", refused),
        persons=persons,
        image=web_url(image, doc_url, "image", refused),
        transcript_url=transcript_url,
        transcript_type=(transcript[1] or None) if transcript else None,
        explicit=explicit if isinstance(explicit, bool) else None,
        episode_type=etype if etype in ("full", "trailer", "bonus") else "full",
    )


def parse_job(args: tuple[bytes, str, str, list[str], tzinfo]) -> ParsedFeed:
    """Process-pool entry point (top level so it pickles)."""
    body, url, content_type, categories, tz = args
    return parse_feed(body, url, content_type=content_type, categories=categories, tz=tz)

"""Remote RSS/Atom feed sources: poll many feeds politely, parse them safely, hand back episodes.

`poll_feeds()` fetches every requested feed through one shared HTTP client (see fetch.py), with
conditional GET, per-host and overall caps and a byte cap, and turns each into a `PollResult`:
"ok" with episodes, "not-modified" (a 304, nothing parsed), "gone" (410: the caller disables the
source) or "error" with one clear problem. The caller stores etag / last_modified / new_url and
decides on back-off; this module keeps no state.

Parsing is feedparser, but the bytes are checked first: a feed that declares XML entities
(billion laughs, external entities such as file:///etc/passwd) is refused before any parser sees
it. HTML is sanitized with nh3 rather than feedparser's own sanitizer and URI resolver, which
took half of the parse time.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import html
import io
import logging
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import nh3

from syndicator.retry_after import parse_retry_after
from syndicator.sources import bounds
from syndicator.sources.base import (
    Chapter,
    Enclosure,
    EpisodeData,
    Guest,
    PollResult,
    ProblemData,
)
from syndicator.sources.fetch import Fetcher, FetchOutcome, Resolver
from syndicator.sources.text import clean_episode
from syndicator.timeutil import as_utc, parse_iso

if TYPE_CHECKING:  # config pulls in pydantic; process-pool workers need not import it
    from syndicator.config import FeedSourceConfig, FetchConfig

try:  # the shared mojibake repair, when the text module provides it
    from syndicator.sources.text import fix_text as _fix_text  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on what else is in the tree
    from ftfy import fix_text as _fix_text

log = logging.getLogger(__name__)

ParseIn = Literal["auto", "loop", "thread", "process"]

ENTITY_REFUSAL = "feed declares XML entities; refused (XML bomb / external entity protection)"
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
AUTO_PROCESS_AFTER_BYTES = 8 * 1024 * 1024


# ---- public shapes ------------------------------------------------------------------------


@dataclass(frozen=True)
class PollRequest:
    """One feed to poll: its config, the URL to use (the stored one after a permanent redirect;
    default: source.url) and the validators stored from the last successful poll."""

    source: FeedSourceConfig
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def target(self) -> str:
        return self.url or self.source.url


@dataclass
class PollStats:
    """Where a poll's time went (for benchmarks and the status page)."""

    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    errors: int = 0
    gone: int = 0
    bytes: int = 0
    episodes: int = 0
    fetch_seconds: float = 0.0  # sum over feeds: time on the network once a slot was free
    parse_seconds: float = 0.0  # sum over feeds: wall time of parsing (in whichever worker)
    parse_cpu_seconds: float = 0.0  # the same in CPU time of the parsing thread
    wall_seconds: float = 0.0
    parse_mode: str = ""


@dataclass
class ParsedFeed:
    """What parse_feed() made of one body."""

    ok: bool
    episodes: list[EpisodeData] = field(default_factory=list)
    problems: list[ProblemData] = field(default_factory=list)
    error: str | None = None  # short, when not ok
    seconds: float = 0.0  # wall time of the parse
    cpu_seconds: float = 0.0  # CPU time of the parsing thread (contention-free cost)


# ---- safety ---------------------------------------------------------------------------------

_WS = re.compile(rb"[ \t\r\n]*")
_ENTITY_DECL = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def _ascii_view(body: bytes) -> bytes:
    """The body in an ASCII-compatible encoding, so markup can be searched as bytes."""
    head = body[:4]
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return body.decode(codec, errors="replace").encode("utf-8")
    for sig, codec in (
        (b"\x00\x00\x00<", "utf-32-be"),
        (b"<\x00\x00\x00", "utf-32-le"),
        (b"\x00<", "utf-16-be"),
        (b"<\x00", "utf-16-le"),
    ):
        if head.startswith(sig):
            return body.decode(codec, errors="replace").encode("utf-8")
    return body.removeprefix(codecs.BOM_UTF8)


def declares_entities(body: bytes) -> bool:
    """True when the document's DOCTYPE has an internal subset that declares entities.

    Walks the prolog (XML declaration, comments, processing instructions) to the DOCTYPE, and
    refuses if its internal subset declares an ENTITY. Conservative on purpose: once an internal
    subset opens, an ENTITY declaration anywhere after it counts (a quoted "]>" cannot hide one).
    """
    data = _ascii_view(body)
    pos, n = 0, len(data)
    while pos < n:
        pos = _WS.match(data, pos).end()  # type: ignore[union-attr]
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
            if end < 0:
                return False
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return False
            pos = end + 3
        elif data[pos : pos + 9].upper() == b"<!DOCTYPE":
            i = pos + 9
            while i < n:
                c = data[i : i + 1]
                if c in (b'"', b"'"):
                    j = data.find(c, i + 1)
                    if j < 0:
                        return False
                    i = j + 1
                elif c == b"[":
                    return _ENTITY_DECL.search(data, i) is not None
                elif c == b">":
                    break
                else:
                    i += 1
            pos = i + 1
        else:
            return False  # the root element (or garbage): the prolog is over
    return False


# ---- text helpers ---------------------------------------------------------------------------

_BLOCK = re.compile(
    r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|pre|hr|section|article|table)\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
# Apple's cap on an item's <description> and itunes:summary, in bytes of UTF-8: a feed's
# description is kept within it (the whole text is in the show notes).
DESCRIPTION_MAX_BYTES = 4000
_LAST_SPACE = re.compile(r"\s+\S*$")


def fix_text(text: str) -> str:
    """Mojibake repair; pure ASCII cannot be mojibake, so skip the (slow) repair for it."""
    if not text or text.isascii():
        return text
    return _fix_text(text)


def html_to_text(value: str) -> str:
    """HTML -> plain text: tags dropped (script/style with their content), entities decoded,
    whitespace collapsed, block boundaries kept as spaces."""
    if not value:
        return ""
    if "<" in value:
        value = _BLOCK.sub(lambda m: " " + m.group(0), value)
        value = nh3.clean(value, tags=set(), clean_content_tags={"script", "style"})
    value = html.unescape(value) if "&" in value else value
    return _SPACE.sub(" ", value).strip()


def text_excerpt(text: str, max_bytes: int = DESCRIPTION_MAX_BYTES) -> str:
    """`text` when it fits in `max_bytes` of UTF-8, else its start cut at a word boundary
    and ended with "…" (the whole within `max_bytes`)."""
    if len(text) * 4 <= max_bytes or len(text.encode("utf-8")) <= max_bytes:
        return text
    # "…" is 3 bytes; a character cut in half by the byte limit is dropped
    head = text.encode("utf-8")[: max_bytes - 3].decode("utf-8", "ignore")
    m = _LAST_SPACE.search(head)
    if m and m.start() >= len(head) // 2:  # one giant "word": cut it rather than lose most
        head = head[: m.start()]
    return head.rstrip(" \t\n,;:.-") + "…"


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
    parts = raw.split(":")
    if len(parts) > 3:
        return None
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    if any(x < 0 or x != x for x in nums):
        return None
    secs = 0.0
    for x in nums:
        secs = secs * 60 + x
    return bounds.duration_seconds(secs)


def parse_clock_ms(value: str) -> int | None:
    """Chapter start "HH:MM:SS.mmm", "MM:SS" or "SS.s" -> whole seconds; None if absurd."""
    try:
        return parse_itunes_duration(value)
    except bounds.OutOfRange:
        return None


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


def _abs(value: str | None, base: str) -> str | None:
    """An absolute URL for `value` (relative ones joined to `base`); None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return value
    return urljoin(base, value)


# (field, URL as written) of the URLs an item loses for not being http(s)
Refused = list[tuple[str, str]]


def _web_url(value: str | None, base: str, what: str, refused: Refused) -> str | None:
    """`value` made absolute (see _abs) when that gives an http(s) URL; a javascript:, data:,
    file: (or any other) URL is refused: noted in `refused` and never passed on."""
    url = _abs(value, base)
    if url is None or url[:8].lower().startswith(("http://", "https://")):
        return url
    refused.append((what, (value or "").strip()))
    return None


def _refused_problem(url: str, items: list[str]) -> ProblemData:
    """One problem for the feed (the store keeps one per URL and kind), naming each item."""
    shown = " ".join(items[:20]) + (f" ... and {len(items) - 20} more." if len(items) > 20 else "")
    return _problem(
        url,
        "unsafe-url",
        f"{len(items)} item(s) carry URLs that are not http(s), left out: {shown} Only http(s) "
        "URLs reach the published feed (a javascript:, data: or file: URL could run code or "
        "read files in listeners' apps); ask the feed's publisher to fix these items.",
        severity="warning",
    )


def _bounded(
    check: Callable[[str], int | None],
    value: Any,
    field: str,
    notes: list[str],
    *,
    digits: bool = True,
) -> int | None:
    """A number from an item through the shared bounds; an absurd one becomes a note.

    With `digits`, anything but a plain run of digits is no number and ignored, as before.
    """
    raw = str(value).strip() if value is not None else ""
    if not raw or (digits and not raw.isdigit()):
        return None
    try:
        return check(raw)
    except bounds.OutOfRange as exc:
        notes.append(f"{field}: {exc}")
        return None


# ---- podcast namespace pass -----------------------------------------------------------------


@dataclass
class _NsItem:
    guid: str | None
    link: str | None
    guests: list[Guest]
    transcripts: list[tuple[str, str]]  # (url, type)


_ITEM_TAGS = {"item", "{http://purl.org/rss/1.0/}item", "{http://www.w3.org/2005/Atom}entry"}


def _podcast_ns_items(body: bytes) -> tuple[list[_NsItem], str | None]:
    """podcast:person and podcast:transcript per item (feedparser keeps only the last of each).

    Runs defusedxml (no DTD entities, no external references) over the bytes. On XML that is
    not well-formed it returns the items complete before the error, and the error.
    """
    from defusedxml.ElementTree import iterparse

    items: list[_NsItem] = []
    try:
        for _event, elem in iterparse(io.BytesIO(body), events=("end",)):
            _ns_item(elem, items)
    except Exception as exc:  # ParseError, or defusedxml refusing something
        return items, str(exc) or type(exc).__name__
    return items, None


def _ns_item(elem: Any, items: list[_NsItem]) -> None:
    """Collect one item element's podcast-namespace children, then free it."""
    if elem.tag not in _ITEM_TAGS:
        return
    guid = link = None
    guests: list[Guest] = []
    transcripts: list[tuple[str, str]] = []
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
            elif local == "transcript" and child.get("url"):
                transcripts.append((child.get("url", "").strip(), child.get("type") or ""))
        elif local in ("guid", "id") and guid is None:
            guid = (child.text or "").strip() or None
        elif local == "link" and link is None:
            link = (child.text or child.get("href") or "").strip() or None
    items.append(_NsItem(guid, link, guests, transcripts))
    elem.clear()


def _pick_transcript(options: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    if not options:
        return None
    for want in _TRANSCRIPT_PREFERENCE:
        for url, kind in options:
            if kind.split(";")[0].strip().lower() == want:
                return url, kind
    return options[0]


# ---- parsing --------------------------------------------------------------------------------

_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html)", re.I | re.S)
_ALT_LINK = re.compile(
    r"<link\b[^>]*\btype=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.IGNORECASE
)
_HREF = re.compile(r"\bhref=[\"']([^\"']+)[\"']", re.IGNORECASE)


def _problem(url: str, kind: str, message: str, severity: str = "error") -> ProblemData:
    return ProblemData(location=url, kind=kind, message=message, severity=severity)


def _html_page_problem(url: str, body: bytes) -> ProblemData:
    hint = ""
    m = _ALT_LINK.search(body[:200_000].decode("utf-8", "replace"))
    if m:
        href = _HREF.search(m.group(0))
        if href:
            hint = f" The page links to a feed at {urljoin(url, html.unescape(href.group(1)))}."
    return _problem(
        url,
        "not-a-feed",
        "the URL returned an HTML page, not an RSS/Atom feed (probably the site's home page); "
        f"set the source's url to the feed itself.{hint}",
    )


def parse_feed(
    body: bytes,
    url: str,
    *,
    content_type: str = "",
    categories: Iterable[str] = (),
    tz: tzinfo = UTC,
) -> ParsedFeed:
    """Parse one feed body into episodes and problems. Never raises for bad input."""
    started, cpu = time.perf_counter(), time.thread_time()
    result = _parse_feed(body, url, content_type, list(categories), tz)
    result.episodes = [clean_episode(e) for e in result.episodes]
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.thread_time() - cpu
    return result


def _parse_feed(
    body: bytes, url: str, content_type: str, categories: list[str], tz: tzinfo
) -> ParsedFeed:
    if not body.strip():
        return ParsedFeed(
            ok=False,
            error="empty response",
            problems=[
                _problem(
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
                _problem(
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
        # A file object, never bytes: feedparser opens a bytes value that names a file.
        d = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,  # nh3 does it below, faster
            resolve_relative_uris=False,  # nh3 rewrites relative links in show notes
        )
    except Exception as exc:  # feedparser promises not to raise; contain it if it does
        return ParsedFeed(
            ok=False,
            error="parser crashed",
            problems=[
                _problem(
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
                    _problem(
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
                    _problem(
                        url,
                        "not-a-feed",
                        f"the document is XML but not RSS or Atom (content type "
                        f"{ctype or 'unknown'}); check the source's url.",
                    )
                ],
            )
        problems.append(
            _problem(
                url,
                "empty-feed",
                "the feed has no items; nothing to read (if it had episodes before, the "
                "publisher may have emptied it by mistake).",
                severity="warning",
            )
        )
        return ParsedFeed(ok=True, problems=problems)

    ns_items: list[_NsItem] | None = None
    if b"odcastindex" in body or b"podcast-namespace" in body:
        ns_items, ns_error = _podcast_ns_items(body)
        if ns_error and len(ns_items) < len(entries):  # some items really lost their guests
            problems.append(
                _problem(
                    url,
                    "xml",
                    f"podcast:person / podcast:transcript were read only up to an XML error "
                    f"({ns_error}); later items are kept without guests and transcripts.",
                    severity="warning",
                )
            )
    by_index = ns_items is not None and len(ns_items) == len(entries)
    by_key: dict[str, _NsItem] = {}
    if ns_items is not None and not by_index:
        for it in ns_items:
            for k in (it.guid, it.link):
                if k:
                    by_key.setdefault(k, it)

    feed_link = _abs((d.get("feed") or {}).get("link"), url) or url
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
            _problem(
                url,
                "xml",
                f"the feed has an XML problem ({d.get('bozo_exception')}) but {len(episodes)} "
                "episode(s) could still be read; ask the publisher to fix it.",
                severity="warning",
            ),
        )
    if no_key:
        shown = ", ".join(repr(t) for t in no_key[:3]) + (" ..." if len(no_key) > 3 else "")
        problems.append(
            _problem(
                url,
                "item",
                f"{len(no_key)} item(s) have no guid, link or enclosure URL and were skipped "
                f"({shown}): without one an item cannot be told apart from the others; ask the "
                "publisher to add a <guid>.",
                severity="warning",
            )
        )
    if range_notes:
        shown = "; ".join(range_notes[:3]) + (" ..." if len(range_notes) > 3 else "")
        problems.append(
            _problem(
                url,
                "range",
                f"{len(range_notes)} number(s) in the feed's items are out of range and were "
                f"dropped, the items kept without them ({shown}). Ask the publisher to fix them.",
                severity="warning",
            )
        )
    if many_tags:
        shown = "; ".join(many_tags[:3]) + (" ..." if len(many_tags) > 3 else "")
        problems.append(
            _problem(
                url,
                "too-many-tags",
                f"{len(many_tags)} item(s) have more than {bounds.MAX_TAGS} tags; only the "
                f"first {bounds.MAX_TAGS} of each are kept ({shown}).",
                severity="warning",
            )
        )
    if unsafe_items:
        problems.append(_refused_problem(url, unsafe_items))
    if dupes:
        problems.append(
            _problem(
                url,
                "item",
                f"{dupes} item(s) repeat the guid (or, lacking one, the link) of an earlier "
                "item; only the first was kept. Ask the publisher to give every item its own "
                "<guid>.",
                severity="warning",
            )
        )
    return ParsedFeed(ok=True, episodes=episodes, problems=problems)


def _invalid_xml(url: str, reason: object) -> ParsedFeed:
    return ParsedFeed(
        ok=False,
        error="invalid XML",
        problems=[
            _problem(
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
        if href and _web_url(href, base, "enclosure", refused):
            length = _bounded(bounds.enclosure_bytes, enc.get("length"), "enclosure length", notes)
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
        if not url or not _web_url(url, base, "media:content", refused):
            continue
        mtype = (mc.get("type") or "").split(";")[0].strip().lower()
        if not mtype:
            mtype = mimetypes.guess_type(urlsplit(url).path)[0] or ""
        kind = mtype.partition("/")[0] if "/" in mtype else (mc.get("medium") or "").lower()
        if kind not in ("audio", "video"):
            continue  # images, documents, players
        rank = (0 if kind == "audio" else 2) + (0 if mc.get("isdefault") == "true" else 1)
        if best is None or rank < best[0]:
            length = _bounded(
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
    ns: _NsItem | None,
    categories: list[str],
    doc_url: str,
    feed_link: str,
    tz: tzinfo,
    range_notes: list[str],
    refused: Refused,
) -> EpisodeData:
    # keys stay as written (identity must not depend on where the feed is served from);
    # the URLs shown are made absolute against the feed's own URL
    link = _web_url(link, doc_url, "link", refused)
    if enclosure is not None and not enclosure.url.startswith(("http://", "https://")):
        enclosure = Enclosure(_abs(enclosure.url, doc_url) or "", enclosure.length, enclosure.type)
    summary = e.get("summary") or ""
    content = e.get("content") or []
    notes = ""
    base = link or feed_link
    if ns is not None and ns.guests:
        for g in ns.guests:
            g.website = _web_url(g.website, doc_url, f"guest {g.name!r} website", refused)
            g.avatar = _web_url(g.avatar, doc_url, f"guest {g.name!r} img", refused)
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

    chapters: list[Chapter] = []
    for ch in (e.get("psc_chapters") or {}).get("chapters") or []:
        start = ch.get("start_parsed")
        secs = (
            int(start.total_seconds())
            if isinstance(start, timedelta)
            else parse_clock_ms(ch.get("start") or "")
        )
        if secs is not None:
            chapters.append(Chapter(start=secs, title=fix_text((ch.get("title") or "").strip())))

    options = list(ns.transcripts) if ns else []
    if ns is None:
        pt = e.get("podcast_transcript")  # feedparser's view, when the XML pass did not run
        if isinstance(pt, dict) and pt.get("url"):
            options = [(pt["url"], pt.get("type") or "")]
    transcript = _pick_transcript(
        [(u, kind) for raw, kind in options if (u := _web_url(raw, doc_url, "transcript", refused))]
    )
    transcript_url = transcript[0] if transcript else None

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
        number=_bounded(
            bounds.episode_number, e.get("itunes_episode"), "itunes:episode", range_notes
        ),
        url=link,
        guests=list(ns.guests) if ns else [],
        tags=list(tags),
        categories=list(categories),
        enclosure=enclosure,
        duration_seconds=_bounded(
            parse_itunes_duration,
            e.get("itunes_duration"),
            "itunes:duration",
            range_notes,
            digits=False,
        ),
        description=text_excerpt(fix_text(description)),
        show_notes_html=clean_html(fix_text(notes), base),
        chapters=chapters,
        image=_web_url(image, doc_url, "image", refused),
        transcript_url=transcript_url,
        transcript_type=(transcript[1] or None) if transcript else None,
        explicit=explicit if isinstance(explicit, bool) else None,
        episode_type=etype if etype in ("full", "trailer", "bonus") else "full",
    )


def _parse_job(args: tuple[bytes, str, str, list[str], tzinfo]) -> ParsedFeed:
    """Process-pool entry point (top level so it pickles)."""
    body, url, content_type, categories, tz = args
    return parse_feed(body, url, content_type=content_type, categories=categories, tz=tz)


# ---- polling --------------------------------------------------------------------------------


_SHORT_ERRORS = {
    "timeout": "timed out",
    "connect": "could not connect",
    "too-large": "feed larger than max_bytes",
    "redirect": "bad redirect",
    "url": "invalid URL",
    "network": "network error",
    "encoding": "unsupported Content-Encoding",
}


def _http_problem(status: int) -> tuple[str, str]:
    """(kind, message) for an HTTP status that carries no feed."""
    if status == 404:
        return "http", (
            "the feed was not found (HTTP 404). Check the source's url; if the feed moved, "
            "point the source at its new address."
        )
    if status in (401, 403):
        return "http", (
            f"access denied (HTTP {status}); the feed may be private or block bots. Check the "
            "URL (private feeds carry a token) or ask the publisher."
        )
    if status == 429:
        return "rate-limited", (
            "the server says we poll too often (HTTP 429); the next poll waits as asked. "
            "Consider a longer `every` for this source."
        )
    if status == 503:
        return "unavailable", (
            "the server is temporarily unavailable (HTTP 503); the next poll waits as asked."
        )
    if 500 <= status < 600:
        return "http", (
            f"the server failed (HTTP {status}); this is on the publisher's side. The next "
            "poll tries again; tell the publisher if it persists."
        )
    if status == 204:
        return "empty", "the server answered 204 No Content: there is no feed at this URL."
    return "http", (
        f"unexpected HTTP {status} instead of a feed; check the source's url. "
        "The next poll tries again."
    )


class _Poller:
    def __init__(
        self,
        fetcher: Fetcher,
        tz: tzinfo,
        progress: Callable[[PollResult], None] | None,
        parse_in: str,
        workers: int,
        stats: PollStats,
    ) -> None:
        self.fetcher = fetcher
        self.tz = tz
        self.progress = progress
        self.parse_in = parse_in  # loop | thread | process | auto
        self.workers = workers
        self.stats = stats
        self._thread: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._pool_failed = False
        self._bytes_seen = 0
        self._modes: set[str] = set()

    def _thread_executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            # one thread: parsing holds the GIL, more threads would only contend
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="feed-parse")
        return self._thread

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            # forkserver, not fork: forking a process that runs threads (the event loop, a
            # scheduler, a test server) can deadlock in the child. Like any spawn-style pool it
            # imports the main module in the workers, so scripts need `if __name__ == ...`.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["syndicator.sources.remote"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def _choose(self, size: int) -> str:
        self._bytes_seen += size
        mode = self.parse_in
        if mode == "auto":
            # A pool costs ~0.5-1 s to start: worth it only once this pass has shown a lot of
            # parsing to do. All-304 passes and a few changed feeds stay in the thread.
            big = self._bytes_seen > AUTO_PROCESS_AFTER_BYTES and (os.cpu_count() or 1) > 1
            mode = "process" if big else "thread"
        if mode == "process" and self._pool_failed:
            mode = "thread"
        self._modes.add(mode)
        return mode

    @property
    def modes(self) -> str:
        names = [m if m != "process" else f"process x{self.workers}" for m in sorted(self._modes)]
        return "+".join(names) or "none"

    def close(self) -> None:
        for ex in (self._thread, self._pool):
            if ex is not None:
                ex.shutdown(wait=True, cancel_futures=True)

    async def parse(self, job: tuple[bytes, str, str, list[str], tzinfo]) -> ParsedFeed:
        mode = self._choose(len(job[0]))
        if mode == "loop":
            return _parse_job(job)
        loop = asyncio.get_running_loop()
        if mode == "process":
            pool = self._process_pool()
            try:
                return await loop.run_in_executor(pool, _parse_job, job)
            except (BrokenProcessPool, RuntimeError, OSError):
                # a worker died (killed, out of memory) or could not start: every job in flight
                # fails with it. Finish the pass in the thread rather than fail the feeds.
                log.warning("feed parser processes failed; parsing in a thread instead")
                self._pool_failed = True
                if self._pool is pool:
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
                self._modes.add("thread")
        return await loop.run_in_executor(self._thread_executor(), _parse_job, job)

    async def poll(self, req: PollRequest) -> PollResult:
        src = req.source
        url = req.target
        got = await self.fetcher.get(
            url,
            timeout=src.timeout.total_seconds(),
            max_bytes=int(src.max_bytes),
            etag=req.etag,
            last_modified=req.last_modified,
            allow_private_redirects=src.allow_private_redirects,
        )
        try:
            result = await self._result(req, url, got)
        except Exception as exc:  # a bug here must cost one feed, not the whole pass
            log.exception("polling %s failed", url)
            result = PollResult(url=url, status="error", error="internal error")
            result.problems.append(
                _problem(
                    url,
                    "internal",
                    f"reading this feed failed inside syndicator ({type(exc).__name__}: {exc}); "
                    "please report it with the feed URL. Other feeds are not affected.",
                )
            )
        result.elapsed = got.elapsed + result.elapsed
        st = self.stats
        st.fetch_seconds += got.elapsed
        st.bytes += len(got.body)
        if result.status == "ok":
            st.ok += 1
            st.episodes += len(result.episodes)
        elif result.status == "not-modified":
            st.not_modified += 1
        elif result.status == "gone":
            st.gone += 1
        else:
            st.errors += 1
        if self.progress is not None:
            try:
                self.progress(result)
            except Exception:  # a progress display must not lose the poll's results
                log.exception("progress callback failed")
        return result

    async def _result(self, req: PollRequest, url: str, got: FetchOutcome) -> PollResult:
        # Problems are filed under the URL polled (what the caller resolves them by); where a
        # redirect led elsewhere, the message says so.
        res = PollResult(url=url, status="error", new_url=got.new_url, http_status=got.status)
        via = f" (redirected to {got.final_url})" if got.final_url != url else ""
        if got.error_kind:
            res.error = _SHORT_ERRORS.get(got.error_kind, got.error_kind)
            message = (got.error or got.error_kind) + via
            res.problems.append(_problem(url, got.error_kind, message))
            return res
        status = got.status or 0
        if status == 304:
            res.status = "not-modified"
            res.etag = got.headers.get("etag") or req.etag
            res.last_modified = got.headers.get("last-modified") or req.last_modified
            return res
        if status == 410:
            res.status = "gone"
            res.error = "HTTP 410 Gone: the publisher removed the feed"
            res.problems.append(
                _problem(
                    url,
                    "gone",
                    f"the server says this feed is gone for good (HTTP 410){via}; the source is "
                    "disabled. Remove it from the config, or set its url to the feed's new home.",
                )
            )
            return res
        if not 200 <= status < 300 or status == 204:
            kind, message = _http_problem(status)
            res.error = f"HTTP {status}"
            if status in (429, 503):
                res.retry_after = parse_retry_after(got.headers.get("retry-after"))
                if res.retry_after is not None:
                    message += f" Retry-After: {res.retry_after:.0f} s."
            res.problems.append(_problem(url, kind, message + via))
            return res
        job = (
            got.body,
            got.final_url,
            got.headers.get("content-type", ""),
            list(req.source.categories),
            self.tz,
        )
        parsed = await self.parse(job)
        self.stats.parse_seconds += parsed.seconds
        self.stats.parse_cpu_seconds += parsed.cpu_seconds
        res.elapsed = parsed.seconds
        for p in parsed.problems:
            p.location = url
            res.problems.append(p)
        if not parsed.ok:
            res.error = parsed.error
            return res  # no validators: the next poll must fetch this body again
        res.status = "ok"
        res.episodes = parsed.episodes
        res.etag = got.headers.get("etag")
        res.last_modified = got.headers.get("last-modified")
        return res


async def poll_feeds(
    requests: Sequence[PollRequest],
    fetch: FetchConfig,
    tz: tzinfo = UTC,
    progress: Callable[[PollResult], None] | None = None,
    *,
    parse_in: ParseIn = "auto",
    parse_workers: int | None = None,
    stats: PollStats | None = None,
    client: Any = None,
    resolver: Resolver | None = None,
) -> list[PollResult]:
    """Poll every request concurrently; return one PollResult per request, in order.

    `tz` is the zone for feed dates that carry none. `progress` is called (in the event loop)
    with each result as it completes. `parse_in` picks where bodies are parsed: "thread" (one
    worker thread, keeps the loop responsive), "process" (a forkserver pool of `parse_workers`
    processes, default min(cpus, 4)), "loop" (inline, blocks the loop) or "auto" (a thread,
    plus a process pool once the pass has received more than 8 MB of feeds on a multi-core
    machine). `stats`, when given, is filled in. `client` (an httpx.AsyncClient) replaces the
    internally created one (the caller then closes it). `resolver` replaces the DNS lookup
    used to tell private redirect targets (tests).
    """
    st = stats if stats is not None else PollStats()
    started = time.perf_counter()
    workers = max(1, parse_workers or min(os.cpu_count() or 1, 4))
    st.feeds += len(requests)
    async with Fetcher(
        user_agent=fetch.user_agent,
        max_per_host=fetch.max_per_host,
        max_connections=fetch.max_connections,
        client=client,
        allow_private_redirects=fetch.allow_private_redirects,
        resolver=resolver,
    ) as fetcher:
        poller = _Poller(fetcher, tz, progress, parse_in, workers, st)
        try:
            results = await asyncio.gather(*(poller.poll(r) for r in requests))
        finally:
            poller.close()
            st.parse_mode = poller.modes
    st.wall_seconds += time.perf_counter() - started
    return list(results)


def poll_feeds_sync(
    requests: Sequence[PollRequest],
    fetch: FetchConfig,
    tz: tzinfo = UTC,
    progress: Callable[[PollResult], None] | None = None,
    **kwargs: Any,
) -> list[PollResult]:
    """poll_feeds() for synchronous callers; safe to call from inside a running event loop
    (it then runs in a helper thread with its own loop)."""

    def run() -> list[PollResult]:
        return asyncio.run(poll_feeds(requests, fetch, tz, progress, **kwargs))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(1, thread_name_prefix="poll-feeds") as pool:
        return pool.submit(run).result()

"""Our own checks of a podcast feed against Apple's rules (and what other directories need).

`check_feed(xml)` returns readable problems (empty: the feed passes). Each says
what is wrong, where (channel, or item number and title) and what to do.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from urllib.parse import urlsplit

from lxml import etree

from syndicator import apple_categories as apple
from syndicator.directory.extensions import ATOM_NS, ITUNES_NS, PODCAST_NS
from syndicator.textutil import DESCRIPTION_MAX_BYTES

IT = f"{{{ITUNES_NS}}}"
PC = f"{{{PODCAST_NS}}}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_RFC2822 = re.compile(
    rf"^(?:({_DAY}), )?(\d{{1,2}}) ({_MON}) (\d{{4}}) (\d{{2}}):(\d{{2}})(?::(\d{{2}}))? "
    r"(?:[+-]\d{4}|GMT|UT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$"
)
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES.split(), 1)}
_DURATION = re.compile(r"^(?:\d+|(?:\d+:)?[0-5]?\d:[0-5]\d)$")
_IMAGE_EXT = (".jpg", ".jpeg", ".png")
_ENCLOSURE_TYPES = ("audio/", "video/")
_EPISODE_TYPES = {"full", "trailer", "bonus"}
# Marks the problems publish.py refuses to write a feed for (see unsafe_urls).
UNSAFE_URL = "unsafe URL"
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# What a browser ignores in a URL (WHATWG URL parsing): so does the scheme test
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_EDGE = "".join(map(chr, range(0x21)))
# Attributes that hold a URL, on any element (enclosure url, itunes:image href, podcast:person
# img, podcast:transcript url, podcast:chapters url, atom:link href, psc:chapter image...)
_URL_ATTRS = frozenset({"url", "href", "img", "image", "uri"})
# A podcast:socialInteract root post on a protocol that is not the web: the spec's own
# uri forms for AT Protocol (at://) and Nostr (nostr:); apps hand them to that protocol.
_INTERACT_SCHEMES = frozenset({"at", "nostr"})
# Elements whose text is a URL (<link>, <image><url>, <comments>; and itunes:new-feed-url)
_URL_TEXTS = frozenset({"link", "url", "comments"})


def rfc2822_problem(value: str | None) -> str | None:
    """None when `value` is an RFC 2822 date (e.g. "Tue, 02 Jan 2024 09:00:00 +0000")."""
    text = (value or "").strip()
    m = _RFC2822.match(text)
    if not m:
        return f"{text!r} is not an RFC 2822 date (e.g. 'Tue, 02 Jan 2024 09:00:00 +0000')"
    day, d, mon, y, hh, mm, ss = m.groups()
    try:
        dt = datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss or 0))
    except ValueError:
        return f"{text!r} is not a real date"
    if day and _DAYS[dt.weekday()] != day:
        return f"{text!r} names the wrong weekday (it was a {_DAYS[dt.weekday()]})"
    return None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _image_problem(href: str) -> str | None:
    if not href:
        return "has no href"
    if bad_scheme(href):
        return None  # an unsafe URL: told by unsafe_urls, with the others
    if not _is_http(href):
        return f"{href!r} is not an http(s) URL"
    if not urlsplit(href).path.lower().endswith(_IMAGE_EXT):
        return f"{href!r} is not a .jpg or .png file (Apple takes JPEG or PNG artwork)"
    return None


def _explicit_problem(value: str) -> str | None:
    if value not in ("true", "false"):
        return f"itunes:explicit is {value!r}; write true or false"
    return None


def _categories(channel: etree._Element) -> Iterator[str]:
    cats = channel.findall(f"{IT}category")
    if not cats:
        yield "channel: no itunes:category; Apple requires one (set podcast.categories)"
    for cat in cats:
        top = cat.get("text", "")
        if not apple.is_category(top):
            yield f"channel: itunes:category {top!r} is not on Apple's category list"
            continue
        for sub in cat.findall(f"{IT}category"):
            name = sub.get("text", "")
            if not apple.is_category(top, name):
                yield f"channel: {name!r} is not one of Apple's sub-categories of {top!r}"


def _channel(channel: etree._Element) -> Iterator[str]:
    for tag, what in (
        ("title", "title"),
        ("description", "description"),
        ("language", "language"),
        ("link", "link"),
    ):
        if not _text(channel.find(tag)):
            yield f"channel: <{tag}> is missing or empty; set the podcast's {what}"
    lang = _text(channel.find("language"))
    if lang and not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", lang):
        yield f"channel: language {lang!r} is not an ISO 639 code such as en or pt-BR"
    image = channel.find(f"{IT}image")
    if image is None:
        yield "channel: no itunes:image; Apple requires show artwork (set podcast.image)"
    else:
        problem = _image_problem(image.get("href", ""))
        if problem:
            yield f"channel: itunes:image {problem}"
    yield from _categories(channel)
    explicit = channel.find(f"{IT}explicit")
    if explicit is None:
        yield "channel: no itunes:explicit; Apple requires true or false"
    else:
        problem = _explicit_problem(_text(explicit))
        if problem:
            yield f"channel: {problem}"
    if not _text(channel.find(f"{IT}author")):
        yield "channel: no itunes:author; set podcast.author"
    if not _text(channel.find(f"{IT}owner/{IT}email")):
        yield (
            "channel: no itunes:owner email; Apple needs it to verify ownership "
            "(set podcast.owner_email)"
        )
    kind = _text(channel.find(f"{IT}type"))
    if kind and kind not in ("episodic", "serial"):
        yield f"channel: itunes:type {kind!r}; write episodic or serial"
    last = channel.find("lastBuildDate")
    if last is not None:
        problem = rfc2822_problem(last.text)
        if problem:
            yield f"channel: lastBuildDate {problem}"
    if not any(link.get("rel") == "self" for link in channel.findall(f"{{{ATOM_NS}}}link")):
        yield 'channel: no atom:link rel="self" (the feed\'s own URL)'
    guid = _text(channel.find(f"{PC}guid"))
    if guid:
        try:
            uuid.UUID(guid)
        except ValueError:
            yield f"channel: podcast:guid {guid!r} is not a UUID"
    yield from unsafe_urls("channel", _channel_nodes(channel))


def bad_scheme(url: str) -> str | None:
    """The scheme of `url` when it has one other than http(s) (javascript:, data:, file:...)."""
    if url.startswith(("https://", "http://")) or ":" not in url:
        return None  # nearly every URL: no regex
    m = _URL_SCHEME.match(_URL_IGNORED.sub("", url.strip(_URL_EDGE)))
    if m is None or m.group(1).lower() in ("http", "https"):
        return None
    return m.group(1).lower()


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


# Every URL-carrying attribute and URL text at or under an element, found by libxml2: a
# Python loop over every element costs twice as much. (Per element: one union over a whole
# document is quadratic in libxml2.)
_URL_VALUES = etree.XPath(
    " | ".join(
        [f"descendant-or-self::*/@{a}" for a in sorted(_URL_ATTRS)]
        + [f"descendant-or-self::{t}/text()" for t in sorted(_URL_TEXTS)]
        + ["descendant-or-self::itunes:new-feed-url/text()"]
    ),
    namespaces={"itunes": ITUNES_NS},
)


def unsafe_urls(where: str, nodes: Iterable[etree._Element]) -> Iterator[str]:
    """A problem for every URL at or under `nodes` (URL attributes, and the text of <link>,
    <url>...) whose scheme is not http(s): apps would open or load it, and a javascript:,
    data: or file: URL can run code or read files there."""
    for node in nodes:
        for value in _URL_VALUES(node):
            scheme = bad_scheme(value)
            if not scheme:
                continue
            parent = value.getparent()
            name = parent.tag.rpartition("}")[2] if isinstance(parent.tag, str) else "?"
            if (
                name == "socialInteract"
                and value.is_attribute
                and value.attrname == "uri"
                and scheme in _INTERACT_SCHEMES
            ):
                continue
            what = f"<{name}> {value.attrname}" if value.is_attribute else f"<{name}>"
            yield (
                f"{where}: {UNSAFE_URL}: {what} {_short(str(value).strip())!r} is a {scheme}: "
                "URL, not http(s); apps would open it. The feed is not written until it "
                "is gone (fix the source it came from, or the config)"
            )


def _channel_nodes(channel: etree._Element) -> Iterator[etree._Element]:
    """The channel's own elements, its items left out (they are checked one by one)."""
    for child in channel:
        if child.tag != "item":
            yield child


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://")) and len(url) > 8


def _item(
    i: int, item: etree._Element, guids: dict[str, int], urls: dict[str, int]
) -> Iterator[str]:
    # One pass over the children instead of a find() per tag: feeds have thousands of items.
    kids: dict[str, etree._Element] = {}
    for child in item:
        if isinstance(child.tag, str):
            kids.setdefault(child.tag, child)
    title = _text(kids.get("title"))
    where = f"item {i} ({title!r})" if title else f"item {i}"
    if not title:
        yield f"{where}: no <title>"
    guid = _text(kids.get("guid"))
    if not guid:
        yield f"{where}: no <guid>; apps use it to tell episodes apart"
    elif guid in guids:
        yield f"{where}: guid {guid!r} repeats item {guids[guid]}; every episode needs its own"
    else:
        guids[guid] = i
    enc = kids.get("enclosure")
    if enc is None:
        yield f"{where}: no <enclosure> (the audio file)"
    else:
        url = enc.get("url", "")
        if bad_scheme(url):
            pass  # told below, with every other unsafe URL
        elif not _is_http(url):
            yield f"{where}: enclosure url {url!r} is not an http(s) URL"
        elif url in urls:
            yield f"{where}: enclosure url {url!r} repeats item {urls[url]}"
        else:
            urls[url] = i
        length = enc.get("length")
        if length is None or not length.strip().isdigit():
            yield f"{where}: enclosure length {length!r} is not a whole number of bytes"
        etype = enc.get("type", "")
        if not (etype.startswith(_ENCLOSURE_TYPES) or etype == "application/pdf"):
            yield f"{where}: enclosure type {etype!r} is not an audio or video type"
    for tag, name in (("description", "<description>"), (f"{IT}summary", "itunes:summary")):
        el = kids.get(tag)
        size = len((el.text or "").encode("utf-8")) if el is not None else 0
        if size > DESCRIPTION_MAX_BYTES:
            yield (
                f"{where}: {name} is {size:,} bytes; Apple allows {DESCRIPTION_MAX_BYTES:,} "
                "at most (put the whole show notes in content:encoded)"
            )
    pub = kids.get("pubDate")
    if pub is None:
        yield f"{where}: no <pubDate>"
    else:
        problem = rfc2822_problem(pub.text)
        if problem:
            yield f"{where}: pubDate {problem}"
    dur = kids.get(f"{IT}duration")
    if dur is not None and not _DURATION.match(_text(dur)):
        yield f"{where}: itunes:duration {_text(dur)!r} is not seconds or HH:MM:SS"
    ep = kids.get(f"{IT}episode")
    if ep is not None and not re.fullmatch(r"[1-9]\d*", _text(ep)):
        yield f"{where}: itunes:episode {_text(ep)!r} is not a positive whole number"
    etype_el = kids.get(f"{IT}episodeType")
    if etype_el is not None and _text(etype_el) not in _EPISODE_TYPES:
        yield f"{where}: itunes:episodeType {_text(etype_el)!r}; write full, trailer or bonus"
    explicit = kids.get(f"{IT}explicit")
    if explicit is not None:
        problem = _explicit_problem(_text(explicit))
        if problem:
            yield f"{where}: {problem}"
    image = kids.get(f"{IT}image")
    if image is not None:
        problem = _image_problem(image.get("href", ""))
        if problem:
            yield f"{where}: itunes:image {problem}"
    chapters = kids.get(f"{PC}chapters")
    if chapters is not None and chapters.get("type") != "application/json+chapters":
        yield (
            f"{where}: podcast:chapters type {chapters.get('type')!r}; "
            "use application/json+chapters"
        )
    yield from unsafe_urls(where, (item,))


def check_tree(root: etree._Element) -> list[str]:
    """check_feed for a feed already parsed (or just built) as an lxml tree."""
    if root.tag != "rss":
        return [f"feed: the root element is <{root.tag}>, not <rss>"]
    head = []
    if root.get("version") != "2.0":
        head.append(f"feed: rss version is {root.get('version')!r}, not '2.0'")
    channel = root.find("channel")
    if channel is None:
        return [*head, "feed: no <channel>"]
    problems = [*head, *_channel(channel)]
    guids: dict[str, int] = {}
    urls: dict[str, int] = {}
    for n, item in enumerate(channel.iterfind("item"), 1):
        problems += _item(n, item, guids, urls)
    return problems


def check_feed(xml: bytes) -> list[str]:
    """Every problem found in a podcast RSS feed (empty list: it passes).

    Items are checked as they are parsed and then dropped, so a feed of thousands of
    items is checked without holding its whole tree.
    """
    head: list[str] = []  # about the document itself
    problems: list[str] = []  # about items, in order
    guids: dict[str, int] = {}
    urls: dict[str, int] = {}
    root: etree._Element | None = None
    channel: etree._Element | None = None
    n = 0
    events = etree.iterparse(
        io.BytesIO(xml),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
    )
    try:
        for event, el in events:
            if root is None:
                root = el
                if el.tag != "rss":
                    return [f"feed: the root element is <{el.tag}>, not <rss>"]
                if el.get("version") != "2.0":
                    head.append(f"feed: rss version is {el.get('version')!r}, not '2.0'")
                continue
            if event == "start":
                if el.tag == "channel" and channel is None and el.getparent() is root:
                    channel = el
                continue
            if el.tag == "item" and channel is not None and el.getparent() is channel:
                n += 1
                problems += _item(n, el, guids, urls)
                el.clear()
                # drop the finished item from the tree (keeps memory flat)
                channel.remove(el)
    except etree.XMLSyntaxError as exc:
        return [f"feed: not well-formed XML: {exc}"]
    if channel is None:
        return [*head, "feed: no <channel>"]
    return [*head, *_channel(channel), *problems]

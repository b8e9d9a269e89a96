"""feedgen extensions for the tags feedgen cannot write.

feedgen's own podcast extension writes `itunes:explicit` as yes/no/clean (Apple
wants true/false) and knows nothing of the Podcasting 2.0 namespace, Podlove
Simple Chapters or a WebSub hub link, so we write those ourselves.

Register them with `register(fg)`; afterwards every feed has `fg.itunes`,
`fg.podcast` and `fg.hub`, and every entry `fe.itunes`, `fe.podcast` and `fe.psc`.
rss.py calls the entry classes directly on its own <item> elements (faster than
feedgen's FeedEntry for thousands of items); they work either way.
Values are plain attributes (set them, then call `fg.rss_str()`); a value left
at None writes no tag. Elements are added in a fixed order so the output is
byte-stable for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
PSC_NS = "http://podlove.org/simple-chapters"
ATOM_NS = "http://www.w3.org/2005/Atom"

_SubElement = etree.SubElement


def _it(name: str) -> str:
    return f"{{{ITUNES_NS}}}{name}"


def _pc(name: str) -> str:
    return f"{{{PODCAST_NS}}}{name}"


@dataclass
class Person:
    """A `podcast:person` (role host or guest)."""

    name: str
    role: str = "host"
    group: str = "cast"
    href: str | None = None
    img: str | None = None


@dataclass
class Transcript:
    url: str
    type: str
    rel: str | None = None  # "captions" for timed captions (VTT, SRT)
    language: str | None = None


@dataclass(frozen=True)
class RemoteItem:
    """A `podcast:remoteItem` in a `podcast:podroll`: another show's feed."""

    feed_guid: str
    feed_url: str | None = None
    title: str | None = None  # not written (the spec has no title); for the OPML beside it


@dataclass(frozen=True)
class SocialInteract:
    """A `podcast:socialInteract`: the root post of an episode's comments (an announcement),
    or protocol "disabled" with nothing else."""

    protocol: str
    uri: str = ""
    account_id: str | None = None
    account_url: str | None = None
    priority: int | None = None


def _social(parent: etree._Element, s: SocialInteract) -> None:
    if s.protocol == "disabled":  # the spec: no other attribute with "disabled"
        _SubElement(parent, _pc("socialInteract"), protocol="disabled")
        return
    _SubElement(
        parent,
        _pc("socialInteract"),
        _attrs(
            priority=s.priority,
            protocol=s.protocol,
            uri=s.uri,
            accountId=s.account_id,
            accountUrl=s.account_url,
        ),
    )


def _attrs(**kwargs: Any) -> dict[str, str]:
    return {k: str(v) for k, v in kwargs.items() if v not in (None, "")}


def _person(parent: etree._Element, p: Person) -> None:
    el = _SubElement(parent, _pc("person"), _attrs(role=p.role, group=p.group))
    if p.img:
        el.set("img", p.img)
    if p.href:
        el.set("href", p.href)
    el.text = p.name


# --- iTunes -------------------------------------------------------------------


class ItunesExtension(BaseExtension):
    """Channel-level itunes:* tags."""

    def __init__(self) -> None:
        self.image: str | None = None
        # [(category, sub-categories)] in order; Apple reads the first one
        self.categories: list[tuple[str, list[str]]] = []
        self.explicit: bool | None = None
        self.author: str | None = None
        self.owner_name: str | None = None
        self.owner_email: str | None = None
        self.type: str | None = None  # episodic | serial
        self.block: bool | None = None
        self.complete: bool | None = None
        self.new_feed_url: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"itunes": ITUNES_NS}

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        if self.image:
            _SubElement(channel, _it("image"), href=self.image)
        for top, subs in self.categories:
            cat = _SubElement(channel, _it("category"), text=top)
            for sub in subs:
                _SubElement(cat, _it("category"), text=sub)
        if self.explicit is not None:
            _SubElement(channel, _it("explicit")).text = "true" if self.explicit else "false"
        if self.author:
            _SubElement(channel, _it("author")).text = self.author
        if self.owner_name or self.owner_email:
            owner = _SubElement(channel, _it("owner"))
            if self.owner_name:
                _SubElement(owner, _it("name")).text = self.owner_name
            if self.owner_email:
                _SubElement(owner, _it("email")).text = self.owner_email
        if self.type:
            _SubElement(channel, _it("type")).text = self.type
        if self.block:
            _SubElement(channel, _it("block")).text = "Yes"
        if self.complete:
            _SubElement(channel, _it("complete")).text = "Yes"
        if self.new_feed_url:
            _SubElement(channel, _it("new-feed-url")).text = self.new_feed_url
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed


class ItunesEntryExtension(BaseEntryExtension):
    """Item-level itunes:* tags."""

    def __init__(self) -> None:
        self.duration: int | None = None  # seconds
        self.episode: int | None = None
        self.season: int | None = None
        self.episode_type: str | None = None  # full | trailer | bonus
        self.image: str | None = None
        self.explicit: bool | None = None
        self.summary: str | None = None  # plain text, at most 4,000 bytes (Apple)
        self.author: str | None = None  # a network feed: the item's own show

    def extend_ns(self) -> dict[str, str]:
        return {"itunes": ITUNES_NS}

    def extend_rss(self, item: etree._Element) -> etree._Element:
        if self.summary:
            _SubElement(item, _it("summary")).text = self.summary
        if self.author:
            _SubElement(item, _it("author")).text = self.author
        if self.duration is not None:
            _SubElement(item, _it("duration")).text = str(int(self.duration))
        if self.episode is not None:
            _SubElement(item, _it("episode")).text = str(int(self.episode))
        if self.season is not None:
            _SubElement(item, _it("season")).text = str(int(self.season))
        if self.episode_type:
            _SubElement(item, _it("episodeType")).text = self.episode_type
        if self.image:
            _SubElement(item, _it("image"), href=self.image)
        if self.explicit is not None:
            _SubElement(item, _it("explicit")).text = "true" if self.explicit else "false"
        return item

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        return entry


# --- Podcasting 2.0 (podcast:*) -----------------------------------------------


class PodcastNsExtension(BaseExtension):
    """Channel-level podcast:* tags (https://podcastindex.org/namespace/1.0)."""

    def __init__(self) -> None:
        self.guid: str | None = None
        self.locked: bool | None = None
        self.locked_owner: str | None = None
        self.persons: list[Person] = []
        self.funding: list[tuple[str, str]] = []  # (url, text)
        self.medium: str | None = None  # podcast:medium (podcast, music, video...)
        self.podping: bool = False  # <podcast:podping usesPodping="true"/>
        self.social_disabled: bool = False  # <podcast:socialInteract protocol="disabled"/>
        self.podroll: list[RemoteItem] = []  # a network feed's shows (podcast:podroll)

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        if self.guid:
            _SubElement(channel, _pc("guid")).text = self.guid
        if self.medium:
            _SubElement(channel, _pc("medium")).text = self.medium
        if self.podping:
            _SubElement(channel, _pc("podping"), usesPodping="true")
        if self.social_disabled:
            _social(channel, SocialInteract("disabled"))
        if self.locked is not None:
            el = _SubElement(channel, _pc("locked"), _attrs(owner=self.locked_owner))
            el.text = "yes" if self.locked else "no"
        for p in self.persons:
            _person(channel, p)
        for url, text in self.funding:
            _SubElement(channel, _pc("funding"), url=url).text = text
        if self.podroll:
            roll = _SubElement(channel, _pc("podroll"))
            for r in self.podroll:
                _SubElement(
                    roll, _pc("remoteItem"), _attrs(feedGuid=r.feed_guid, feedUrl=r.feed_url)
                )
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        return feed


class PodcastNsEntryExtension(BaseEntryExtension):
    """Item-level podcast:* tags."""

    def __init__(self) -> None:
        self.persons: list[Person] = []
        self.chapters_url: str | None = None
        self.chapters_type: str = "application/json+chapters"
        self.transcripts: list[Transcript] = []
        self.social: list[SocialInteract] = []  # the announcements, by priority

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}

    def extend_rss(self, item: etree._Element) -> etree._Element:
        for p in self.persons:
            _person(item, p)
        if self.chapters_url:
            _SubElement(item, _pc("chapters"), url=self.chapters_url, type=self.chapters_type)
        for t in self.transcripts:
            _SubElement(
                item,
                _pc("transcript"),
                _attrs(url=t.url, type=t.type, language=t.language, rel=t.rel),
            )
        for s in self.social:
            _social(item, s)
        return item

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        return entry


# --- Podlove Simple Chapters (psc:*) -------------------------------------------


class PscExtension(BaseExtension):
    """Only declares the namespace on the root; the chapters live in items."""

    def extend_ns(self) -> dict[str, str]:
        return {"psc": PSC_NS}


class PscEntryExtension(BaseEntryExtension):
    """`psc:chapters` version 1.2 (gPodder and Podlove clients read only these)."""

    def __init__(self) -> None:
        self.chapters: list[tuple[str, str]] = []  # (start "HH:MM:SS.mmm", title)

    def extend_ns(self) -> dict[str, str]:
        return {"psc": PSC_NS}

    def extend_rss(self, item: etree._Element) -> etree._Element:
        if self.chapters:
            box = _SubElement(item, f"{{{PSC_NS}}}chapters", version="1.2")
            for start, title in self.chapters:
                _SubElement(box, f"{{{PSC_NS}}}chapter", start=start, title=title)
        return item

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        return entry


# --- WebSub hub links ------------------------------------------------------------


class HubExtension(BaseExtension):
    """`atom:link rel="hub"` for each WebSub hub (feedgen writes only the self link in RSS)."""

    def __init__(self) -> None:
        self.hubs: list[str] = []

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NS}

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        # Right after the self link, where readers look for it.
        selfs = channel.findall(f"{{{ATOM_NS}}}link")
        anchor = channel.index(selfs[-1]) + 1 if selfs else len(channel)
        for i, hub in enumerate(self.hubs):
            el = etree.Element(f"{{{ATOM_NS}}}link", rel="hub", href=hub)
            channel.insert(anchor + i, el)
        return feed


class HubEntryExtension(BaseEntryExtension):
    """Entries carry nothing for the hub; feedgen wants an entry class all the same."""


EXTENSIONS: tuple[tuple[str, type[BaseExtension], type[BaseEntryExtension]], ...] = (
    ("itunes", ItunesExtension, ItunesEntryExtension),
    ("podcast", PodcastNsExtension, PodcastNsEntryExtension),
    ("psc", PscExtension, PscEntryExtension),
    ("hub", HubExtension, HubEntryExtension),
)


def register(fg: FeedGenerator) -> FeedGenerator:
    """Load our extensions into `fg` (before adding entries)."""
    for name, feed_cls, entry_cls in EXTENSIONS:
        fg.register_extension(name, feed_cls, entry_cls, atom=False, rss=True)
    return fg

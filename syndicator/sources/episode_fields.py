"""The episode's fields, declared once; every shape of an episode is made from them.

    sources.base.EpisodeData       what a source read: `source_fields()`
    store.models.Episode           the stored row: its declared columns are `IDENTITY` +
                                   `CONTENT` (the store adds only how each is kept)
    directory.rss.FeedEpisode      what a feed shows: `FEED_FIELDS`
    store.ingest                   copies `stored_values(data)` onto the row

Add a field here (and its migration) and every shape follows; tests/test_layout.py
checks that each shape is derived, not written out again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syndicator.sources.values import Chapter, Enclosure, Guest, Person

# `default` of a field with no default (a source must give it; the store requires it)
REQUIRED: Any = dataclasses.MISSING


class _Same:
    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()  # `given`: a source gives the field as it is stored


@dataclass(frozen=True)
class EpisodeField:
    name: str  # the Episode column, and the EpisodeData field unless `given` is None
    type: Any  # the Python type it is stored as
    # the value when nothing is given (a list: a fresh empty list each time)
    default: Any = None
    feed: bool = True  # shown in a published feed
    # What a source gives under this name: SAME (the stored type), another type (then
    # `read` turns it into the stored value), or None (not given: a store-only field,
    # or one `read` takes from another attribute).
    given: Any = SAME
    # How the stored value is read from what a source gave; None: the same-named field.
    read: Callable[[Any], Any] | None = None
    # A source must give it even though the store has a default (title, date).
    required: bool = False


def _enclosure(part: str) -> Callable[[Any], Any]:
    return lambda d: getattr(d.enclosure, part) if d.enclosure else None


def _as_dicts(attr: str) -> Callable[[Any], Any]:
    return lambda d: [x.to_dict() for x in getattr(d, attr)]


_Dicts = list[dict[str, Any]]  # stored as a JSON array of objects

# What a source says about an episode, copied to the store on every change.
CONTENT: tuple[EpisodeField, ...] = (
    EpisodeField("number", int | None),
    EpisodeField("slug", str | None, feed=False),
    EpisodeField("title", str, "", required=True),
    EpisodeField("date", datetime | None, required=True),  # aware UTC
    EpisodeField("url", str | None),
    EpisodeField("guests", _Dicts, [], given=list[Guest], read=_as_dicts("guests")),
    EpisodeField("tags", list[str], []),
    EpisodeField("categories", list[str], [], feed=False),
    EpisodeField("enclosure_url", str | None, given=None, read=_enclosure("url")),
    EpisodeField("enclosure_length", int | None, given=None, read=_enclosure("length")),
    EpisodeField("enclosure_type", str | None, given=None, read=_enclosure("type")),
    EpisodeField("duration_seconds", int | None),
    EpisodeField("description", str, ""),
    EpisodeField("show_notes_html", str, ""),
    EpisodeField("chapters", _Dicts, [], given=list[Chapter], read=_as_dicts("chapters")),
    EpisodeField("image", str | None),
    EpisodeField("transcript_url", str | None),
    EpisodeField("transcript_type", str | None),
    EpisodeField("explicit", bool | None),
    EpisodeField("episode_type", str, "full"),
    EpisodeField("persons", _Dicts, [], given=list[Person], read=_as_dicts("persons")),
    EpisodeField("withdrawn", bool, False, feed=False),
    EpisodeField("withdrawn_reason", str | None, feed=False),
    EpisodeField("image_alt", str | None, feed=False),
)

# What the store adds: who the episode is (fixed at first sight), not what it says. A
# source offers a guid, only a candidate: the store keeps the one it assigned first.
IDENTITY: tuple[EpisodeField, ...] = (
    EpisodeField("id", int | None, given=None),
    EpisodeField("guid", str, REQUIRED),
    EpisodeField("source", str, REQUIRED, given=None),
)

# What a source gives that is not a column as such: its identity hint (feeds: guid, else
# link, else enclosure URL; stored as item_key), its file (stored as path by ingest), the
# enclosure (three columns above) and the raw file's hash (the Jekyll stat cache).
SOURCE_ONLY: tuple[EpisodeField, ...] = (
    EpisodeField("key", str | None),
    EpisodeField("path", str | None),  # relative to the source root
    EpisodeField("enclosure", Enclosure | None),
    EpisodeField("file_hash", str | None),
    # remote feeds: the item's podcast:chapters URL (the pipeline fetches it into
    # `chapters` when the item has no psc:chapters)
    EpisodeField("chapters_url", str | None),
)

# The store's declared columns, in order.
STORED: tuple[EpisodeField, ...] = (*IDENTITY, *CONTENT)

# The columns a feed reads, in FeedEpisode's order.
FEED_FIELDS: tuple[EpisodeField, ...] = (*IDENTITY, *(f for f in CONTENT if f.feed))


def dataclass_field(f: EpisodeField, *, as_given: bool = False) -> tuple[str, Any, Any]:
    """(name, type, dataclasses.field) for make_dataclass: the stored shape, or with
    `as_given` the shape a source gives it in."""
    type_ = f.type if not as_given or f.given is SAME else f.given
    if f.required or f.default is REQUIRED:
        return f.name, type_, dataclasses.field()
    if isinstance(f.default, list):
        return f.name, type_, dataclasses.field(default_factory=list)
    return f.name, type_, dataclasses.field(default=f.default)


def source_fields() -> list[tuple[str, Any, Any]]:
    """EpisodeData's fields (make them keyword-only: required ones come in any order)."""
    given = [f for f in (*IDENTITY, *CONTENT, *SOURCE_ONLY) if f.given is not None]
    return [dataclass_field(f, as_given=True) for f in given]


def stored_values(data: Any) -> dict[str, Any]:
    """Each content column's value for what a source read (an EpisodeData)."""
    out: dict[str, Any] = {}
    for f in CONTENT:
        value = f.read(data) if f.read else getattr(data, f.name)
        out[f.name] = list(value) if isinstance(value, list) else value  # never shared
    return out

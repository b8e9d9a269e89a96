"""The episode's fields, declared once.

A source reads these (EpisodeData), the store keeps them (models.Episode, written by
ingest from `stored_values`), and the feed builders show some of them
(directory.publish.FeedEpisode is made from FEED_FIELDS; rss.EpisodeLike is checked
against it by tests/test_layout.py). Add a field here, to EpisodeData and as an
Episode column (with its migration), and every other shape follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syndicator.sources.base import EpisodeData


@dataclass(frozen=True)
class EpisodeField:
    name: str  # the Episode column (and, unless `read` says otherwise, the EpisodeData field)
    type: Any  # the Python type it is stored as
    feed: bool = True  # shown in a published feed
    # How the stored value is read from what a source gave; None: the same-named field.
    read: Callable[[EpisodeData], Any] | None = None


def _enclosure(part: str) -> Callable[[EpisodeData], Any]:
    return lambda d: getattr(d.enclosure, part) if d.enclosure else None


def _as_dicts(attr: str) -> Callable[[EpisodeData], Any]:
    return lambda d: [x.to_dict() for x in getattr(d, attr)]


# What a source says about an episode, copied to the store on every change.
CONTENT: tuple[EpisodeField, ...] = (
    EpisodeField("number", int | None),
    EpisodeField("slug", str | None, feed=False),
    EpisodeField("title", str),
    EpisodeField("date", datetime | None),
    EpisodeField("url", str | None),
    EpisodeField("guests", list[dict[str, Any]], read=_as_dicts("guests")),
    EpisodeField("tags", list[str], read=lambda d: list(d.tags)),
    EpisodeField("categories", list[str], feed=False, read=lambda d: list(d.categories)),
    EpisodeField("enclosure_url", str | None, read=_enclosure("url")),
    EpisodeField("enclosure_length", int | None, read=_enclosure("length")),
    EpisodeField("enclosure_type", str | None, read=_enclosure("type")),
    EpisodeField("duration_seconds", int | None),
    EpisodeField("description", str),
    EpisodeField("show_notes_html", str),
    EpisodeField("chapters", list[dict[str, Any]], read=_as_dicts("chapters")),
    EpisodeField("image", str | None),
    EpisodeField("transcript_url", str | None),
    EpisodeField("transcript_type", str | None),
    EpisodeField("explicit", bool | None),
    EpisodeField("episode_type", str),
    EpisodeField("withdrawn", bool, feed=False),
    EpisodeField("withdrawn_reason", str | None, feed=False),
    EpisodeField("image_alt", str | None, feed=False),
)

# What the store adds: who the episode is (fixed at first sight), not what it says.
IDENTITY: tuple[EpisodeField, ...] = (
    EpisodeField("id", int | None),
    EpisodeField("guid", str),
    EpisodeField("source", str),
)

# The columns a feed reads, in FeedEpisode's order.
FEED_FIELDS: tuple[EpisodeField, ...] = (*IDENTITY, *(f for f in CONTENT if f.feed))


def stored_values(data: EpisodeData) -> dict[str, Any]:
    """Each content column's value for what a source read."""
    return {f.name: (f.read(data) if f.read else getattr(data, f.name)) for f in CONTENT}

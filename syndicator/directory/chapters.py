"""Chapters in the two shapes directories read.

- JSON chapters (Podcasting 2.0, format 1.2), a file beside the feed that
  `podcast:chapters` points to: {"version": "1.2.0", "chapters": [{"startTime": 105,
  "title": "..."}]}, served as application/json+chapters.
- Podlove Simple Chapters inline in the item (`psc:chapters` version 1.2), start
  times as "HH:MM:SS.mmm".

Stored chapters are dicts {"start": seconds, "title": str} (sources.base.Chapter).

A chapters file is named after its episode and its content,
`<episode id>-<hash of the bytes>.json`: a changed file gets a new URL (so the feed
changes with it and no cache serves old chapters), and a file that exists never needs
to be read or compared again, which matters at thousands of episodes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CHAPTERS_TYPE = "application/json+chapters"
CHAPTERS_VERSION = "1.2.0"
CHAPTERS_DIR = "chapters"
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def normalize(chapters: Iterable[Mapping[str, Any]]) -> list[tuple[float, str]]:
    """(start seconds, title), strictly increasing as written (to the millisecond, as psc:
    writes it); entries without a usable start or title are dropped, and so is a later
    chapter at the same start (players can't show both; the episode keeps it)."""
    marks: list[tuple[float, int, str]] = []
    for i, ch in enumerate(chapters):
        start = ch.get("start", ch.get("startTime"))
        title = _XML_BAD.sub("", str(ch.get("title") or "")).strip()
        try:
            secs = float(start)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not math.isfinite(secs) or secs < 0 or not title:
            continue
        marks.append((round(secs, 3), i, title))
    out: list[tuple[float, str]] = []
    for secs, _, title in sorted(marks):
        if not out or secs > out[-1][0]:
            out.append((secs, title))
    return out


def _num(secs: float) -> int | float:
    return int(secs) if float(secs).is_integer() else round(secs, 3)


def chapters_document(chapters: Iterable[Mapping[str, Any]], *, title: str | None = None) -> dict:
    """The JSON chapters document (format 1.2)."""
    doc: dict[str, Any] = {"version": CHAPTERS_VERSION}
    if title:
        doc["title"] = title
    doc["chapters"] = [{"startTime": _num(s), "title": t} for s, t in normalize(chapters)]
    return doc


def psc_start(seconds: float) -> str:
    """Normal play time as Podlove writes it: "HH:MM:SS.mmm"."""
    ms_total = round(float(seconds) * 1000)
    h, rest = divmod(ms_total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def psc_chapters(chapters: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(psc_start(s), t) for s, t in normalize(chapters)]


def file_stem(episode_id: int | None, guid: str) -> str:
    """The episode part of a chapters file's name: its store id (stable across renames and
    edits, unique across sources); a hash of the guid for an episode that has no id."""
    if episode_id is not None:
        return str(episode_id)
    return hashlib.sha256(guid.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ChapterFile:
    name: str  # "<stem>-<content hash>.json"
    data: bytes  # the JSON chapters document
    psc: list[tuple[str, str]]  # (start "HH:MM:SS.mmm", title) for psc:chapters

    @property
    def stem(self) -> str:
        return self.name.rsplit("-", 1)[0]


def chapter_file(
    episode_id: int | None,
    guid: str,
    chapters: Iterable[Mapping[str, Any]],
    *,
    title: str | None = None,
) -> ChapterFile | None:
    """The chapters of one episode in both shapes; None when it has no usable chapters."""
    marks = normalize(chapters)
    if not marks:
        return None
    doc: dict[str, Any] = {"version": CHAPTERS_VERSION}
    if title:
        doc["title"] = title
    doc["chapters"] = [{"startTime": _num(s), "title": t} for s, t in marks]
    data = (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()[:12]
    name = f"{file_stem(episode_id, guid)}-{digest}.json"
    return ChapterFile(name, data, [(psc_start(s), t) for s, t in marks])

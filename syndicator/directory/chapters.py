"""Chapters in the two shapes directories read.

- JSON chapters (Podcasting 2.0, format 1.2), a file beside the feed that
  `podcast:chapters` points to: {"version": "1.2.0", "chapters": [{"startTime": 105,
  "title": "..."}]}, served as application/json+chapters.
- Podlove Simple Chapters inline in the item (`psc:chapters` version 1.2), start
  times as "HH:MM:SS.mmm".

Stored chapters are dicts {"start": seconds, "title": str} (sources.base.Chapter).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

CHAPTERS_TYPE = "application/json+chapters"
CHAPTERS_VERSION = "1.2.0"
CHAPTERS_DIR = "chapters"


def normalize(chapters: Iterable[Mapping[str, Any]]) -> list[tuple[float, str]]:
    """(start seconds, title) sorted by start; entries without a usable start or title are
    dropped, and so is a second chapter at the same start (players can't show both)."""
    out: dict[float, str] = {}
    for ch in chapters:
        start = ch.get("start", ch.get("startTime"))
        title = str(ch.get("title") or "").strip()
        try:
            secs = float(start)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if secs < 0 or not title:
            continue
        out.setdefault(secs, title)
    return sorted(out.items())


def _num(secs: float) -> int | float:
    return int(secs) if float(secs).is_integer() else round(secs, 3)


def chapters_document(chapters: Iterable[Mapping[str, Any]], *, title: str | None = None) -> dict:
    """The JSON chapters document (format 1.2)."""
    doc: dict[str, Any] = {"version": CHAPTERS_VERSION}
    if title:
        doc["title"] = title
    doc["chapters"] = [{"startTime": _num(s), "title": t} for s, t in normalize(chapters)]
    return doc


def chapters_json(
    chapters: Iterable[Mapping[str, Any]], *, title: str | None = None
) -> bytes | None:
    """The file's bytes (None: no usable chapters). Stable for the same chapters, so an
    unchanged file is not rewritten; compact, since there can be thousands."""
    doc = chapters_document(chapters, title=title)
    if not doc["chapters"]:
        return None
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def psc_start(seconds: float) -> str:
    """Normal play time as Podlove writes it: "HH:MM:SS.mmm"."""
    ms_total = round(float(seconds) * 1000)
    h, rest = divmod(ms_total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def psc_chapters(chapters: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(psc_start(s), t) for s, t in normalize(chapters)]


def chapter_file_name(episode_id: int | None, guid: str) -> str:
    """File name of an episode's chapters: its store id (stable across renames and edits,
    unique across sources); a hash of the guid for an episode that has no id."""
    if episode_id is not None:
        return f"{episode_id}.json"
    return hashlib.sha256(guid.encode()).hexdigest()[:16] + ".json"

"""Reply threads: what follows an announcement as replies to it (`thread`, `thread_template`).

The thread template (the shipped `thread.j2`, a user's `thread_<type>.j2` / `thread.j2`, or
the channel's own `thread_template`) renders one text; `pack` splits it into replies that
each fit the channel's limit, counted by the kind's own rule. Each reply becomes its own
outbox row (outbox.plan_row), sent only after the one before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from syndicator.announce import fit
from syndicator.config import ChannelConfig, Settings

# A line with only this in the template's output starts a new reply.
BREAK = "---"
# At most this many replies follow one announcement (docs/operations.md, Limits).
MAX_PARTS = 25


class RendersText(Protocol):
    def render_text(
        self, episode: Any, channel: ChannelConfig, *, kind: str, extra: dict[str, Any]
    ) -> str: ...


def wanted(ch: ChannelConfig) -> bool:
    return bool(ch.thread or ch.thread_template)


def clock(seconds: int) -> str:
    """0:00, 12:05, 1:02:03: how podcast apps show a chapter's start."""
    h, rest = divmod(max(int(seconds), 0), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def time_link(url: str, seconds: int) -> str:
    """The episode page at a moment: `?t=<seconds>` (or `&t=` when it has a query)."""
    if not url:
        return ""
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}t={max(int(seconds), 0)}" + (f"#{fragment}" if fragment else "")


def chapters(episode: Any, links: bool) -> list[dict[str, Any]]:
    """The episode's chapters for the template: start (seconds), time, title and url (the
    episode page at that time when `links`, else "")."""
    url = str(getattr(episode, "url", "") or "")
    out = []
    for c in getattr(episode, "chapters", None) or []:
        start = c.get("start") if isinstance(c, dict) else getattr(c, "start", None)
        title = c.get("title") if isinstance(c, dict) else getattr(c, "title", None)
        if not isinstance(start, int | float) or not str(title or "").strip():
            continue
        out.append(
            {
                "start": int(start),
                "time": clock(int(start)),
                "title": " ".join(str(title).split()),
                "url": time_link(url, int(start)) if links else "",
            }
        )
    return out


def _shorten(line: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest word-cut (else grapheme-cut) of a line that fits on its own."""
    for cuts in (fit.word_cuts(line), fit.grapheme_cuts(line)):
        best = fit.longest(len(cuts), lambda i, c=cuts: count(c[i]) <= limit)
        if best is not None:
            return cuts[best]
    return ""


def pack(text: str, limit: int, count: Callable[[str], int]) -> list[str]:
    """Split rendered thread text into replies of whole lines, each within `limit`.

    A line alone over the limit is shortened (words first); a `---` line ends a reply.
    """
    parts: list[str] = []
    cur: list[str] = []

    def flush() -> None:
        body = "\n".join(cur).strip()
        if body:
            parts.append(body)
        cur.clear()

    for line in text.split("\n"):
        if line.strip() == BREAK:
            flush()
            continue
        if not cur and not line.strip():
            continue
        if count("\n".join([*cur, line]).strip()) <= limit:
            cur.append(line)
            continue
        flush()
        if count(line.strip()) > limit:
            line = _shorten(line.strip(), limit, count)
        cur.append(line)
    flush()
    return parts[:MAX_PARTS]


def thread_texts(
    renderer: RendersText,
    settings: Settings,
    episode: Any,
    ch: ChannelConfig,
    limit: int | None,
) -> list[str]:
    """The replies for this episode on this channel, in order ([] when the channel has no
    thread, or `thread = ["chapters"]` and the episode has none). Raises the renderer's
    TemplateProblem for a broken template."""
    if not wanted(ch):
        return []
    items = chapters(episode, settings.podcast.chapter_links)
    if not ch.thread_template and not items:
        return []
    text = renderer.render_text(episode, ch, kind="thread", extra={"chapters": items})
    lim = ch.limit or limit or fit.default_limit(ch.type)
    return pack(text, lim, lambda t: fit.count(t, ch.type))

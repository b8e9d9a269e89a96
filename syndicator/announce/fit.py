"""How long a post is on each network, and how to shorten text without breaking it.

Each channel kind counts its own way (`ChannelKind.count`, e.g. weighted lengths, URLs as a
fixed length, grapheme clusters); this module asks it and never names a network.

Shortening cuts only at word boundaries (falling back to grapheme boundaries inside a single
over-long word), so a URL, a handle or a grapheme cluster is never split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grapheme

if TYPE_CHECKING:
    from syndicator.channels.kind import ChannelKind


ELLIPSIS = "…"


def _kind(network: str) -> ChannelKind:
    from syndicator.plugins import kind, kinds

    try:
        return kind(network)
    except KeyError:
        raise ValueError(f"unknown network {network!r}: use one of {', '.join(kinds())}") from None


def default_limit(network: str) -> int:
    """The network's post length limit when nothing better is known."""
    return _kind(network).default_limit


def count(text: str, network: str) -> int:
    """The length of `text` as `network` measures it against its limit."""
    return _kind(network).count(text)


# --- shortening -----------------------------------------------------------------------------

_WORD = re.compile(r"\S+")
# Dropped before the ellipsis so a cut never ends in "word,…" or "word -…".
_CUT_TRAILING = " \t\n,;:.-–—|·&("


def _is_entity(word: str) -> bool:
    """A token that must never be cut or glued to an ellipsis: a URL or a handle."""
    w = word.strip("()[]<>\"'")
    return "://" in w or w.lower().startswith("www.") or w.startswith("@") or "@" in w[1:]


def _ellipsize(prefix: str, last_word: str) -> str:
    if _is_entity(last_word):
        # "…" right after a URL would be read as part of it by some linkifiers.
        return prefix.rstrip() + " " + ELLIPSIS
    cut = prefix.rstrip(_CUT_TRAILING)
    if not cut:
        cut = prefix.rstrip()
    return cut + ELLIPSIS


@dataclass(frozen=True)
class Cuts:
    """Shorter versions of a text, shortest first, each ending in an ellipsis.

    `cuts[i]` for i in range(len(cuts)); the full text itself is not among them. Built
    lazily from word end offsets, so a long description costs no more than a list of ints.
    """

    text: str
    ends: tuple[int, ...]  # offsets where a kept prefix may end
    words: tuple[str, ...]  # the last word of each prefix (for the URL/handle rule)
    allow_empty: bool = False

    def __len__(self) -> int:
        return len(self.ends) + (1 if self.allow_empty else 0)

    def __getitem__(self, i: int) -> str:
        if self.allow_empty:
            if i == 0:
                return ""
            i -= 1
        if not 0 <= i < len(self.ends):
            raise IndexError(i)
        return _ellipsize(self.text[: self.ends[i]], self.words[i])


def word_cuts(text: str, *, allow_empty: bool = False) -> Cuts:
    """Cuts of `text` at every word boundary but the last (that would be the full text)."""
    matches = list(_WORD.finditer(text))[:-1]
    return Cuts(
        text,
        tuple(m.end() for m in matches),
        tuple(m.group(0) for m in matches),
        allow_empty,
    )


def grapheme_cuts(text: str) -> Cuts:
    """Cuts inside the first word at grapheme boundaries, for a title that is one long word.

    Empty when that word is a URL or a handle: those are never cut.
    """
    m = _WORD.search(text)
    if not m or _is_entity(m.group(0)):
        return Cuts(text, (), ())
    ends: list[int] = []
    pos = m.start()
    for g in list(grapheme.graphemes(m.group(0)))[:-1]:
        pos += len(g)
        ends.append(pos)
    return Cuts(text, tuple(ends), tuple("" for _ in ends))


def longest(n: int, fits: Callable[[int], bool]) -> int | None:
    """The largest i in range(n) with fits(i), for a fits() that is true up to some point.

    None when even fits(0) is false. Binary search: a handful of renders, not n.
    """
    if n <= 0 or not fits(0):
        return None
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_plain(text: str, network: str, limit: int) -> str:
    """`text` itself when it fits `limit`, else its longest word (or grapheme) cut that
    does; "" when not even one word fits. For text a person wrote (an edited delivery)."""
    if count(text, network) <= limit:
        return text
    for cuts in (word_cuts(text), grapheme_cuts(text)):
        best = longest(len(cuts), lambda i, c=cuts: count(c[i], network) <= limit)  # type: ignore[misc]
        if best is not None:
            return cuts[best]
    return ""

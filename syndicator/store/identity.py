"""Are two posts one episode? The test for a post that reuses a gone episode's number.

A rename or a typo fix keeps a similar slug or title; a different episode that reuses
the number (a deleted test post, a withdrawn draft) shares neither.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

# Close enough to be an edit of the same text: a fixed typo, a word added or dropped.
SIMILAR = 0.6

_NUMBER_PREFIX = re.compile(r"^\d+[-_ ]+")
_EPISODE_WORD = re.compile(r"\b(?:episode|ep|folge|no|nr)\.?\s*#?\d+\b|#\d+\b|^\d+\b")
_NON_WORD = re.compile(r"[\W_]+")


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def slug_words(slug: str | None) -> str:
    """A slug without its number prefix, as space-separated words."""
    if not slug:
        return ""
    return " ".join(_NON_WORD.split(_plain(_NUMBER_PREFIX.sub("", slug.strip())))).strip()


def title_words(title: str | None) -> str:
    """A title without "Episode 12"/"#12" and punctuation, as space-separated words."""
    if not title:
        return ""
    text = _EPISODE_WORD.sub(" ", _plain(title))
    return " ".join(w for w in _NON_WORD.split(text) if w)


def similarity(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass(frozen=True)
class Verdict:
    same: bool
    why: str


def same_episode(
    old_slug: str | None, old_title: str | None, new_slug: str | None, new_title: str | None
) -> Verdict:
    """Same episode when the slugs or the titles are similar (ignoring the number)."""
    s = similarity(slug_words(old_slug), slug_words(new_slug))
    t = similarity(title_words(old_title), title_words(new_title))
    if s >= SIMILAR:
        return Verdict(True, f"similar slug ({s:.0%} alike)")
    if t >= SIMILAR:
        return Verdict(True, f"similar title ({t:.0%} alike)")
    return Verdict(False, f"slug {s:.0%} and title {t:.0%} alike, below {SIMILAR:.0%}")

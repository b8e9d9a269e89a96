"""Episode tags -> hashtags.

A configurable mapping (`announce.hashtags`, tag -> hashtag text, "" drops the tag) wins;
otherwise a tag of several parts ("lets-encrypt") becomes "LetsEncrypt" and a single word
stays as written ("meteor"). Anything that is not a valid hashtag on every network
(letters, digits and underscore, with at least one letter) is dropped, so a post never
carries a broken "#" that links nowhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_SPLIT = re.compile(r"[-_\s]+")
# A dot inside a word is glue, not a separator: "node.js" -> "nodejs", "vue.js" -> "vuejs".
_INNER_DOT = re.compile(r"(?<=\w)\.(?=\w)")


def is_valid_hashtag(text: str) -> bool:
    """Letters, digits and underscore only, with at least one letter (Mastodon and X agree)."""
    if not text or not all(c.isalnum() or c == "_" or _is_mark(c) for c in text):
        return False
    return any(c.isalpha() for c in text)


def _is_mark(c: str) -> bool:
    # Combining marks belong to the letter before them (e.g. Devanagari vowel signs).
    return unicodedata.category(c).startswith("M")


def _lookup(tag: str, mapping: Mapping[str, str]) -> str | None:
    if tag in mapping:
        return mapping[tag]
    folded = tag.casefold()
    for key, value in mapping.items():
        if key.strip().casefold() == folded:
            return value
    return None


def hashtag_for(tag: str, mapping: Mapping[str, str] | None = None) -> str | None:
    """The hashtag text (without '#') for one tag, or None when it is dropped or invalid."""
    raw = unicodedata.normalize("NFC", str(tag)).strip()
    if not raw:
        return None
    mapped = _lookup(raw, mapping or {})
    if mapped is not None:
        text = unicodedata.normalize("NFC", mapped).strip().lstrip("#").strip()
        if not text:
            return None  # "" in the mapping means: never a hashtag for this tag
        text = _INNER_DOT.sub("", text)
        return text if is_valid_hashtag(text) else None
    raw = _INNER_DOT.sub("", raw.lstrip("#"))
    parts = [p for p in _SPLIT.split(raw) if p]
    if not parts:
        return None
    if len(parts) == 1:
        text = parts[0]
    else:
        text = "".join(p[:1].upper() + p[1:] for p in parts)
    return text if is_valid_hashtag(text) else None


def make_hashtags(tags: Iterable[str], mapping: Mapping[str, str], max_n: int) -> list[str]:
    """Hashtags (no '#') for `tags`, in order, deduplicated case-insensitively, at most max_n."""
    out: list[str] = []
    seen: set[str] = set()
    if max_n <= 0:
        return out
    for tag in tags:
        if not isinstance(tag, str):
            continue
        text = hashtag_for(tag, mapping)
        if text is None:
            continue
        key = text.casefold()
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
        if len(out) >= max_n:
            break
    return out

"""How long a post is on each network, and how to shorten text without breaking it.

- X: twitter-text v3 weighted length (URLs 23, CJK and emoji 2), via twitter-text-parser.
- Mastodon: grapheme clusters, every http(s) URL 23, a mention `@user@domain` counts as
  `@user` (Mastodon's StatusLengthValidator).
- Bluesky: grapheme clusters of the whole text (links count in full).
- Apprise (chat, mail): code points.

Shortening cuts only at word boundaries (falling back to grapheme boundaries inside a single
over-long word), so a URL, a handle or a grapheme cluster is never split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import grapheme
from twitter_text import parse_tweet

ELLIPSIS = "…"

NETWORKS = ("twitter", "mastodon", "bluesky", "apprise")

_DEFAULT_LIMITS = {"twitter": 280, "mastodon": 500, "bluesky": 300, "apprise": 2000}
_ALIASES = {"x": "twitter", "discord": "apprise"}

# Mastodon counts every link as this many characters, whatever its real length.
URL_LENGTH = 23

# Mastodon extracts only links with a scheme; what may precede one follows twitter-text.
_MASTODON_URL = re.compile(r"(?<![A-Za-z0-9@$#＃＠])https?://[^\s<>\"]+", re.IGNORECASE)
# Account::MENTION_RE: `@user` with an optional `@domain`, not inside a word or a URL path.
_MASTODON_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?", re.IGNORECASE
)
_URL_TRAILING = ".,;:!?'\"*"


def _network(network: str) -> str:
    name = _ALIASES.get(network.lower(), network.lower())
    if name not in _DEFAULT_LIMITS:
        raise ValueError(f"unknown network {network!r}: use one of {', '.join(NETWORKS)}")
    return name


def default_limit(network: str) -> int:
    """The network's post length limit when nothing better is known."""
    return _DEFAULT_LIMITS[_network(network)]


def _trim_url(url: str) -> str:
    # Trailing punctuation ends the sentence, not the link; a ")" stays only when balanced.
    while url:
        unbalanced = url[-1] == ")" and url.count("(") < url.count(")")
        if url[-1] in _URL_TRAILING or unbalanced:
            url = url[:-1]
        else:
            break
    return url


def mastodon_countable(text: str) -> str:
    """The text Mastodon measures: URLs as 23 placeholders, mentions without their domain."""
    spans: list[tuple[int, int, str]] = []
    for m in _MASTODON_URL.finditer(text):
        url = _trim_url(m.group(0))
        if "://" in url and len(url) > url.index("://") + 3:
            spans.append((m.start(), m.start() + len(url), "x" * URL_LENGTH))
    for m in _MASTODON_MENTION.finditer(text):
        if any(s < m.end() and m.start() < e for s, e, _ in spans):
            continue  # overlapping entities: the earlier (the URL) wins
        spans.append((m.start(), m.end(), "@" + m.group(1)))
    spans.sort()
    out: list[str] = []
    pos = 0
    for start, end, repl in spans:
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def count(text: str, network: str) -> int:
    """The length of `text` as `network` measures it against its limit."""
    name = _network(network)
    if name == "twitter":
        return parse_tweet(text).weightedLength
    if name == "mastodon":
        return grapheme.length(mastodon_countable(text))
    if name == "bluesky":
        return grapheme.length(text)
    return len(text)


def grapheme_length(text: str) -> int:
    return grapheme.length(text)


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

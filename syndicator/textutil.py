"""Text helpers shared by every layer: HTML to plain text and Apple's byte-capped excerpt.

The one HTML-to-text routine: feeds (titles, descriptions), the published feed's
summaries and Mastodon's statuses all go through `html_to_text`.
"""

from __future__ import annotations

import html
import re

import nh3

_BLOCK = re.compile(
    r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|pre|hr|section|article|table)\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"</p>\s*<p[^>]*>", re.IGNORECASE)
# Apple's cap on an item's <description> and itunes:summary, in bytes of UTF-8: a feed's
# description is kept within it (the whole text is in the show notes).
DESCRIPTION_MAX_BYTES = 4000
_LAST_SPACE = re.compile(r"\s+\S*$")


def grapheme_length(text: str) -> int:
    """The number of user-perceived characters (extended grapheme clusters) in `text`.

    ASCII text without a carriage return is one cluster per character (CR LF is the only
    ASCII pair that joins), which is most announcements: counted with `len`, not with the
    grapheme library's per-character walk (a fifth of planning's CPU on a cold pass)."""
    if text.isascii() and "\r" not in text:
        return len(text)
    import grapheme  # ~grapheme tables: only for text that needs them

    return int(grapheme.length(text))


def html_to_text(value: str, *, lines: bool = False) -> str:
    """HTML -> plain text: tags dropped (script/style with their content), entities decoded.

    By default whitespace is collapsed and block boundaries kept as spaces (one line for
    a description or title). With `lines`, <br> becomes a line break and a paragraph
    boundary an empty line, and the text's own whitespace is kept (a Mastodon status as
    it was posted).
    """
    if not value:
        return ""
    if "<" in value:
        if lines:
            value = _PARAGRAPH.sub("\n\n", _BR.sub("\n", value))
        else:
            value = _BLOCK.sub(lambda m: " " + m.group(0), value)
        value = nh3.clean(value, tags=set(), clean_content_tags={"script", "style"})
    value = html.unescape(value) if "&" in value else value
    return value if lines else _SPACE.sub(" ", value).strip()


def text_excerpt(text: str, max_bytes: int = DESCRIPTION_MAX_BYTES) -> str:
    """`text` when it fits in `max_bytes` of UTF-8, else its start cut at a word boundary
    and ended with "…" (the whole within `max_bytes`)."""
    if len(text) * 4 <= max_bytes or len(text.encode("utf-8")) <= max_bytes:
        return text
    # "…" is 3 bytes; a character cut in half by the byte limit is dropped
    head = text.encode("utf-8")[: max_bytes - 3].decode("utf-8", "ignore")
    m = _LAST_SPACE.search(head)
    if m and m.start() >= len(head) // 2:  # one giant "word": cut it rather than lose most
        head = head[: m.start()]
    return head.rstrip(" \t\n,;:.-") + "…"


_URL_TRAILING = ".,;:!?'\"*"


def trim_url(url: str) -> str:
    """A URL found in text without the punctuation that ends the sentence."""
    # Trailing punctuation ends the sentence, not the link; a ")" stays only when balanced.
    while url:
        unbalanced = url[-1] == ")" and url.count("(") < url.count(")")
        if url[-1] in _URL_TRAILING or unbalanced:
            url = url[:-1]
        else:
            break
    return url

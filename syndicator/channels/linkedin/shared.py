"""What LinkedIn's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

import re

DEFAULT_LIMIT = 3000
DEFAULT_API_URL = "https://api.linkedin.com"
# LinkedIn keeps each monthly version for about a year; a config may name a newer one.
DEFAULT_VERSION = "202611"

_RESERVED = frozenset("|{}@[]()<>#\\*_~")
_URN = r"urn:li:(?:person|organization):[A-Za-z0-9_-]+"
_AUTHOR = re.compile(rf"^{_URN}$")
_VERSION = re.compile(r"^(\d{4})(0[1-9]|1[0-2])(?:\.(\d{2}))?$")
# What little text keeps as elements; everything else is escaped text. URLs are text
# (escaped like the rest) so a '#' or '_' in one never becomes a hashtag.
_TOKEN = re.compile(
    r"(?P<url>https?://\S+)"
    rf"|@\[(?P<name>[^\[\]()\\\n]+)\]\((?P<urn>{_URN})\)"
    r"|(?<![\w&#])#(?P<tag>\w*[^\W\d_]\w*)"  # a hashtag has a letter: "#1" is text
)
_HASHTAG_BACK = re.compile(r"\{hashtag\|\\?[#＃]\|((?:\\.|[^}\\])*)\}")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
# what the sender does with an `unknown` row: reconcile reads the author's recent posts
UNKNOWN_POLICY = "readback"


def escape(text: str) -> str:
    """Plain text as little text: every reserved character behind a backslash."""
    return "".join("\\" + c if c in _RESERVED else c for c in text)


def little_text(text: str) -> str:
    """The frozen text as LinkedIn's commentary: escaped, with #tags and mentions kept."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(escape(text[pos : m.start()]))
        if m["url"]:
            out.append(escape(m["url"]))
        elif m["urn"]:
            out.append(f"@[{escape(m['name'])}]({m['urn']})")
        else:
            out.append("{hashtag|\\#|" + escape(m["tag"]) + "}")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def plain_text(commentary: str) -> str:
    """A commentary read back as plain text (hashtag templates as #tag, escapes undone)."""
    text = _HASHTAG_BACK.sub(lambda m: "#" + m.group(1), commentary)
    return _ESCAPED.sub(lambda m: m.group(1), text)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

"""What a feed may not do: declare XML entities, smuggle non-web URLs, redirect inward.

- `declares_entities` refuses billion-laughs / external-entity documents before any parser.
- `web_url` keeps only http(s) URLs of an item (javascript:, data:, file: are refused and
  reported once per feed by `refused_problem`).
- `bounded` passes an item's numbers through the shared bounds (sources/bounds.py).
- `is_private` / `system_resolve` tell a redirect into this machine's own network (the
  fetcher refuses those unless `allow_private_redirects` is set).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin

from syndicator.sources import bounds
from syndicator.sources.base import ProblemData

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

ENTITY_REFUSAL = "feed declares XML entities; refused (XML bomb / external entity protection)"

_WS = re.compile(rb"[ \t\r\n]*")
_ENTITY_DECL = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def _ascii_view(body: bytes) -> bytes:
    """The body in an ASCII-compatible encoding, so markup can be searched as bytes."""
    head = body[:4]
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return body.decode(codec, errors="replace").encode("utf-8")
    for sig, codec in (
        (b"\x00\x00\x00<", "utf-32-be"),
        (b"<\x00\x00\x00", "utf-32-le"),
        (b"\x00<", "utf-16-be"),
        (b"<\x00", "utf-16-le"),
    ):
        if head.startswith(sig):
            return body.decode(codec, errors="replace").encode("utf-8")
    return body.removeprefix(codecs.BOM_UTF8)


def declares_entities(body: bytes) -> bool:
    """True when the document's DOCTYPE has an internal subset that declares entities.

    Walks the prolog (XML declaration, comments, processing instructions) to the DOCTYPE, and
    refuses if its internal subset declares an ENTITY. Conservative on purpose: once an internal
    subset opens, an ENTITY declaration anywhere after it counts (a quoted "]>" cannot hide one).
    """
    data = _ascii_view(body)
    pos, n = 0, len(data)
    while pos < n:
        pos = _WS.match(data, pos).end()  # type: ignore[union-attr]
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
            if end < 0:
                return False
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return False
            pos = end + 3
        elif data[pos : pos + 9].upper() == b"<!DOCTYPE":
            i = pos + 9
            while i < n:
                c = data[i : i + 1]
                if c in (b'"', b"'"):
                    j = data.find(c, i + 1)
                    if j < 0:
                        return False
                    i = j + 1
                elif c == b"[":
                    return _ENTITY_DECL.search(data, i) is not None
                elif c == b">":
                    break
                else:
                    i += 1
            pos = i + 1
        else:
            return False  # the root element (or garbage): the prolog is over
    return False


def problem(url: str, kind: str, message: str, severity: str = "error") -> ProblemData:
    return ProblemData(location=url, kind=kind, message=message, severity=severity)


def abs_url(value: str | None, base: str) -> str | None:
    """An absolute URL for `value` (relative ones joined to `base`); None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return value
    return urljoin(base, value)


# (field, URL as written) of the URLs an item loses for not being http(s)
Refused = list[tuple[str, str]]


def web_url(value: str | None, base: str, what: str, refused: Refused) -> str | None:
    """`value` made absolute (see _abs) when that gives an http(s) URL; a javascript:, data:,
    file: (or any other) URL is refused: noted in `refused` and never passed on."""
    url = abs_url(value, base)
    if url is None or url[:8].lower().startswith(("http://", "https://")):
        return url
    refused.append((what, (value or "").strip()))
    return None


def refused_problem(url: str, items: list[str]) -> ProblemData:
    """One problem for the feed (the store keeps one per URL and kind), naming each item."""
    shown = " ".join(items[:20]) + (f" ... and {len(items) - 20} more." if len(items) > 20 else "")
    return problem(
        url,
        "unsafe-url",
        f"{len(items)} item(s) carry URLs that are not http(s), left out: {shown} Only http(s) "
        "URLs reach the published feed (a javascript:, data: or file: URL could run code or "
        "read files in listeners' apps); ask the feed's publisher to fix these items.",
        severity="warning",
    )


def bounded(
    check: Callable[[str], int | None],
    value: Any,
    field: str,
    notes: list[str],
    *,
    digits: bool = True,
) -> int | None:
    """A number from an item through the shared bounds; an absurd one becomes a note.

    With `digits`, anything but a plain run of digits is no number and ignored, as before.
    """
    raw = str(value).strip() if value is not None else ""
    if not raw or (digits and not raw.isdigit()):
        return None
    try:
        return check(raw)
    except bounds.OutOfRange as exc:
        notes.append(f"{field}: {exc}")
        return None


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to (an IP literal is its own answer)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def is_private(addr: IPAddress) -> bool:
    """Not a public unicast address: private, loopback, link-local, CGNAT, reserved..."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast

"""Is an episode's audio really there? A HEAD (or a one-byte ranged GET) to its enclosure.

Used before an announcement goes out (announce/audio.py: a post often goes live before its
mp3 finished uploading) and by `check` / `feed build --check`, which also ask for byte
ranges (Apple Podcasts streams with them and refuses a server without). No body is read:
a server that ignores the range and answers 200 has its connection closed at the headers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from syndicator import __version__
from syndicator.sources.base import ProblemData
from syndicator.sources.feeds.safety import IPAddress, is_private

AUDIO_TIMEOUT = 10.0  # seconds per request (connect, and between bytes)
MAX_REDIRECTS = 5
SIZE_TOLERANCE = 0.01  # the served length may differ from mp3_bytes by 1%
HEAD_REFUSED = frozenset({403, 405, 501})  # then a ranged GET of one byte asks instead
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Served by many storage buckets when nobody set a type. Accepted, with a notice: apps go
# by the feed's own type, but some players and Apple's validator look at the server's.
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", ""})
USER_AGENT = f"syndicator/{__version__} (+https://github.com/syndicator; audio check)"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:\d+-\d+|\*)/(\d+|\*)", re.IGNORECASE)

Resolve = Callable[[str, int], list[IPAddress]]

# What a failed probe's problems are about (check/feed build give each its severity).
UNREACHABLE, STATUS, TYPE, SIZE, RANGES, UNSAFE = (
    "unreachable", "status", "type", "size", "ranges", "unsafe",
)  # fmt: skip


@dataclass
class AudioProbe:
    """What the enclosure's server answered. `ok` when nothing in `problems`."""

    url: str
    final_url: str = ""
    method: str = "HEAD"  # the request whose answer was judged
    status: int | None = None
    content_type: str | None = None
    length: int | None = None  # Content-Length, or the total of a Content-Range
    ranges: bool | None = None  # a ranged GET answered 206 (None: not asked)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, sentence)
    notice: str | None = None  # accepted, but something to fix on the server

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return "; ".join(msg for _, msg in self.problems)


def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to (an IP literal is its own answer)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _private(url: str, resolve: Resolve) -> list[str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [str(a) for a in resolve(parts.hostname or "", port) if is_private(a)]


class _Refused(Exception):
    """A redirect that is not followed; the message says why."""


def _request(
    client: httpx.Client,
    method: str,
    url: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
    resolve: Resolve,
) -> tuple[httpx.Response, str]:
    """The answer after redirects (followed by hand, at most MAX_REDIRECTS), and its URL.

    Like the feed fetcher (sources/feeds/fetch.py): a public URL may not redirect into
    this machine's own network unless `allow_private` (the [fetch] setting) says so.
    """
    public_start: bool | None = None
    for _ in range(MAX_REDIRECTS + 1):
        with client.stream(method, url, headers=headers) as resp:
            pass  # headers only: the body (a whole mp3, if the range was ignored) is not read
        location = resp.headers.get("location")
        if resp.status_code not in REDIRECTS or not location:
            return resp, url
        target = urljoin(url, location)
        if not target.lower().startswith(("http://", "https://")):
            raise _Refused(f"it redirects to {target!r}, which is not an http(s) URL")
        if not allow_private:
            if public_start is None:
                public_start = not _private(url, resolve)
            private = _private(target, resolve) if public_start else []
            if private:
                raise _Refused(
                    f"it redirects to {target}, a private, loopback or link-local address "
                    f"({', '.join(private)}), while its own URL is public; not followed. Set "
                    "[fetch] allow_private_redirects = true if the audio really lives there."
                )
        url = target
    raise _Refused(f"more than {MAX_REDIRECTS} redirects; point the enclosure at the file")


def _total(resp: httpx.Response) -> int | None:
    """The file's length: a 206's Content-Range total, else Content-Length."""
    if resp.status_code == 206:
        m = _CONTENT_RANGE.search(resp.headers.get("content-range", ""))
        return int(m.group(1)) if m and m.group(1) != "*" else None
    raw = resp.headers.get("content-length", "").strip()
    return int(raw) if raw.isdigit() else None


def _judge(out: AudioProbe, resp: httpx.Response, expected: int | None) -> None:
    out.status = resp.status_code
    if not 200 <= resp.status_code < 300:
        phrase = resp.reason_phrase or ""
        out.problems.append(
            (STATUS, f"answers {resp.status_code} {phrase}".rstrip() + f" to {out.method}")
        )
        return
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    out.content_type = ctype or None
    if ctype in GENERIC_TYPES:
        out.notice = (
            f"served as {ctype or 'no Content-Type'}, not audio/*: accepted, but set the "
            "file's type on the server (e.g. audio/mpeg); some players go by it"
        )
    elif not ctype.startswith(("audio/", "video/")):
        out.problems.append(
            (TYPE, f"served as {ctype}, not audio or video (an error page served with 200?)")
        )
    out.length = _total(resp)
    if out.length == 0:
        out.problems.append((SIZE, "the file is empty (0 bytes): the upload may not be done"))
    elif out.length is not None and expected and not _close(out.length, expected):
        out.problems.append(
            (
                SIZE,
                f"the file has {out.length} bytes but mp3_bytes says {expected} (more "
                "than 1% apart): the upload may not be done, or mp3_bytes is wrong",
            )
        )


def _close(length: int, expected: int) -> bool:
    return abs(length - expected) <= expected * SIZE_TOLERANCE


def probe(
    url: str,
    expected_length: int | None = None,
    *,
    want_ranges: bool = False,
    allow_private: bool = False,
    client: httpx.Client | None = None,
    timeout: float = AUDIO_TIMEOUT,
    resolve: Resolve = system_resolve,
) -> AudioProbe:
    """HEAD the enclosure; when HEAD is refused (403/405/501) or `want_ranges`, GET one
    byte with `Range: bytes=0-0`. Never raises for what the network does."""
    out = AudioProbe(url=url, final_url=url)
    if not url.lower().startswith(("http://", "https://")):
        out.problems.append((UNSAFE, f"{url!r} is not an http(s) URL"))
        return out
    own = client is None
    c = client or httpx.Client(
        headers={"User-Agent": USER_AGENT}, timeout=httpx.Timeout(timeout), follow_redirects=False
    )
    try:
        head, out.final_url = _request(
            c, "HEAD", url, {}, allow_private=allow_private, resolve=resolve
        )
        judged = head
        if head.status_code in HEAD_REFUSED or want_ranges:
            ranged, final = _request(
                c, "GET", url, {"Range": "bytes=0-0"}, allow_private=allow_private, resolve=resolve
            )
            out.ranges = ranged.status_code == 206
            if head.status_code in HEAD_REFUSED:
                judged, out.final_url, out.method = ranged, final, "GET bytes=0-0"
        _judge(out, judged, expected_length)
        if want_ranges and out.ok and not out.ranges:
            out.problems.append(
                (
                    RANGES,
                    "does not accept byte-range requests (a GET with Range: bytes=0-0 "
                    "answered " + f"{ranged.status_code}, not 206); Apple Podcasts requires "
                    "them: turn range support on at the file's host",
                )
            )
    except _Refused as exc:
        out.problems.append((UNSAFE, str(exc)))
    except httpx.TimeoutException:
        out.problems.append((UNREACHABLE, f"no answer within {timeout:g}s"))
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        out.problems.append((UNREACHABLE, f"could not be reached: {exc or type(exc).__name__}"))
    finally:
        if own:
            c.close()
    return out


# ---------------------------------------------------------------- check, feed build --check

CHECK_NEWEST = 20  # enclosures `check` and `feed build --check` ask about, per source or feed
# A wrong length misleads apps but plays; the rest means the episode does not play.
SEVERITY = {SIZE: "warning"}


def enclosure_problems(
    items: Iterable[tuple[str, str, int | None]], *, allow_private: bool = False
) -> list[ProblemData]:
    """Probe each (what, url, expected length) with byte ranges asked, one problem per
    thing wrong: not reachable, not audio, the wrong size, no byte ranges."""
    out: list[ProblemData] = []
    with httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(AUDIO_TIMEOUT),
        follow_redirects=False,
    ) as client:
        for what, url, expected in items:
            p = probe(url, expected, want_ranges=True, allow_private=allow_private, client=client)
            for kind, msg in p.problems:
                sev = SEVERITY.get(kind, "error")
                out.append(ProblemData(url, "enclosure", f"{what}: {msg}", severity=sev))
            if p.notice:
                out.append(ProblemData(url, "enclosure", f"{what}: {p.notice}", severity="notice"))
    return out

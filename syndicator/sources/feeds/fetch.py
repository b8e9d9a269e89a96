"""HTTP for remote feeds: one shared httpx.AsyncClient, conditional GET, polite concurrency.

`Fetcher.get()` follows redirects by hand so a permanent one (301/308) can be reported, caps
requests per host and overall with semaphores, streams the body and stops at a byte cap, and
turns every network failure into a `FetchOutcome` with an error kind instead of an exception.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from syndicator import __version__
from syndicator.sources.feeds.decode import (
    BadEncoding,
    BoundedDecoder,
    TooLarge,
    UnsupportedEncoding,
    accept_encoding,
)
from syndicator.sources.feeds.safety import Resolver, is_private, system_resolve

DEFAULT_USER_AGENT = (
    f"syndicator/{__version__} (+https://github.com/syndicator; podcast feed aggregator)"
)
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}
MAX_REDIRECTS = 10
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,1024}")
ERROR_BODY_CAP = 64 * 1024  # read this much of an error page so the connection can be reused


@dataclass
class FetchOutcome:
    """What one GET (after redirects) gave: a status and body, or an error kind and message."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    new_url: str | None = None  # end of an unbroken chain of permanent redirects
    error_kind: str | None = None  # timeout, connect, too-large, encoding, redirect, url, network
    error: str | None = None
    elapsed: float = 0.0  # seconds on the network (not counting waits for a free slot)


def tls_context() -> ssl.SSLContext:
    """What `httpx.AsyncClient` makes by default (the CA bundle, SSL_CERT_FILE/DIR). It
    costs ~20 ms of CPU: a worker that polls batch after batch makes one and passes it
    to each Fetcher (`tls=`) instead of loading the CA bundle for every batch."""
    return httpx.create_ssl_context(trust_env=True)


class Fetcher:
    """One shared AsyncClient plus per-host and global request caps. Use `async with`."""

    def __init__(
        self,
        *,
        user_agent: str = "",
        max_per_host: int = 4,
        max_connections: int = 50,
        client: httpx.AsyncClient | None = None,
        allow_private_redirects: bool = False,
        resolver: Resolver | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.max_per_host = max(1, max_per_host)
        self.allow_private_redirects = allow_private_redirects
        self.resolve: Resolver = resolver or system_resolve
        self.max_connections = max(1, max_connections)
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            follow_redirects=False,  # by hand: a 301/308 must be seen to report new_url
            headers={"User-Agent": user_agent or DEFAULT_USER_AGENT, "Accept": ACCEPT},
            limits=httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            ),
            timeout=httpx.Timeout(20.0),  # replaced per request by the source's timeout
            # a context of the caller's (one per pass, see `tls_context`), else a new one
            verify=tls if tls is not None else True,
        )
        self._global = asyncio.Semaphore(self.max_connections)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def _private_addresses(self, url: str) -> list[str]:
        """The private/loopback/link-local addresses `url`'s host resolves to."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return [str(a) for a in await self.resolve(parts.hostname or "", port) if is_private(a)]

    async def _private_redirect(
        self, out: FetchOutcome, url: str, target: str, timeout: float
    ) -> FetchOutcome | None:
        """A failed outcome when `target` (a redirect from a public `url`) is private."""
        try:
            async with asyncio.timeout(timeout):
                private = await self._private_addresses(target)
        except (OSError, TimeoutError) as exc:
            # fail here, not in httpx: a second lookup might answer differently
            out.final_url = target
            return _fail(
                out,
                "connect",
                f"could not resolve {urlsplit(target).hostname} "
                f"({_reason(exc) if isinstance(exc, OSError) else 'timed out'}), where the "
                f"feed redirects; the next poll tries again.",
            )
        if not private:
            return None
        out.final_url = target
        out.new_url = None  # a refused target is no new home for the source
        return _fail(
            out,
            "redirect",
            f"the feed redirects to {target}, a private, loopback or link-local address "
            f"({', '.join(private)}), while its own URL is public; it was not followed, so a "
            "feed cannot make this machine reach its own network. If the feed really moved "
            "there, set `allow_private_redirects = true` on the source (or in [fetch]), or "
            "point the source's url at it.",
        )

    def _host_sem(self, host: str) -> asyncio.Semaphore:
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.max_per_host)
        return sem

    async def get(
        self,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private_redirects: bool | None = None,
    ) -> FetchOutcome:
        """GET `url` with conditional headers, following up to 10 redirects by hand.

        A redirect to a private, loopback or link-local address is followed only when `url`
        itself resolves to one, or `allow_private_redirects` (default: the Fetcher's) says so.
        """
        if allow_private_redirects is None:
            allow_private_redirects = self.allow_private_redirects
        origin_private: bool | None = None  # looked up at the first redirect
        out = FetchOutcome(url=url, final_url=url)
        # only encodings whose decoded size can be bounded (see decode.py)
        headers: dict[str, str] = {"Accept-Encoding": accept_encoding()}
        # validators come from a server: send them back only if they are sane header values
        if etag and _HEADER_VALUE.fullmatch(etag):
            headers["If-None-Match"] = etag
        if last_modified and _HEADER_VALUE.fullmatch(last_modified):
            headers["If-Modified-Since"] = last_modified
        permanent = True  # still on an unbroken chain of 301/308?
        seen = {url}
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                parts = urlsplit(current)
                host = (parts.hostname or "").lower()
            except ValueError:
                parts, host = None, ""
            if parts is None or parts.scheme not in ("http", "https") or not host:
                where = "the source's url" if current == url else f"a redirect (from {url})"
                return _fail(
                    out, "url", f"{current!r} is not an http(s) URL; it came from {where}."
                )
            if current != url and not allow_private_redirects:
                if origin_private is None:
                    try:
                        async with asyncio.timeout(timeout):
                            origin_private = bool(await self._private_addresses(url))
                    except (OSError, TimeoutError):
                        origin_private = False  # unknown: hold it to the public rule
                if not origin_private:
                    refused = await self._private_redirect(out, url, current, timeout)
                    if refused:
                        return refused
            async with self._host_sem(host), self._global:
                started = time.monotonic()
                try:
                    # httpx's timeout is per phase (connect, each read); the overall deadline
                    # stops a server that trickles one byte at a time from holding a slot.
                    async with asyncio.timeout(timeout * 3):
                        location = await self._one(
                            out, current, headers, timeout=timeout, max_bytes=max_bytes
                        )
                except TimeoutError:
                    location = None
                    _fail(out, "timeout", _timeout_msg(current, timeout, whole=True))
                finally:
                    out.elapsed += time.monotonic() - started
            out.final_url = current
            if out.error_kind or location is None:
                return out
            target = urljoin(current, location)
            if out.status in PERMANENT and permanent:
                out.new_url = target
            else:
                permanent = False
            if target in seen:
                return _fail(
                    out,
                    "redirect",
                    f"redirect loop at {target}; the server sends the request in a circle. "
                    "Tell the feed's publisher, or point the source at the final feed URL.",
                )
            seen.add(target)
            current = target
        return _fail(
            out,
            "redirect",
            f"more than {MAX_REDIRECTS} redirects; point the source at the final feed URL.",
        )

    async def _one(
        self,
        out: FetchOutcome,
        url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        max_bytes: int,
    ) -> str | None:
        """One request; returns a redirect's Location, else None (the outcome is filled in)."""
        try:
            async with self.client.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout)
            ) as resp:
                out.status = resp.status_code
                out.headers = resp.headers
                if resp.status_code in REDIRECTS:
                    location = resp.headers.get("location")
                    if not location:
                        _fail(
                            out,
                            "redirect",
                            f"HTTP {resp.status_code} redirect without a Location header; "
                            "the server is misconfigured — tell the feed's publisher.",
                        )
                    return location
                cap = max_bytes if 200 <= resp.status_code < 300 else ERROR_BODY_CAP
                declared = resp.headers.get("content-length", "")
                if cap == max_bytes and declared.isdigit() and int(declared) > max_bytes:
                    _fail(out, "too-large", _too_large_msg(url, int(declared), max_bytes))
                    return None
                try:
                    body = await _read_body(resp, cap)
                except TooLarge:
                    if cap == max_bytes:
                        _fail(out, "too-large", _too_large_msg(url, None, max_bytes))
                    return None  # an error page's body is only a courtesy
                except UnsupportedEncoding as exc:
                    if cap == max_bytes:  # an error page's status says enough
                        _fail(out, "encoding", f"{exc}. Tell the feed's publisher.")
                    return None
                except BadEncoding as exc:
                    if cap == max_bytes:
                        raise httpx.DecodingError(str(exc)) from exc
                    return None
                out.body = body
                return None
        except httpx.TimeoutException as exc:
            phase = type(exc).__name__.removesuffix("Timeout").lower() or "read"
            _fail(out, "timeout", _timeout_msg(url, timeout, phase=phase))
        except httpx.ConnectError as exc:
            _fail(
                out,
                "connect",
                f"could not connect to {urlsplit(url).netloc} ({_reason(exc)}). Check that the "
                "URL is right and the server is up; the next poll tries again.",
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            _fail(out, "url", f"invalid URL {url!r} ({_reason(exc)}); fix the source's url.")
        except httpx.DecodingError as exc:
            _fail(
                out,
                "network",
                f"the response could not be decoded ({_reason(exc)}); the server sent a broken "
                "compressed body. The next poll tries again; tell the publisher if it persists.",
            )
        except (httpx.HTTPError, OSError) as exc:
            _fail(
                out,
                "network",
                f"the connection failed ({type(exc).__name__}: {_reason(exc)}); "
                "the next poll tries again.",
            )
        return None


async def _read_body(resp: httpx.Response, cap: int) -> bytes:
    """The decoded body, counting decoded bytes; TooLarge as soon as it passes `cap`."""
    decoder = BoundedDecoder(resp.headers.get("content-encoding", ""), cap)
    chunks: list[bytes] = []
    size = 0

    def take(pieces: Iterator[bytes]) -> None:
        nonlocal size
        for piece in pieces:
            size += len(piece)
            if size > cap:
                raise TooLarge
            chunks.append(piece)

    async for raw in resp.aiter_raw():  # raw: decoded here, a piece at a time
        take(decoder.feed(raw))
    take(decoder.finish())
    return b"".join(chunks)


def _fail(out: FetchOutcome, kind: str, message: str) -> FetchOutcome:
    out.error_kind = kind
    out.error = message
    out.body = b""
    return out


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _timeout_msg(url: str, timeout: float, *, phase: str = "read", whole: bool = False) -> str:
    what = (
        f"did not finish within {timeout * 3:g} s"
        if whole
        else f"did not answer within {timeout:g} s ({phase} timeout)"
    )
    return (
        f"the server {what}. The next poll tries again; if it keeps happening, raise the "
        f"source's `timeout` or check that {urlsplit(url).netloc} is up."
    )


def _too_large_msg(url: str, declared: int | None, cap: int) -> str:
    size = f" (it declares {declared} bytes)" if declared is not None else ""
    return (
        f"feed larger than {cap / 1048576:.3g} MB decoded{size}; max_bytes is {cap} bytes, so "
        "nothing of it was kept. Raise the source's `max_bytes` if this feed is really "
        "that big."
    )

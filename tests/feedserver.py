"""A small threaded HTTP server on 127.0.0.1 that serves podcast feeds for tests and benchmarks.

Routes are configured per path: feed bodies with ETag / Last-Modified and real 304 handling,
redirects, bare statuses (410, 429/503 with Retry-After, 500, ...), a "hang" that answers later
than any sane client timeout, empty 200s and HTML pages. Every request is logged (path, headers,
Host, start/end time) so tests can assert conditional headers and concurrency.

    with FeedServer() as srv:
        srv.add_feed("/feed.xml", make_feed_xml(10))
        url = srv.url("/feed.xml")

For benchmarks, `serve_in_process(setup)` runs a server in a child process so the client's timing
is not shared with the server's threads (`setup` must be a picklable top-level function).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import html
import multiprocessing
import random
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.base import QuietHTTPServer

__all__ = [
    "Farm",
    "FeedServer",
    "RequestRecord",
    "Route",
    "billion_laughs_xml",
    "farm_etag",
    "farm_path",
    "html_page",
    "make_feed_xml",
    "serve_farm",
    "serve_in_process",
    "xxe_xml",
]


@dataclass
class Route:
    """What one path answers. `delay` sleeps before answering (a hang when > client timeout)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    chunked: bool = False  # no Content-Length: the client cannot know the size up front


@dataclass
class RequestRecord:
    method: str
    path: str
    host: str
    headers: dict[str, str]  # lower-cased names
    started: float
    finished: float = 0.0
    status: int = 0


class _Server(QuietHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512  # a benchmark opens many connections at once
    owner: FeedServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed hosts do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the FeedServer keeps its own log; stderr noise helps nobody

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self, head=True)


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port); a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.log: list[RequestRecord] = []
        self.keep_log = True  # benchmarks switch it off to save memory
        self._in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}  # per Host header, the most requests at once
        self.max_in_flight_total = 0
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    # ---- life cycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """The URL of `path`; `host="localhost"` gives a second host name for the same server."""
        return f"http://{host}:{self.port}{path}"

    def start(self) -> FeedServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a "hang"
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- configuration ----------------------------------------------------------------------

    def add(self, path: str, route: Route) -> Route:
        with self._lock:
            self._routes[path] = route
        return route

    def add_feed(
        self,
        path: str,
        body: bytes | str,
        *,
        etag: str | bool | None = True,
        last_modified: str | datetime | bool | None = True,
        content_type: str = "application/rss+xml; charset=utf-8",
        delay: float = 0.0,
        chunked: bool = False,
    ) -> Route:
        """Serve a feed. `etag=True` derives one from the body; `last_modified=True` uses now."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        if etag is True:
            etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        if last_modified is True:
            last_modified = datetime.now(UTC)
        if isinstance(last_modified, datetime):
            last_modified = email.utils.format_datetime(last_modified.astimezone(UTC), usegmt=True)
        return self.add(
            path,
            Route(
                body=data,
                etag=etag or None,
                last_modified=last_modified or None,
                content_type=content_type,
                delay=delay,
                chunked=chunked,
            ),
        )

    def add_redirect(self, path: str, to: str, status: int = 301) -> Route:
        return self.add(path, Route(status=status, headers={"Location": to}, content_type=""))

    def add_status(
        self,
        path: str,
        status: int,
        *,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        retry_after: str | int | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> Route:
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.add(
            path, Route(status=status, body=data, headers=hdrs, content_type=content_type)
        )

    def add_hang(self, path: str, seconds: float = 3.0) -> Route:
        """Answer only after `seconds` (longer than the client's timeout)."""
        return self.add(path, Route(body=b"<rss/>", delay=seconds))

    def add_html(self, path: str, body: str | None = None) -> Route:
        return self.add(
            path,
            Route(
                body=(body if body is not None else html_page()).encode("utf-8"),
                content_type="text/html; charset=utf-8",
            ),
        )

    # ---- inspection ---------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.max_in_flight.clear()
            self.max_in_flight_total = 0

    # ---- serving ----------------------------------------------------------------------------

    def _handle(self, h: _Handler, head: bool = False) -> None:
        path = h.path.split("?", 1)[0]
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0]
        rec = RequestRecord(
            method=h.command,
            path=path,
            host=host,
            headers={k.lower(): v for k, v in h.headers.items()},
            started=time.monotonic(),
        )
        with self._lock:
            route = self._routes.get(path)
            if self.keep_log:
                self.log.append(rec)
            n = self._in_flight.get(host, 0) + 1
            self._in_flight[host] = n
            self.max_in_flight[host] = max(self.max_in_flight.get(host, 0), n)
            self.max_in_flight_total = max(self.max_in_flight_total, sum(self._in_flight.values()))
        try:
            if route is None:
                route = Route(status=404, body=b"not found", content_type="text/plain")
            if route.delay and self._stop.wait(route.delay):
                h.close_connection = True  # shutting down: drop the connection
                return
            status, headers, body = self._answer(route, rec.headers)
            rec.status = status
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            if route.chunked and status == 200:
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                if not head:
                    for i in range(0, len(body), 16384):
                        part = body[i : i + 16384]
                        h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    h.wfile.write(b"0\r\n\r\n")
                return
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head and body:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to tell
        finally:
            rec.finished = time.monotonic()
            with self._lock:
                self._in_flight[host] -= 1

    @staticmethod
    def _answer(route: Route, req: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        headers = dict(route.headers)
        if route.content_type and route.body:
            headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.status == 200 and _not_modified(route, req):
            return 304, {k: v for k, v in headers.items() if k != "Content-Type"}, b""
        return route.status, headers, route.body


def _not_modified(route: Route, req: dict[str, str]) -> bool:
    # RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only counts without it.
    inm = req.get("if-none-match")
    if inm is not None:
        if not route.etag:
            return False
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or route.etag.removeprefix("W/") in tags
    ims = req.get("if-modified-since")
    if ims and route.last_modified:
        try:
            since = email.utils.parsedate_to_datetime(ims)
            modified = email.utils.parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


# ---- content ------------------------------------------------------------------------------

_GUESTS = [
    ("Filipe Névola", "https://filipenevola.com"),
    ("Ada Lovelace", "https://example.org/ada"),
    ("José Ñúñez", "https://example.org/jose"),
    ("Grace Hopper", "https://example.org/grace"),
    ("Zoë Müller", ""),
]
_TOPICS = ["GraphQL", "Meteor", "Rust", "Postgres", "WebAssembly", "Kubernetes", "Svelte", "Deno"]


def make_feed_xml(
    n_items: int,
    *,
    title: str = "Test Podcast",
    seed: int = 0,
    base_url: str = "https://podcast.example.com",
    start: datetime | None = None,
    persons: bool = True,
    chapters: bool = True,
    transcripts: bool = True,
    notes_paragraphs: int = 3,
) -> bytes:
    """A realistic podcast RSS 2.0 feed (itunes, podcast, psc, content namespaces), newest first.

    Item i (1..n) has guid "{base_url}/episodes/{i}", link "{base_url}/{i}-slug", an MP3
    enclosure, duration H:MM:SS, itunes:episode i, two categories, and (when asked) a guest
    podcast:person, psc chapters and a VTT transcript. Deterministic for a given seed.
    """
    rnd = random.Random(seed)
    start = start or datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    esc = html.escape
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
        ' xmlns:podcast="https://podcastindex.org/namespace/1.0"'
        ' xmlns:psc="http://podlove.org/simple-chapters"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>{esc(title)}</title>\n<link>{esc(base_url)}</link>\n"
        f"<description>A podcast about software, seed {seed}.</description>\n"
        "<language>en</language>\n<itunes:author>The Host</itunes:author>\n"
        f'<itunes:image href="{esc(base_url)}/cover.jpg"/>\n'
        '<itunes:category text="Technology"/>\n<itunes:explicit>false</itunes:explicit>\n'
    ]
    for i in range(n_items, 0, -1):
        topic = _TOPICS[(i + seed) % len(_TOPICS)]
        guest, site = _GUESTS[(i + seed) % len(_GUESTS)]
        when = start + timedelta(days=7 * (i - 1))
        secs = 1200 + rnd.randint(0, 5400)
        dur = f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        slug = f"{i}-talking-{topic.lower()}-with-{guest.split()[0].lower()}"
        paras = "".join(
            f"<p>Paragraph {p + 1}: we talk about <b>{topic}</b>, "
            f'<a href="{base_url}/links/{i}/{p}">links</a> &amp; more — {guest} explains '
            "why it matters, what changed this year and what to try next.</p>"
            for p in range(notes_paragraphs)
        )
        out.append(
            "<item>\n"
            f"<title>{i}: {esc(topic)} with {esc(guest)}</title>\n"
            f"<link>{esc(base_url)}/{slug}</link>\n"
            f'<guid isPermaLink="false">{esc(base_url)}/episodes/{i}</guid>\n'
            f"<pubDate>{email.utils.format_datetime(when)}</pubDate>\n"
            f"<description>{esc(f'<p>{guest} on {topic}.</p>' + paras)}</description>\n"
            f"<content:encoded><![CDATA[{paras}<ul><li>00:00 Intro</li></ul>]]></content:encoded>\n"
            f'<enclosure url="{esc(base_url)}/audio/{i}.mp3" length="{secs * 16000}"'
            ' type="audio/mpeg"/>\n'
            f"<itunes:duration>{dur}</itunes:duration>\n"
            f"<itunes:episode>{i}</itunes:episode>\n"
            "<itunes:episodeType>full</itunes:episodeType>\n"
            f'<itunes:image href="{esc(base_url)}/images/{i}.jpg"/>\n'
            f"<category>{esc(topic)}</category>\n<category>Interviews</category>\n"
        )
        if persons:
            href = f' href="{esc(site)}"' if site else ""
            out.append(
                f'<podcast:person role="guest"{href} img="{esc(base_url)}/avatars/{i}.jpg">'
                f"{esc(guest)}</podcast:person>\n"
                '<podcast:person role="host">The Host</podcast:person>\n'
            )
        if transcripts:
            out.append(
                f'<podcast:transcript url="{esc(base_url)}/transcripts/{i}.vtt" type="text/vtt"/>\n'
            )
        if chapters:
            out.append(
                '<psc:chapters version="1.2">'
                '<psc:chapter start="00:00:00.000" title="Intro"/>'
                f'<psc:chapter start="00:01:30.500" title="{esc(topic)}"/>'
                '<psc:chapter start="01:02:03" title="Wrap-up"/>'
                "</psc:chapters>\n"
            )
        out.append("</item>\n")
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode("utf-8")


def billion_laughs_xml(levels: int = 10) -> bytes:
    """The classic entity-expansion bomb wrapped in an RSS shell."""
    ents = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        ents.append(f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        + "\n".join(ents)
        + f'\n]>\n<rss version="2.0"><channel><title>&lol{levels - 1};</title>'
        "<item><title>x</title><guid>g</guid></item></channel></rss>"
    ).encode()


def xxe_xml(path: str = "/etc/passwd") -> bytes:
    """An external-entity feed that tries to read a local file into an item's title."""
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "file://{path}"> ]>\n'
        '<rss version="2.0"><channel><title>XXE</title>'
        "<item><title>&xxe;</title><guid>xxe-1</guid><description>&xxe;</description></item>"
        "</channel></rss>"
    ).encode()


def html_page(feed_href: str | None = "/feed.xml") -> str:
    """A site's home page (what people paste instead of the feed URL)."""
    alt = (
        f'<link rel="alternate" type="application/rss+xml" title="Podcast" href="{feed_href}">'
        if feed_href
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>My Podcast</title>'
        f"{alt}</head><body><h1>My Podcast</h1><p>Listen to our episodes!</p></body></html>"
    )


# ---- a server in a child process (benchmarks) ---------------------------------------------


def _child(setup: Callable[[FeedServer], None], conn: Any) -> None:
    srv = FeedServer()
    srv.keep_log = False
    setup(srv)
    srv.start()
    conn.send(srv.port)
    with suppress(EOFError):
        conn.recv()  # any message (or the pipe closing) means stop
    srv.stop()


@contextmanager
def serve_in_process(setup: Callable[[FeedServer], None]) -> Iterator[str]:
    """Run a FeedServer configured by `setup` in a child process; yield its base URL."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(setup, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the feed server process did not start within 120 s")
        port = parent.recv()
        yield f"http://127.0.0.1:{port}"
    finally:
        with suppress(BrokenPipeError, OSError):
            parent.send("stop")
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


# ---- a feed farm: many feeds, cheaply, in a child process (benchmarks, worker tests) -------

FARM_HEADER_LIMIT = 16384  # a request head larger than this is refused


def farm_path(i: int) -> str:
    return f"/farm/{i}.xml"


def farm_etag(i: int) -> str:
    """The ETag of unchanged feed `i` (what a primed store holds)."""
    return f'"f{i}"'


FARM_LAST_MODIFIED = "Mon, 01 Jan 2024 09:00:00 GMT"


def _farm_feed(i: int, version: int) -> bytes:
    # small on purpose: the farm measures the poll path, not the parser
    day = datetime(2024, 1, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Episode {v} of show {i}</title><guid>farm-{i}-{v}</guid>"
        f"<pubDate>{email.utils.format_datetime(day + timedelta(days=v))}</pubDate>"
        f'<enclosure url="http://127.0.0.1/a/{i}/{v}.mp3" length="1000" '
        'type="audio/mpeg"/></item>'
        for v in range(version, max(version - 3, -1), -1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Farm show {i}</title><link>http://127.0.0.1/{i}</link>"
        f"<description>Show {i}</description>{items}</channel></rss>"
    ).encode()


class _Farm:
    """The farm's server side: feed i is /farm/i.xml. Every `changed_every`-th feed has
    a new episode on every request (ETag "c<i>-<n>", a 200 with a small feed); the rest
    answer 304 to If-None-Match farm_etag(i) (else a 200 with that ETag). Requests are
    counted per feed; GET /_farm/counts gives the counts (array 'I', native order) and
    POST /_farm/reset zeroes them."""

    def __init__(self, feeds: int, changed_every: int) -> None:
        self.feeds = feeds
        self.changed_every = changed_every
        self.counts = array("I", bytes(4 * feeds))

    def answer(self, method: str, path: str, inm: str | None) -> tuple[int, list[str], bytes]:
        if path.startswith("/farm/") and path.endswith(".xml"):
            num = path[6:-4]
            i = int(num) if num.isdigit() else -1
            if 0 <= i < self.feeds:
                self.counts[i] += 1
                n = self.counts[i]
                if self.changed_every and i % self.changed_every == 0:
                    etag = f'"c{i}-{n}"'
                    return 200, [f"ETag: {etag}"], _farm_feed(i, n)
                etag = farm_etag(i)
                lm = f"Last-Modified: {FARM_LAST_MODIFIED}"
                if inm is not None and etag in inm:
                    return 304, [f"ETag: {etag}", lm], b""
                return 200, [f"ETag: {etag}", lm], _farm_feed(i, 0)
        if path == "/_farm/counts":
            return 200, [], self.counts.tobytes()
        if path == "/_farm/reset" and method == "POST":
            self.counts = array("I", bytes(4 * self.feeds))
            return 200, [], b"ok"
        return 404, [], b"not found"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: one connection, many requests
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > FARM_HEADER_LIMIT:
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ", 2)
                inm = None
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    low = name.lower()
                    if low == "if-none-match":
                        inm = value.strip()
                    elif low == "connection" and value.strip().lower() == "close":
                        close = True
                    elif low == "content-length" and value.strip() != "0":
                        await reader.readexactly(int(value))
                status, headers, body = self.answer(method, path.split("?", 1)[0], inm)
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
                out = [f"HTTP/1.1 {status} {reason}", *headers]
                if status != 304:
                    out.append("Content-Type: application/rss+xml; charset=utf-8")
                    out.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection (or sent junk): nothing to answer
        finally:
            writer.close()


def _farm_child(feeds: int, changed_every: int, conn: Any) -> None:
    async def main() -> None:
        farm = _Farm(feeds, changed_every)
        server = await asyncio.start_server(farm.serve, "127.0.0.1", 0, backlog=1024)
        conn.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        # the parent's message (or the pipe closing) means stop
        loop.add_reader(conn.fileno(), stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


@dataclass
class Farm:
    """The parent's handle on a running farm (see `serve_farm`)."""

    base_url: str
    feeds: int
    changed_every: int

    def url(self, i: int) -> str:
        return self.base_url + farm_path(i)

    def changed(self, i: int) -> bool:
        return bool(self.changed_every) and i % self.changed_every == 0

    def counts(self) -> list[int]:
        """Requests per feed since the start (or the last reset)."""
        with urllib.request.urlopen(self.base_url + "/_farm/counts", timeout=30) as r:
            data = array("I")
            data.frombytes(r.read())
        return data.tolist()

    def reset(self) -> None:
        req = urllib.request.Request(self.base_url + "/_farm/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()


@contextmanager
def serve_farm(feeds: int, changed_every: int = 20) -> Iterator[Farm]:
    """A farm of `feeds` feeds on 127.0.0.1, served by an asyncio HTTP/1.1 keep-alive
    responder in a child process (tens of thousands of requests per second, and none of
    the client's CPU). With the default, 95% of conditional GETs answer 304."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_farm_child, args=(feeds, changed_every, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the feed farm process did not start within 60 s")
        port = parent.recv()
        yield Farm(f"http://127.0.0.1:{port}", feeds, changed_every)
    finally:
        with suppress(BrokenPipeError, OSError):
            parent.send("stop")
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)

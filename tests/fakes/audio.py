"""A file host for enclosures on 127.0.0.1: HEAD, GET and byte ranges, with the ways real
hosts go wrong (a file that appears late, HEAD refused, ranges ignored, a wrong type).

    with FakeAudio() as host:
        host.add("/1.mp3", size=1000, missing_for=3)   # 404 to the first three checks
        url = host.url + "/1.mp3"
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from .base import QuietHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class AudioFile:
    size: int
    ctype: str = "audio/mpeg"
    missing_for: int = 0  # answer 404 to this many checks (HEAD, or a GET when HEAD is refused)
    head_status: int | None = None  # e.g. 405: HEAD refused
    ranges: bool = True  # False: a Range header is ignored (200 with the whole file)
    redirect_to: str | None = None  # answer 302 to this path instead


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.server.owner.handle(self, head=True)

    def do_GET(self) -> None:
        self.server.owner.handle(self, head=False)


class _Server(QuietHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: FakeAudio


class FakeAudio:
    def __init__(self) -> None:
        self.files: dict[str, AudioFile] = {}
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, path: str, size: int = 1000, **kw: Any) -> AudioFile:
        f = self.files[path] = AudioFile(size, **kw)
        return f

    def requests(self, path: str, method: str | None = None) -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [r for r in self.log if r[1] == path and (method is None or r[0] == method)]

    def __enter__(self) -> FakeAudio:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def handle(self, h: _Handler, *, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        rng = h.headers.get("Range")
        with self.lock:
            self.log.append(("HEAD" if head else "GET", path, rng))
            f = self.files.get(path)
            refused = f is not None and head and f.head_status is not None
            counts = f is not None and not refused and f.missing_for > 0
            if counts:
                f.missing_for -= 1  # type: ignore[union-attr]
        if f is None or counts:
            return self._reply(h, 404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>", head)
        if refused:
            return self._reply(h, f.head_status or 405, {"Content-Length": "0"}, b"", True)
        if f.redirect_to:
            return self._reply(h, 302, {"Location": f.redirect_to}, b"", True)
        data = b"\xff" * f.size
        m = _RANGE.fullmatch(rng or "")
        if m and f.ranges:
            start, end = int(m.group(1)), int(m.group(2) or f.size - 1)
            part = data[start : end + 1]
            headers = {"Content-Type": f.ctype, "Content-Range": f"bytes {start}-{end}/{f.size}"}
            return self._reply(h, 206, headers, part, head)
        return self._reply(h, 200, {"Content-Type": f.ctype, "Accept-Ranges": "none"}, data, head)

    @staticmethod
    def _reply(h: _Handler, status: int, headers: dict[str, str], body: bytes, head: bool) -> None:
        h.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if not head:
            with contextlib.suppress(ConnectionError):  # the client read only the headers
                h.wfile.write(body)

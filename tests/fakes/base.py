"""The common part of the fake network services: a real HTTP server with fault injection.

Each fake is a `FakeServer` subclass that implements `app(req) -> Reply`. The server runs
on 127.0.0.1 (ephemeral port) in a thread of the test process; `with FakeX() as x:` starts
and stops it. Everything received is kept in `received` so a test can count posts.

Faults apply to the next N matching requests (method and a path regex), in the order
they were added:

    fake.fail_next(status=500)                       # answer 500, store nothing
    fake.fail_next(status=500, store=True)           # store, then answer 500
    fake.rate_limit_next(reset_in=30)                # the service's own 429 shape
    fake.hang_next(seconds=3)                        # say nothing for 3 s, store nothing
    fake.hang_next(seconds=3, store=True)            # store, then say nothing for 3 s
    fake.drop_next()                                 # store, then close without answering
    fake.drop_next(store=False)                      # close without answering, store nothing

Another process can drive the same controls over HTTP: GET /_fake/received,
POST /_fake/faults with {"kind": "status"|"hang"|"drop", ...the keyword arguments...},
DELETE /_fake/faults.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeServer", "Fault", "Received", "Reply", "multipart_parts", "refused_url"]


@dataclass
class Received:
    """One request as it arrived (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float
    fault: str | None = None  # the fault applied to it, if any
    raw_query: str = ""
    stored: bool = True  # whether the service acted on it (no fault, or a fault with store)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["body"] = self.body.decode("utf-8", "replace")
        return d


def multipart_parts(req: Received) -> dict[str, bytes]:
    """A multipart/form-data body's fields by name (uploads), read with the standard
    library's MIME parser."""
    from email import message_from_bytes
    from email.policy import HTTP

    ctype = req.headers.get("content-type", "")
    msg = message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + req.body, policy=HTTP)
    out: dict[str, bytes] = {}
    for part in msg.iter_parts() if msg.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[str(name)] = part.get_payload(decode=True) or b""
    return out


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


@dataclass
class Fault:
    kind: str  # "status" | "hang" | "drop"
    count: int = 1
    method: str | None = None
    path: str | None = None  # a regex searched in the path
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 5.0
    store: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path))


class QuietHTTPServer(ThreadingHTTPServer):
    """A test server that says nothing when a client hangs up first: the timeout tests
    do that on purpose, and the traceback would read like a failure in CI's log."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server(QuietHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        self.server.owner._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any


def refused_url(scheme: str = "http") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with fault injection; subclasses implement `app`."""

    #: what `rate_limit_next` answers; subclasses give their service's shape
    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        headers = {"X-RateLimit-Reset": str(int(time.time() + reset_in))}
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return Reply(429, {"error": "Too Many Requests"}, headers)

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._arrived = threading.Condition(self.lock)
        self.received: list[Received] = []
        self._faults: list[Fault] = []
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    # ---- life cycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a hang
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults --------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        store: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer `status` to the next n matching requests (after storing, when `store`)."""
        return self.add_fault(
            Fault("status", n, method, path, status, body, dict(headers or {}), store=store)
        )

    def rate_limit_next(
        self,
        n: int = 1,
        *,
        reset_in: float = 60,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer the service's 429 (with its reset header) to the next n matching requests."""
        reply = self.rate_limit_reply(reset_in, retry_after)
        return self.fail_next(
            n, status=reply.status, body=reply.body, headers=reply.headers, method=method, path=path
        )

    def hang_next(
        self,
        n: int = 1,
        *,
        seconds: float = 5.0,
        store: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Say nothing for `seconds` (longer than the client's timeout), storing first if asked."""
        return self.add_fault(Fault("hang", n, method, path, seconds=seconds, store=store))

    def drop_next(
        self, n: int = 1, *, store: bool = True, method: str | None = None, path: str | None = None
    ) -> Fault:
        """Close the connection without an answer (after storing, by default)."""
        return self.add_fault(Fault("drop", n, method, path, store=store))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self._faults:
                if f.matches(method, path):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    return f
        return None

    # ---- what arrived --------------------------------------------------------------------

    def requests(
        self, method: str | None = None, path: str | None = None, *, stored: bool | None = None
    ) -> list[Received]:
        """Requests received so far, by method, a path regex and whether they were acted on."""
        with self.lock:
            return [
                r
                for r in self.received
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
                and (stored is None or r.stored == stored)
            ]

    def wait_for(self, predicate: Callable[[FakeServer], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate(self)` holds (re-checked on each request), or time out."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(min(left, 0.1))
        return True

    def wait_for_request(
        self, method: str | None = None, path: str | None = None, *, count: int = 1,
        timeout: float = 10.0,
    ) -> bool:  # fmt: skip
        """Block until `count` matching requests have arrived (e.g. before a SIGKILL)."""
        return self.wait_for(lambda s: len(s.requests(method, path)) >= count, timeout)

    # ---- the application -----------------------------------------------------------------

    def app(self, req: Received) -> Reply:  # pragma: no cover - subclasses implement it
        return Reply(404, {"error": "NotFound"})

    def _control(self, req: Received) -> Reply:
        if req.method == "GET" and req.path == "/_fake/received":
            with self.lock:
                return Reply(200, [r.to_dict() for r in self.received])
        if req.method == "POST" and req.path == "/_fake/faults":
            spec = req.json() or {}
            self.add_fault(Fault(**spec))
            return Reply(200, {"ok": True})
        if req.method == "DELETE" and req.path == "/_fake/faults":
            self.clear_faults()
            return Reply(200, {"ok": True})
        return self.control(req)

    def control(self, req: Received) -> Reply:
        """Extra /_fake/ endpoints of a subclass."""
        return Reply(404, {"error": "no such control endpoint"})

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Received(
            method=h.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            at=time.time(),
            raw_query=parts.query,
        )
        if parts.path.startswith("/_fake/"):
            self._send(h, self._control(req))
            return
        fault = self._take_fault(req.method, req.path)
        req.fault = fault.kind if fault else None
        req.stored = fault is None or fault.store
        with self._arrived:
            self.received.append(req)
            self._arrived.notify_all()
        if fault is None:
            self._send(h, self._run(req))
            return
        if fault.store:
            self._run(req)  # the service acts on it; the answer is what gets lost
        if fault.kind == "hang":
            self._stop.wait(fault.seconds)
            h.close_connection = True
            return
        if fault.kind == "drop":
            h.close_connection = True
            return
        self._send(h, Reply(fault.status, fault.body, dict(fault.headers)))

    def _run(self, req: Received) -> Reply:
        try:
            return self.app(req)
        except Exception as exc:  # a bug in a fake must show, not hang the client
            return Reply(500, {"error": "FakeServerBug", "message": repr(exc)})

    def _send(self, h: _Handler, reply: Reply) -> None:
        data = reply.encoded()
        try:
            h.send_response(reply.status)
            if data or reply.body is not None:
                h.send_header("Content-Type", reply.content_type)
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

"""Serving the admin app with uvicorn: `syndicator serve`, and inside the daemon.

Without a password the page listens on a loopback address only; asked to listen
elsewhere, it refuses to start and says how to set one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from syndicator.config import Settings
from syndicator.web.auth import AuthConfigError, load_credential

log = logging.getLogger(__name__)


class WebServerError(Exception):
    """The page can't be served as asked; the message says what to do."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_problem(settings: Settings, host: str) -> str | None:
    """Why the page may not listen on `host`, or None."""
    try:
        credential = load_credential(settings)
    except AuthConfigError as exc:
        return str(exc)
    if credential is None and not is_loopback(host):
        return (
            f"refusing to serve the admin page on {host} without a password: anyone who can "
            "reach it could act on your deliveries. Run `syndicator web set-password` (or set "
            "SYNDICATOR_WEB_PASSWORD), or serve on 127.0.0.1 behind an SSH tunnel."
        )
    return None


check_bind = bind_problem  # the name the daemon uses


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise WebServerError(f"can't listen on {host}: {exc.strerror}; check [web] host") from exc
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise WebServerError(
            f"can't listen on {host}:{port}: {exc.strerror}; pick another port with --port "
            "or [web] port"
        ) from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful stop, so the process dies
    of the signal; `syndicator serve` stops cleanly and exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class WebServer:
    """One uvicorn server for the admin app on an already-bound socket.

    `run()` blocks (the `serve` command); `start()` runs it in a thread and returns
    once it accepts connections (the daemon, tests); `stop()` ends it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        run_pass: Callable[[], Any] | None = None,
        wake: Callable[[], None] | None = None,
        access_log: bool = False,
    ) -> None:
        self.host = host or settings.web.host
        requested = settings.web.port if port is None else port
        problem = bind_problem(settings, self.host)
        if problem:
            raise WebServerError(problem)
        self.app = make_app(settings, run_pass=run_pass, wake=wake)
        self.sock = _bind(self.host, requested)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # syndicator.logs owns logging
            access_log=access_log,
            proxy_headers=False,  # the app trusts [web] trusted_proxies itself
            server_header=False,
            timeout_graceful_shutdown=3,
            lifespan="on",
        )
        self.server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self, timeout: float = 15.0) -> WebServer:
        self._thread = threading.Thread(target=self.run, name="syndicator-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise WebServerError("the web server stopped while starting; see the log")
            if time.monotonic() > deadline:
                raise WebServerError(f"the web server did not start within {timeout:.0f} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(Exception):
            self.app.state.web.changes.close_soon()  # end event streams first
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


def make_app(
    settings: Settings,
    *,
    run_pass: Callable[[], Any] | None = None,
    wake: Callable[[], None] | None = None,
) -> Any:
    """The ASGI app (for a server of your own): syndicator.web.app.make_app with
    the pages and the JSON API."""
    from syndicator.web import app, routes_api, routes_pages

    routers = (routes_pages.router, routes_api.router)
    return app.make_app(settings, run_pass=run_pass, wake=wake, routers=routers)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """`syndicator serve`: 0 after a clean stop, 2 when it can't serve as configured."""
    try:
        server = WebServer(settings, host=host, port=port, access_log=True)
    except (WebServerError, AuthConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(
            f"error: can't open the store ({settings.database.url}): {exc}; check [database] url",
            file=sys.stderr,
        )
        return 2
    print(f"serving the admin page on {server.url}/ (Ctrl+C stops)", file=sys.stderr)
    server.run()
    return 0

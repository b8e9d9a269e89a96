"""Plain ASGI middleware (no BaseHTTPMiddleware, so server-sent events stream freely)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread

from syndicator.web.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    ServerSessions,
    SessionCodec,
    WebSession,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_SCOPE_KEY = "syndicator.session"

# img-src https: shows each remote show's artwork (an <img> runs no script).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_COOKIE_PATHS = {"/healthz", "/metrics", "/favicon.ico"}
SESSIONLESS_PATHS = {"/healthz", "/favicon.ico"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class SecurityHeaders:
    """CSP, no framing, no sniffing; nothing but static files is cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                if not static and b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


class LoopbackHostGuard:
    """Without a password the page trusts anyone who can reach 127.0.0.1; a foreign
    Host header means a DNS-rebinding page is talking to us, so refuse it."""

    def __init__(self, app: ASGIApp, extra_names: set[str] | None = None) -> None:
        self.app = app
        self.names = LOOPBACK_NAMES | (extra_names or set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = ""
            for k, v in scope["headers"]:
                if k == b"host":
                    host = v.decode("latin-1").lower()
                    break
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.names:
                body = (
                    b"This admin page has no password, so it answers only to "
                    b"http://127.0.0.1 or http://localhost. Set a password "
                    b"(`syndicator web set-password`) to serve it under another name.\n"
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 421,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SessionMiddleware:
    """Reads the signed session cookie into the scope; writes it back when changed.

    A cookie that says "logged in" counts only while its session is in the store
    (`sessions`): logging out deletes it there, so a copy of the cookie dies too.
    """

    def __init__(
        self,
        app: ASGIApp,
        codec: SessionCodec,
        secure: bool | None,
        sessions: ServerSessions | None = None,
    ) -> None:
        self.app = app
        self.codec = codec
        self.secure = secure  # None: Secure when the request came over https
        self.sessions = sessions

    async def _confirm(self, sess: WebSession, path: str) -> None:
        if not sess.user or self.sessions is None:
            return
        if path in SESSIONLESS_PATHS:  # probes need no login, nor a store read for one
            sess.user = False
            return
        if not await anyio.to_thread.run_sync(self.sessions.alive, sess.sid):
            sess.logout()  # logged out elsewhere, or too long idle
        elif sess.stale:
            await anyio.to_thread.run_sync(self.sessions.seen, sess.sid)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        raw = None
        for k, v in scope["headers"]:
            if k == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(v.decode("latin-1"))
                except Exception:  # a malformed Cookie header is the client's problem
                    continue
                if SESSION_COOKIE in jar:
                    raw = jar[SESSION_COOKIE].value
        sess: WebSession = self.codec.loads(raw)
        await self._confirm(sess, scope["path"])
        scope[SESSION_SCOPE_KEY] = sess
        if scope["path"] in NO_COOKIE_PATHS:  # probes and scrapers keep no session
            await self.app(scope, receive, send)
            return
        secure = self.secure if self.secure is not None else scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and sess.modified:
                cookie = (
                    f"{SESSION_COOKIE}={self.codec.dumps(sess)}; Path=/; "
                    f"Max-Age={SESSION_MAX_AGE}; HttpOnly; SameSite=Lax"
                )
                if secure:
                    cookie += "; Secure"
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, wrapped)

"""The admin web app: `make_app(settings)` builds the ASGI app.

Pages and the JSON API only read the store (web/queries.py) and act through the
same functions the CLI calls (announce.outbox, actions, previews, pipeline).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import syndicator
from syndicator import __version__
from syndicator.announce.manual import ActionError
from syndicator.announce.outbox import STATES
from syndicator.config import Settings, secret
from syndicator.previews import PreviewError
from syndicator.timeutil import parse_iso, utcnow
from syndicator.web import metrics as metrics_mod
from syndicator.web import sparkline
from syndicator.web.auth import (
    Credential,
    LoginGate,
    LoginLimiter,
    ServerSessions,
    SessionCodec,
    WebSession,
    load_credential,
    session_secret,
)
from syndicator.web.cache import PageCache
from syndicator.web.csrf import CSRFError, check_csrf
from syndicator.web.middleware import (
    SESSION_SCOPE_KEY,
    LoopbackHostGuard,
    SecurityHeaders,
    SessionMiddleware,
)
from syndicator.web.passes import PassRunner
from syndicator.web.queries import change_stamp
from syndicator.web.sse import ChangeFeed

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")


def templates_dir() -> Path:
    """templates/admin: inside the wheel (`_templates`), else the source tree."""
    pkg = Path(syndicator.__file__).parent
    for base in (pkg / "_templates", pkg.parent / "templates"):
        if (base / "admin").is_dir():
            return base / "admin"
    raise FileNotFoundError("the admin page templates (templates/admin) are missing")


class LoginRequired(Exception):
    pass


# ---------------------------------------------------------------- template helpers


def _as_dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return parse_iso(str(value))
    except ValueError:
        return None


def make_env(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,  # every value shown is escaped, whatever the template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tz = settings.podcast.tz

    def dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        d = _as_dt(value)
        return d.astimezone(tz).strftime(fmt) if d else "—"

    def ago(value: Any) -> str:
        d = _as_dt(value)
        if d is None:
            return "never"
        secs = (utcnow() - d).total_seconds()
        future, secs = secs < 0, abs(secs)
        if secs < 45:
            text = f"{int(secs)} s"
        elif secs < 5400:
            text = f"{round(secs / 60)} min"
        elif secs < 129600:
            text = f"{round(secs / 3600)} h"
        else:
            text = f"{round(secs / 86400)} d"
        return f"in {text}" if future else f"{text} ago"

    def hms(seconds: Any) -> str:
        if seconds is None:
            return "—"
        s = int(seconds)
        return (
            f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
            if s >= 3600
            else f"{s // 60}:{s % 60:02d}"
        )

    def size(n: Any) -> str:
        if n is None:
            return "—"
        n = float(n)
        for unit in ("B", "KB", "MB", "GB"):
            if n < 1024 or unit == "GB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
        return str(n)

    def safe_url(value: Any) -> str:
        """Only http(s) links become hrefs (no javascript: from a feed or a network)."""
        if not value:
            return ""
        text = str(value).strip()
        return text if urlsplit(text).scheme.lower() in ("http", "https") else ""

    env.filters.update(dt=dt, ago=ago, hms=hms, size=size, safe_url=safe_url)
    env.filters.update(sparkline=sparkline.svg)  # listener counts over time
    env.globals.update(
        states=STATES,
        version=__version__,
        podcast=settings.podcast.title,
        tzname=settings.podcast.timezone,
    )
    return env


def local_next(value: Any, default: str = "/") -> str:
    """A redirect target only within this site."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text or "\n" in text:
        return default
    return text


def query(base: str, **params: Any) -> str:
    """A link with only the parameters that say something (no empty ones, no page=1)."""
    kept = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
    return base + ("?" + urlencode(kept) if kept else "")


# ---------------------------------------------------------------- the app's state


@dataclass
class Web:
    settings: Settings
    engine: Engine
    credential: Credential | None
    codec: SessionCodec
    env: jinja2.Environment
    changes: ChangeFeed
    runner: PassRunner
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    gate: LoginGate = field(default_factory=lambda: LoginGate(os.cpu_count() or 1, 16))
    metrics_token: str | None = None
    wake: Callable[[], None] | None = None
    registry: Any = None
    pages: PageCache = field(default_factory=PageCache)
    sessions: ServerSessions | None = None  # the logged-in sessions, in the store

    @property
    def login_required(self) -> bool:
        return self.credential is not None


def web_of(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def session_of(request: Request) -> WebSession:
    sess = request.scope.get(SESSION_SCOPE_KEY)
    if sess is None:  # only without the middleware (never in make_app's app)
        sess = request.scope[SESSION_SCOPE_KEY] = WebSession()
    return sess  # type: ignore[no-any-return]


def logged_in_session(request: Request) -> WebSession:
    sess = session_of(request)
    if web_of(request).login_required and not sess.user:
        raise LoginRequired()
    return sess


async def require_login(request: Request) -> WebSession:
    """Dependency: a login when a password is set (async: no worker thread for it)."""
    return logged_in_session(request)


async def require_csrf(request: Request) -> WebSession:
    sess = logged_in_session(request)
    await check_csrf(request, sess)
    return sess


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _render_html(
    request: Request, name: str, csrf: str, flash: list[list[str]], ctx: dict[str, Any]
) -> str:
    web = web_of(request)
    ctx.setdefault("nav", "")
    return web.env.get_template(name).render(
        request_path=request.url.path,
        request_url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        csrf_token=csrf,
        login_required=web.login_required,
        logged_in=session_of(request).user,
        flash=flash,
        pass_state=web.runner.state,
        **ctx,
    )


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    sess = session_of(request)
    live = "x-live" in request.headers  # a live refresh keeps flash messages for the page
    flash = [] if live else sess.pop_flash()
    return HTMLResponse(_render_html(request, name, sess.csrf, flash, ctx), status_code=status)


async def render_cached(
    request: Request, name: str, key: str, build: Callable[[], dict[str, Any]]
) -> HTMLResponse:
    """A page that many people (or one page's live refreshes) ask for at once: its
    HTML is made at most once per store change and second, and shared.

    The per-visitor bits stay out of the shared copy: the CSRF token is put in
    afterwards, and a page with a flash message is always made fresh. A copy in
    the cache is served from the event loop; making one runs in a worker thread.
    """
    web = web_of(request)
    sess = session_of(request)
    if sess.flash and "x-live" not in request.headers:
        return await run_in_threadpool(lambda: render(request, name, **build()))
    state = web.runner.state
    version = (web.changes.version, state.runs, state.running, sess.user)
    # A live refresh follows a change event: it must see that change.
    allow_stale = "x-live" not in request.headers

    def make() -> str:
        return _render_html(request, name, web.pages.placeholder, [], build())

    html = web.pages.peek(key, version, make, allow_stale)
    if html is None:
        html = await run_in_threadpool(web.pages.get, key, version, make, allow_stale)
    return HTMLResponse(html.replace(web.pages.placeholder, sess.csrf))


def slash_redirect(request: Request) -> str | None:
    """The same path with (or without) its trailing slash, when that is a route.

    A relative URL: Starlette's own redirect is absolute and built from the Host
    header, which a client can forge.
    """
    path = request.scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    if path == "/" or not other:
        return None
    scope = {**request.scope, "path": other}
    if all(route.matches(scope)[0] is Match.NONE for route in request.app.router.routes):
        return None
    target = quote(other) + (f"?{request.url.query}" if request.url.query else "")
    return local_next(target, default="") or None  # never a //host/ URL


def error_response(request: Request, status: int, message: str, **headers: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)
    return render(request, "error.html", status=status, message=message, status_code=status)


# ---------------------------------------------------------------- exception handlers


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith(("/api/", "/events")) or wants_json(request):
            return JSONResponse(
                {"error": "log in first (POST /login with the admin password)"},
                status_code=401,
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(query("/login", next=target), status_code=303)

    @app.exception_handler(CSRFError)
    async def _csrf(request: Request, exc: CSRFError) -> Response:
        return error_response(request, 403, str(exc))

    @app.exception_handler(ActionError)
    async def _action(request: Request, exc: ActionError) -> Response:
        return error_response(request, 409, str(exc))

    @app.exception_handler(PreviewError)
    async def _preview(request: Request, exc: PreviewError) -> Response:
        return error_response(request, 409, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(StarletteHTTPException)
    async def _not_routed(request: Request, exc: StarletteHTTPException) -> Response:
        # The router's own 404 (no route): maybe the path is a page with(out) a slash.
        if exc.status_code == 404 and (target := slash_redirect(request)):
            return RedirectResponse(target, status_code=307)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_json(request):
            return JSONResponse({"error": "invalid request", "detail": exc.errors()}, 422)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(request, 422, f"invalid request: {where}: {first.get('msg', '')}")


# ---------------------------------------------------------------- building it


class _App(FastAPI):
    """FastAPI whose outermost layers (security headers, proxy trust, Host check)
    wrap even the error pages Starlette's ServerErrorMiddleware makes."""

    outer: list[Callable[[Any], Any]]

    def build_middleware_stack(self) -> Any:
        inner = super().build_middleware_stack()
        for wrap in getattr(self, "outer", []):
            inner = wrap(inner)
        return inner


def _is_loopback_client(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        loop = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    return loop and not proxied


def metrics_allowed(request: Request) -> bool:
    """/metrics: open to a scraper on this machine (not through a proxy), to a bearer
    token from $SYNDICATOR_WEB_METRICS_TOKEN, or to a logged-in admin; open to all
    when there is no password (then the page serves on 127.0.0.1 only)."""
    web = web_of(request)
    if not web.login_required or _is_loopback_client(request):
        return True
    auth = request.headers.get("authorization", "")
    if web.metrics_token and auth.startswith("Bearer "):
        return hmac.compare_digest(auth[7:].strip().encode(), web.metrics_token.encode())
    return session_of(request).user


def make_app(
    settings: Settings,
    *,
    run_pass: Callable[[], Any] | None = None,
    wake: Callable[[], None] | None = None,
    poll_interval: float = 1.0,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The admin app. `run_pass` runs one pass (default: pipeline.run_once(settings));
    `wake` is called after an action queued work (the daemon can start a pass early).
    `routers` are the pages and API (server.py passes them: the routes use this
    module's helpers, so this module must not import them).

    Raises AuthConfigError for an unusable password hash.
    """
    from syndicator.store.db import open_store

    credential = load_credential(settings)
    engine = open_store(settings)
    codec = SessionCodec(session_secret(engine), credential)

    changes = ChangeFeed(lambda: change_stamp(engine, settings, utcnow()), interval=poll_interval)

    def default_pass() -> Any:
        from syndicator.pipeline import run_once

        return run_once(settings)

    runner = PassRunner(run_pass or default_pass, on_change=lambda: changes.poke_threadsafe("pass"))
    web = Web(
        settings=settings,
        engine=engine,
        credential=credential,
        codec=codec,
        env=make_env(settings),
        changes=changes,
        runner=runner,
        metrics_token=secret("web", "metrics_token") or None,
        wake=wake,
        limiter=LoginLimiter(
            settings.web.login_attempts, settings.web.login_window.total_seconds()
        ),
        gate=LoginGate(settings.web.login_checks or os.cpu_count() or 1, settings.web.login_queue),
        sessions=ServerSessions(engine),
    )
    gate = web.gate
    web.registry = metrics_mod.make_registry(
        engine,
        settings,
        lambda: [
            ("syndicator_web_pass_running", "1 while a pass started here runs.",
             1.0 if runner.state.running else 0.0),
            ("syndicator_web_login_checks", "Passwords checked since the server started.",
             float(gate.checked)),
            ("syndicator_web_login_checks_peak", "Most password checks that ran at once.",
             float(gate.peak)),
            ("syndicator_web_login_busy", "Logins refused (503) because too many waited.",
             float(gate.refused)),
        ],
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        changes.start()
        try:
            yield
        finally:
            await changes.stop()

    app = _App(
        title="syndicator admin",
        version=__version__,
        description=(
            "The admin page's JSON API. Log in with POST /login (form field `password`), "
            "then send the session cookie; every POST also needs the `X-CSRF-Token` header "
            "(its value: GET /api/session)."
        ),
        openapi_url=None,  # served at /api/openapi.json, behind the login
        docs_url=None,  # Swagger UI loads from a CDN and needs inline script: not here
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,  # done by slash_redirect, without the Host header
    )
    app.state.web = web
    app.add_middleware(
        SessionMiddleware, codec=codec, secure=settings.web.secure_cookies, sessions=web.sessions
    )
    outer: list[Callable[[Any], Any]] = [SecurityHeaders]
    if credential is None:
        names = {settings.web.host.lower()} if settings.web.host else set()
        outer.append(lambda a: LoopbackHostGuard(a, names))
    if settings.web.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        proxies = list(settings.web.trusted_proxies)
        outer.append(lambda a: ProxyHeadersMiddleware(a, trusted_hosts=proxies))
    app.outer = outer
    _install_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in routers:
        app.include_router(router)
    return app


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}

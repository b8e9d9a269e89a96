"""HTML pages, the login, the page's POST actions, /events, /healthz and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.concurrency import run_in_threadpool

from syndicator.timeutil import utcnow
from syndicator.web import ops, queries
from syndicator.web.app import (
    client_ip,
    error_response,
    local_next,
    metrics_allowed,
    query,
    render,
    render_cached,
    require_csrf,
    require_login,
    retry_after_header,
    session_of,
    wants_json,
    web_of,
)
from syndicator.web.auth import BusyError, WebSession
from syndicator.web.csrf import check_csrf
from syndicator.web.metrics import render as render_metrics

router = APIRouter(include_in_schema=False)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _done(request: Request, form: dict[str, str], message: str, data: dict[str, Any]) -> Response:
    """After an action: JSON for the page's script, else back where the form was."""
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message, **data})
    session_of(request).add_flash("ok", message)
    return RedirectResponse(local_next(form.get("next")), status_code=303)


# ---------------------------------------------------------------- pages


@router.get("/")
async def dashboard(request: Request, _: WebSession = Depends(require_login)) -> Response:
    web = web_of(request)

    def build() -> dict[str, Any]:
        data = queries.dashboard(web.engine, web.settings, utcnow())
        return {
            "nav": "dashboard",
            "data": data,
            "channels": sorted(c for c in data["deliveries"] if c != "directory"),
            "configured_channels": [c.name for c in web.settings.channels],
        }

    return await render_cached(request, "dashboard.html", "dashboard", build)


@router.get("/sources")
async def sources(
    request: Request, q: str = "", page: int = 1, _: WebSession = Depends(require_login)
) -> Response:
    web = web_of(request)

    def link(p: int) -> str:
        return query("/sources", q=q.strip()[:200], page=p)

    def build() -> dict[str, Any]:
        return {"nav": "sources", "result": queries.source_page(web.engine, q, page), "link": link}

    return await render_cached(request, "sources.html", link(max(1, page)), build)


@router.get("/episodes")
async def episodes(
    request: Request,
    q: str = "",
    state: str = "",
    channel: str = "",
    source: str = "",
    page: int = 1,
    _: WebSession = Depends(require_login),
) -> Response:
    web = web_of(request)
    f = queries.EpisodeFilter(q=q, state=state, channel=channel, source=source, page=page)
    f = f.normalized()

    def link(p: int) -> str:
        return query("/episodes", q=f.q, state=f.state, channel=f.channel, source=f.source, page=p)

    def build() -> dict[str, Any]:
        result = queries.episode_page(web.engine, f)
        return {
            "nav": "episodes",
            "result": result,
            "f": f,
            "channel_names": sorted({c.name for c in web.settings.channels} | set(result.channels)),
            "source_names": [s.name for s in web.settings.sources],
            "link": link,
        }

    return await render_cached(request, "episodes.html", link(f.page), build)


@router.get("/episodes/{episode_id}")
def episode(request: Request, episode_id: int, _: WebSession = Depends(require_login)) -> Response:
    web = web_of(request)
    data = queries.episode_detail(web.engine, episode_id)
    if data is None:
        raise HTTPException(404, f"no episode {episode_id}; see the episodes page")
    channels = [c.name for c in web.settings.channels if c.enabled]
    card, card_error = ops.card(web.settings, episode_id)
    return render(
        request, "episode.html", nav="episodes", data=data, ep=data["episode"],
        channels=channels, actions_by_state=ops.ACTIONS_BY_STATE,
        card=card, card_error=card_error,
    )  # fmt: skip


@router.get("/episodes/{episode_id}/card.png")
def episode_card(
    request: Request, episode_id: int, _: WebSession = Depends(require_login)
) -> Response:
    """The episode's image card (docs/cards.md)."""
    web = web_of(request)
    card, why = ops.card(web.settings, episode_id)
    if card is None:
        raise HTTPException(404, why or f"no card for episode {episode_id}")
    return FileResponse(card.path, media_type=card.mime)


@router.get("/channels")
def channels(request: Request, _: WebSession = Depends(require_login)) -> Response:
    web = web_of(request)
    return render(
        request, "channels.html", nav="channels", rows=queries.channels(web.engine, web.settings)
    )


@router.get("/problems")
def problems(request: Request, _: WebSession = Depends(require_login)) -> Response:
    web = web_of(request)
    from syndicator.store.db import session
    from syndicator.store.problems import group

    with session(web.engine) as s:
        rows, total = queries.open_problems(s, action=True)
        notices, notice_total = queries.open_problems(s, action=False)
    return render(
        request, "problems.html", nav="problems", rows=rows, total=total,
        notice_groups=group(notices), notice_total=notice_total,
    )  # fmt: skip


# ---------------------------------------------------------------- login


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    web = web_of(request)
    sess = session_of(request)
    if not web.login_required or sess.user:
        return RedirectResponse(local_next(next), status_code=303)
    return render(request, "login.html", nav="login", next=local_next(next), error=None)


def _login_refused(request: Request, target: str, status: int, msg: str, wait: float) -> Response:
    if wants_json(request):
        return JSONResponse({"error": msg}, status, headers=retry_after_header(wait))
    resp = render(request, "login.html", status, nav="login", next=target, error=msg)
    resp.headers.update(retry_after_header(wait))
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    web = web_of(request)
    sess = session_of(request)
    form = await _form(request)
    target = local_next(form.get("next"))
    if not web.login_required:
        return RedirectResponse(target, status_code=303)
    await check_csrf(request, sess)
    ip = client_ip(request)
    wait = web.limiter.attempt(ip)  # counts this try before it is checked
    if wait is not None:
        msg = f"Too many wrong passwords; try again in {int(wait) + 1} s."
        return _login_refused(request, target, 429, msg, wait)
    password = form.get("password", "")
    cred = web.credential
    assert cred is not None
    try:
        ok = bool(password.strip()) and await web.gate.verify(cred, password)
    except BusyError:
        web.limiter.give_back(ip)  # not checked, so not one of the client's tries
        msg = "Too many logins at once; try again in a few seconds."
        return _login_refused(request, target, 503, msg, 2.0)
    if not ok:
        msg = "Wrong password."
        if wants_json(request):
            return JSONResponse({"error": msg}, 401)
        return render(request, "login.html", 401, nav="login", next=target, error=msg)
    web.limiter.success(ip)
    assert web.sessions is not None
    # A new session id at every login: one planted or seen before it is worth nothing.
    sid = await run_in_threadpool(web.sessions.start, sess.sid)
    sess.login(web.codec.bound, sid)
    if wants_json(request):
        return JSONResponse({"ok": True, "csrf_token": sess.csrf})
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    sess = session_of(request)
    await check_csrf(request, sess)
    web = web_of(request)
    if sess.sid and web.sessions is not None:
        await run_in_threadpool(web.sessions.end, sess.sid)  # a copied cookie ends too
    sess.logout()
    return RedirectResponse("/login" if web.login_required else "/", status_code=303)


# ---------------------------------------------------------------- actions


@router.post("/deliveries/{delivery_id}/{action}")
async def delivery_action(
    request: Request, delivery_id: int, action: str, _: WebSession = Depends(require_csrf)
) -> Response:
    web = web_of(request)
    if action not in ops.DELIVERY_ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    form = await _form(request)
    if action in ops.APPROVAL_ACTIONS:
        row = await run_in_threadpool(
            ops.approval_action, web.settings, web.engine, delivery_id, action, form
        )
    else:
        row = await run_in_threadpool(
            ops.delivery_action, web.engine, delivery_id, action, form.get("reason")
        )
    web.changes.poke("deliveries")
    if web.wake and action in ("retry", "mark-not-sent", "approve"):
        web.wake()
    return _done(request, form, ops.message_for(action, row), {"delivery": row})


@router.post("/episodes/{episode_id}/announce")
async def announce(
    request: Request, episode_id: int, _: WebSession = Depends(require_csrf)
) -> Response:
    web = web_of(request)
    form = await _form(request)
    rows = await run_in_threadpool(
        ops.announce, web.settings, web.engine, episode_id, form.get("channel")
    )
    web.changes.poke("deliveries")
    if web.wake and rows:
        web.wake()
    names = ", ".join(r["channel"] for r in rows) or "no channel"
    msg = f"Queued on {names}; the next pass sends it." if rows else "Nothing to queue."
    return _done(request, form, msg, {"deliveries": rows})


@router.post("/episodes/{episode_id}/preview")
async def preview(
    request: Request, episode_id: int, _: WebSession = Depends(require_csrf)
) -> Response:
    web = web_of(request)
    form = await _form(request)
    rows = await run_in_threadpool(ops.preview, web.settings, episode_id, form.get("channel"))
    if wants_json(request):
        return JSONResponse({"ok": True, "previews": rows})
    data = await run_in_threadpool(queries.episode_detail, web.engine, episode_id)
    if data is None:
        raise HTTPException(404, f"no episode {episode_id}")
    return render(request, "preview.html", nav="episodes", ep=data["episode"], rows=rows)


@router.post("/pass")
async def run_pass(request: Request, _: WebSession = Depends(require_csrf)) -> Response:
    web = web_of(request)
    form = await _form(request)
    if not web.runner.start():
        return error_response(request, 409, "A pass started here is still running; wait for it.")
    return _done(request, form, "A pass is running; this page updates when it ends.", {
        "pass": web.runner.state.as_dict()
    })  # fmt: skip


# ---------------------------------------------------------------- live, health, metrics


@router.get("/events")
async def events(request: Request, sess: WebSession = Depends(require_login)) -> Response:
    web = web_of(request)

    async def over() -> bool:
        # The stream outlives the login check of its request: end it with the session.
        if await request.is_disconnected():
            return True
        if not sess.sid or web.sessions is None:
            return False
        return not await run_in_threadpool(web.sessions.alive, sess.sid)

    return StreamingResponse(
        web.changes.stream(over),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.api_route("/healthz", methods=["GET", "HEAD"])
def healthz(request: Request) -> Response:
    web = web_of(request)
    status, body = ops.health(web.engine, web.settings)
    return JSONResponse(body, status_code=status)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    if not metrics_allowed(request):
        msg = "metrics need a login, or Authorization: Bearer $SYNDICATOR_WEB_METRICS_TOKEN"
        return JSONResponse(
            {"error": msg},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="syndicator"'},
        )
    web = web_of(request)
    return Response(render_metrics(web.registry), media_type=CONTENT_TYPE_LATEST)

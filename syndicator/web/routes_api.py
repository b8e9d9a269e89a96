"""The JSON API under /api/: the same data and actions as the pages.

Shapes come from store.views (docs/json.md), as `syndicator ... --json` prints them;
lists are paginated: {"items": [...], "total", "page", "per_page", "pages"}.
Every route needs the login (when a password is set); every POST needs the
X-CSRF-Token header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from syndicator.store.db import session
from syndicator.store.views import status_dict
from syndicator.timeutil import utcnow
from syndicator.web import ops, queries
from syndicator.web.app import (
    error_response,
    require_csrf,
    require_login,
    session_of,
    web_of,
)
from syndicator.web.auth import WebSession

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/session", summary="Login state and the CSRF token for POSTs")
def api_session(request: Request) -> dict[str, Any]:
    web = web_of(request)
    sess = session_of(request)
    authenticated = sess.user or not web.login_required
    return {
        "login_required": web.login_required,
        "authenticated": authenticated,
        # Only a logged-in client gets the token; a login form has it in the page.
        "csrf_token": sess.csrf if authenticated else None,
    }


@router.get("/status", summary="Sources, deliveries per channel and state, feeds, problems")
def api_status(request: Request, _: WebSession = Depends(require_login)) -> dict[str, Any]:
    web = web_of(request)
    data = status_dict(web.engine, utcnow(), queries.stale_after(web.settings))
    data["pass"] = web.runner.state.as_dict()
    return data


@router.get("/episodes", summary="Episodes, newest first, with their delivery states")
def api_episodes(
    request: Request,
    q: str = "",
    state: str = "",
    channel: str = "",
    source: str = "",
    page: int = 1,
    per_page: int = queries.PER_PAGE,
    _: WebSession = Depends(require_login),
) -> dict[str, Any]:
    web = web_of(request)
    f = queries.EpisodeFilter(
        q=q, state=state, channel=channel, source=source, page=page, per_page=per_page
    )
    r = queries.episode_page(web.engine, f, full=True)
    return {"items": r.items, "total": r.total, "page": r.page, "per_page": r.per_page,
            "pages": r.pages}  # fmt: skip


@router.get("/episodes/{episode_id}", summary="One episode, its feed entry and deliveries")
def api_episode(
    request: Request, episode_id: int, _: WebSession = Depends(require_login)
) -> dict[str, Any]:
    data = queries.episode_detail(web_of(request).engine, episode_id)
    if data is None:
        raise HTTPException(404, f"no episode {episode_id}")
    return data


@router.get("/deliveries", summary="The outbox, newest first")
def api_deliveries(
    request: Request,
    state: str = "",
    channel: str = "",
    kind: str = "",
    page: int = 1,
    per_page: int = queries.PER_PAGE,
    _: WebSession = Depends(require_login),
) -> dict[str, Any]:
    out = queries.deliveries_page(
        web_of(request).engine, state=state, channel=channel, kind=kind, page=page,
        per_page=per_page,
    )  # fmt: skip
    out["pages"] = max(1, -(-out["total"] // out["per_page"]))
    return out


@router.get("/problems", summary="Open problems")
def api_problems(request: Request, _: WebSession = Depends(require_login)) -> list[dict[str, Any]]:
    with session(web_of(request).engine) as s:
        rows, _total = queries.open_problems(s)
    return rows


@router.get("/channels", summary="Channels: config without secrets, counts per state")
def api_channels(request: Request, _: WebSession = Depends(require_login)) -> list[dict[str, Any]]:
    web = web_of(request)
    return queries.channels(web.engine, web.settings)


@router.get("/stats", summary="What listeners did: counts per channel and per post")
def api_stats(request: Request, _: WebSession = Depends(require_login)) -> dict[str, Any]:
    from syndicator.announce.listeners import summary

    web = web_of(request)
    with session(web.engine) as s:
        return summary(s, web.settings, utcnow())


@router.get("/pass", summary="The pass started from this page: running or its last result")
def api_pass_state(request: Request, _: WebSession = Depends(require_login)) -> dict[str, Any]:
    return web_of(request).runner.state.as_dict()


@router.post("/pass", summary="Run a pass now (one at a time)", status_code=202)
async def api_pass(request: Request, _: WebSession = Depends(require_csrf)) -> Any:
    web = web_of(request)
    if not web.runner.start():
        return error_response(request, 409, "a pass started here is still running")
    return {"ok": True, "pass": web.runner.state.as_dict()}


@router.post(
    "/deliveries/{delivery_id}/{action}",
    summary="retry, skip, mark-sent, mark-not-sent, approve, edit or reject a delivery",
)
async def api_delivery_action(
    request: Request,
    delivery_id: int,
    action: str,
    reason: str | None = Body(default=None, embed=True),
    text: str | None = Body(default=None, embed=True),  # edit: the new text
    approve: bool = Body(default=False, embed=True),  # edit: approve it too
    _: WebSession = Depends(require_csrf),
) -> dict[str, Any]:
    web = web_of(request)
    if action not in ops.DELIVERY_ACTIONS:
        raise HTTPException(404, f"no action {action!r}; use one of {list(ops.DELIVERY_ACTIONS)}")
    if action in ops.APPROVAL_ACTIONS:
        form = {"reason": reason, "text": text, "approve": approve}
        row = await run_in_threadpool(
            ops.approval_action, web.settings, web.engine, delivery_id, action, form
        )
    else:
        row = await run_in_threadpool(ops.delivery_action, web.engine, delivery_id, action, reason)
    web.changes.poke("deliveries")
    if web.wake and action in ("retry", "mark-not-sent", "approve"):
        web.wake()
    return {"ok": True, "message": ops.message_for(action, row), "delivery": row}


@router.post("/episodes/{episode_id}/announce", summary="Queue an episode's announcement now")
async def api_announce(
    request: Request,
    episode_id: int,
    channel: str | None = Body(default=None, embed=True),
    _: WebSession = Depends(require_csrf),
) -> dict[str, Any]:
    web = web_of(request)
    rows = await run_in_threadpool(ops.announce, web.settings, web.engine, episode_id, channel)
    web.changes.poke("deliveries")
    if web.wake and rows:
        web.wake()
    return {"ok": True, "deliveries": rows}


@router.post("/episodes/{episode_id}/preview", summary="Each channel's text for an episode")
async def api_preview(
    request: Request,
    episode_id: int,
    channel: str | None = Body(default=None, embed=True),
    _: WebSession = Depends(require_csrf),
) -> dict[str, Any]:
    web = web_of(request)
    rows = await run_in_threadpool(ops.preview, web.settings, episode_id, channel)
    return {"ok": True, "previews": rows}


@router.get("/openapi.json", include_in_schema=False)
def api_openapi(request: Request, _: WebSession = Depends(require_login)) -> JSONResponse:
    app = request.app
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
    return JSONResponse(app.openapi_schema)

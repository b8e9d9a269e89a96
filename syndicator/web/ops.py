"""What the page's and the API's actions do: each calls the function the CLI calls.

These are blocking (database, rendering); the routes run them in a worker thread.
"""

from __future__ import annotations

from typing import Any

from syndicator.actions import announce_episode, edit_delivery, episode_card
from syndicator.announce import approval, manual
from syndicator.announce.manual import ActionError
from syndicator.config import Settings
from syndicator.previews import previews
from syndicator.store import episodes
from syndicator.store.db import session
from syndicator.store.models import Delivery
from syndicator.store.views import daemon_dict, delivery_dict
from syndicator.timeutil import utcnow

DELIVERY_ACTIONS = ("retry", "skip", "mark-sent", "mark-not-sent")
APPROVAL_ACTIONS = ("approve", "edit", "reject")  # a person in the loop
DELIVERY_ACTIONS += APPROVAL_ACTIONS

# Which buttons a row in a given state shows (the outbox decides what is allowed).
ACTIONS_BY_STATE: dict[str, tuple[str, ...]] = {
    "planned": ("retry", "skip"),
    "retrying": ("retry", "skip"),
    "failed": ("retry", "skip"),
    "skipped": ("retry",),
    "unknown": ("mark-sent", "mark-not-sent", "skip"),
    "sending": (),
    "sent": (),
    "awaiting_approval": APPROVAL_ACTIONS,
    "waiting_audio": ("retry", "skip"),  # retry: check the audio now
    "waiting": ("retry", "skip"),  # a reply: retry sends it once its parent is sent
}


def approval_action(
    settings: Settings, engine: Any, delivery_id: int, action: str, form: dict[str, Any]
) -> dict[str, Any]:
    """approve, edit (form "text"; "approve" too when set) or reject a held row."""
    now = utcnow()
    if action == "approve":
        row = approval.approve(engine, delivery_id, now, by="web")
    elif action == "reject":
        reason = form.get("reason") or "rejected by hand (web page)"
        row = approval.reject(engine, delivery_id, now, reason=reason)
    else:
        row = edit_delivery(settings, delivery_id, str(form.get("text") or ""), by="web").row
        if form.get("approve"):
            row = approval.approve(engine, delivery_id, now, by="web")
    return delivery_dict(row, _guid(engine, row))


def delivery_action(
    engine: Any, delivery_id: int, action: str, reason: str | None = None
) -> dict[str, Any]:
    now = utcnow()
    if action == "retry":
        row = manual.retry(engine, delivery_id, now)
    elif action == "skip":
        row = manual.skip(engine, delivery_id, now, reason=reason or "skipped by hand (web page)")
    elif action == "mark-sent":
        row = manual.mark_unknown(engine, delivery_id, now, was_sent=True)
    elif action == "mark-not-sent":
        row = manual.mark_unknown(engine, delivery_id, now, was_sent=False)
    else:
        raise ActionError(f"unknown action {action!r}; use one of {', '.join(DELIVERY_ACTIONS)}")
    return delivery_dict(row, _guid(engine, row))


def _guid(engine: Any, row: Delivery) -> str | None:
    if row.episode_id is None:
        return None
    with session(engine) as s:
        ep = episodes.by_id(s, row.episode_id)
        return ep.guid if ep else None


def message_for(action: str, d: dict[str, Any]) -> str:
    verb = {
        "retry": "will be sent again on the next pass",
        "skip": "skipped; it won't be sent",
        "mark-sent": "marked as sent",
        "mark-not-sent": "marked as not sent; the next pass sends it",
        "approve": "approved; the next pass sends it once due",
        "edit": "edited",
        "reject": "rejected; it won't be sent",
    }[action]
    return f"Delivery {d['id']} on {d['channel']} {verb} (now {d['state']})."


def announce(
    settings: Settings, engine: Any, episode_id: int, channel: str | None
) -> list[dict[str, Any]]:
    rows = announce_episode(settings, f"#{episode_id}", channel or None)
    with session(engine) as s:
        ep = episodes.by_id(s, episode_id)
        guid = ep.guid if ep else None
    return [delivery_dict(r, guid) for r in rows]


def preview(settings: Settings, episode_id: int, channel: str | None) -> list[dict[str, Any]]:
    return previews(settings, f"#{episode_id}", channel or None)


def health(engine: Any, settings: Settings) -> tuple[int, dict[str, Any]]:
    """200 when the store answers and a daemon's heartbeat is fresh; else 503 and why."""
    now = utcnow()
    try:
        with session(engine) as s:
            daemon = daemon_dict(s, now, settings.daemon.heartbeat * 3)
    except Exception as exc:
        return 503, {
            "ok": False,
            "store": "error",
            "reason": f"the store does not answer: {type(exc).__name__}: {exc}",
        }
    if not daemon["alive"]:
        last = daemon["last_seen"]
        reason = (
            f"no daemon heartbeat since {last} (stale after "
            f"{int((settings.daemon.heartbeat * 3).total_seconds())} s)"
            if last
            else "no daemon has ever written a heartbeat; start `syndicator run`"
        )
        return 503, {"ok": False, "store": "ok", "daemon": daemon, "reason": reason}
    return 200, {"ok": True, "store": "ok", "daemon": daemon, "reason": None}


def card(settings: Settings, episode_id: int) -> tuple[Any, str | None]:
    """The episode's card (made once, then read from the cards folder), or None and why
    it can't be made (shown on the episode's page instead of a broken picture)."""
    try:
        return episode_card(settings, f"#{episode_id}"), None
    except ActionError as exc:
        return None, str(exc)

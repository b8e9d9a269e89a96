"""A fake Nostr relay: NIP-01 over WebSocket on 127.0.0.1 (the `websockets` library).

    EVENT  checks the id (sha256 of the NIP-01 serialisation, computed here) and the
           signature (nostr-sdk), stores the event, answers ["OK", id, true, ""] or, for
           one it has, ["OK", id, true, "duplicate: already have this event"]; a bad one
           gets ["OK", id, false, "invalid: ..."].
    REQ    answers the stored events matching any of the filters (ids, authors, kinds,
           #<letter> tags, since, until, limit), then EOSE.

The relay speaks WebSocket on `ws_url`; the usual controls are HTTP on `url`, like every
fake (GET /_fake/received, POST /_fake/faults, DELETE /_fake/faults). Faults use the
messages' verb as the method ("EVENT", "REQ") and `path` as a regex searched in an
EVENT's content:

    relay.drop_next()                    # store, then close the connection before the OK
    relay.drop_next(store=False)         # close without storing
    relay.fail_next(body="blocked: no")  # refuse: ["OK", id, false, "blocked: no"]
    relay.rate_limit_next()              # ["OK", id, false, "rate-limited: ..."]
    relay.hang_next(seconds=3, store=True)  # store, say nothing for 3 s, then close

    with FakeRelay() as relay:
        ... relays = [relay.ws_url] ...
        assert [e["content"] for e in relay.notes()] == [...]
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from nostr_sdk import Event, Keys, NostrSdkError
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from .base import FakeServer, Received, Reply

DUPLICATE = "duplicate: already have this event"


def event_id(ev: dict[str, Any]) -> str:
    """NIP-01: sha256 of [0, pubkey, created_at, kind, tags, content], compact UTF-8 JSON."""
    data = [0, ev["pubkey"], ev["created_at"], ev["kind"], ev["tags"], ev["content"]]
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def problem(ev: Any) -> str | None:
    """Why a relay refuses this event (an "invalid:" reason), or None."""
    if not isinstance(ev, dict):
        return "invalid: an event is a JSON object"
    try:
        if event_id(ev) != ev.get("id"):
            return "invalid: event id does not match"
    except (KeyError, TypeError):
        return "invalid: missing fields"
    try:
        if not Event.from_json(json.dumps(ev)).verify_signature():
            return "invalid: bad signature"
    except NostrSdkError as exc:
        return f"invalid: {exc}"
    return None


def matches(ev: dict[str, Any], flt: dict[str, Any]) -> bool:
    """NIP-01 filter matching (every condition given must hold)."""
    if "ids" in flt and ev["id"] not in flt["ids"]:
        return False
    if "authors" in flt and ev["pubkey"] not in flt["authors"]:
        return False
    if "kinds" in flt and ev["kind"] not in flt["kinds"]:
        return False
    if "since" in flt and ev["created_at"] < flt["since"]:
        return False
    if "until" in flt and ev["created_at"] > flt["until"]:
        return False
    for key, wanted in flt.items():
        if key.startswith("#") and len(key) == 2:
            values = {t[1] for t in ev["tags"] if len(t) >= 2 and t[0] == key[1]}
            if not values & set(wanted):
                return False
    return True


class FakeRelay(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, dict[str, Any]] = {}  # id -> event, in arrival order
        self.refused: list[tuple[str, str]] = []  # (id, reason) of events it said no to
        self._ws: Server = serve(self._connection, "127.0.0.1", 0, compression=None)
        self._ws_thread: threading.Thread | None = None

    # ---- life cycle ----------------------------------------------------------------------

    @property
    def ws_port(self) -> int:
        return int(self._ws.socket.getsockname()[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def start(self) -> FakeRelay:
        super().start()
        if self._ws_thread is None:
            self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)
            self._ws_thread.start()
        return self

    def stop(self) -> None:
        super().stop()  # sets _stop: hanging connections wake up and close
        self._ws.shutdown()
        if self._ws_thread:
            self._ws_thread.join(timeout=5)
            self._ws_thread = None

    def env(self, channel: str) -> dict[str, str]:
        """A fresh private key for a channel that posts to this relay."""
        return {f"SYNDICATOR_{channel.upper()}_NSEC": Keys.generate().secret_key().to_bech32()}

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        return Reply(429, "rate-limited: slow down")

    # ---- what it holds -------------------------------------------------------------------

    def notes(self) -> list[dict[str, Any]]:
        """The kind-1 notes it stored, oldest first."""
        with self.lock:
            return [e for e in self.events.values() if e["kind"] == 1]

    def replies(self) -> list[dict[str, Any]]:
        """Each stored note that is a reply (NIP-10 marked `e` tags), oldest first:
        {id, content, root, reply, p} — `reply` is the parent's id (the root's for a
        direct reply to it, which carries only the "root" marker), `p` the tagged authors."""
        out = []
        for ev in self.notes():
            marked = {t[3]: t[1] for t in ev["tags"] if t[0] == "e" and len(t) > 3}
            if "root" not in marked:
                continue
            out.append(
                {"id": ev["id"], "content": ev["content"], "root": marked["root"],
                 "reply": marked.get("reply", marked["root"]),
                 "p": [t[1] for t in ev["tags"] if t[0] == "p"]}
            )  # fmt: skip
        return out

    def add(self, ev: dict[str, Any]) -> None:
        """Store an event as if a client had published it (reactions, replies for counts)."""
        why = problem(ev)
        assert why is None, why
        with self.lock:
            self.events.setdefault(ev["id"], ev)

    # ---- the protocol --------------------------------------------------------------------

    def _connection(self, ws: ServerConnection) -> None:
        try:
            for raw in ws:
                if not self._message(ws, raw):
                    return
        except ConnectionClosed:
            return

    def _say(self, ws: ServerConnection, *msg: Any) -> None:
        ws.send(json.dumps(list(msg), ensure_ascii=False))

    def _message(self, ws: ServerConnection, raw: str | bytes) -> bool:
        """Handle one client message; False closes the connection."""
        try:
            msg = json.loads(raw)
            verb = msg[0]
        except (ValueError, IndexError, KeyError, TypeError):
            self._say(ws, "NOTICE", "error: could not parse the message")
            return True
        if verb == "EVENT" and len(msg) >= 2:
            return self._event(ws, msg[1], raw)
        if verb == "REQ" and len(msg) >= 2:
            return self._req(ws, msg[1], [f for f in msg[2:] if isinstance(f, dict)], raw)
        if verb == "CLOSE":
            return True
        self._say(ws, "NOTICE", f"error: unknown message {verb!r}")
        return True

    def _log(self, verb: str, content: str, raw: str | bytes) -> tuple[Any, Received]:
        fault = self._take_fault(verb, content)
        body = raw.encode("utf-8") if isinstance(raw, str) else raw
        req = Received(verb, content, {}, {}, body, time.time(), fault.kind if fault else None,
                       stored=fault is None or fault.store)  # fmt: skip
        with self._arrived:
            self.received.append(req)
            self._arrived.notify_all()
        return fault, req

    def _event(self, ws: ServerConnection, ev: Any, raw: str | bytes) -> bool:
        eid = ev.get("id", "") if isinstance(ev, dict) else ""
        content = str(ev.get("content", "")) if isinstance(ev, dict) else ""
        fault, req = self._log("EVENT", content, raw)
        why = problem(ev)
        if why is not None:
            with self.lock:
                self.refused.append((eid, why))
            req.stored = False
            self._say(ws, "OK", eid, False, why)
            return True
        duplicate = False
        if fault is None or fault.store:
            with self.lock:
                duplicate = eid in self.events
                self.events.setdefault(eid, ev)
        if fault is None:
            self._say(ws, "OK", eid, True, DUPLICATE if duplicate else "")
            return True
        if fault.kind == "hang":
            self._stop.wait(fault.seconds)
            return False
        if fault.kind == "drop":
            return False
        reason = fault.body if isinstance(fault.body, str) else "blocked: refused by the fake"
        with self.lock:
            self.refused.append((eid, reason))
        self._say(ws, "OK", eid, False, reason)
        return True

    def _req(
        self, ws: ServerConnection, sub: Any, filters: list[dict[str, Any]], raw: str | bytes
    ) -> bool:
        fault, _ = self._log("REQ", "", raw)
        if fault is not None:
            if fault.kind == "hang":
                self._stop.wait(fault.seconds)
                return False
            if fault.kind == "drop":
                return False
            self._say(ws, "CLOSED", sub, fault.body if isinstance(fault.body, str) else "error:")
            return True
        with self.lock:
            stored = list(self.events.values())
        sent: set[str] = set()
        for flt in filters:
            found = [e for e in stored if matches(e, flt)]
            found.sort(key=lambda e: e["created_at"], reverse=True)
            for e in found[: flt.get("limit", len(found))]:
                if e["id"] not in sent:
                    sent.add(e["id"])
                    self._say(ws, "EVENT", sub, e)
        self._say(ws, "EOSE", sub)
        return True

    def app(self, req: Received) -> Reply:
        if req.method == "GET" and req.path == "/":  # NIP-11, on the control port
            return Reply(200, {"name": "fake relay", "supported_nips": [1, 11]})
        return Reply(404, {"error": "this is the relay's control port; WebSocket is ws_url"})

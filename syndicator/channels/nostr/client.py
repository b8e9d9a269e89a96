"""Nostr: a NIP-01 kind-1 note, signed once, published to a list of relays over WebSocket.

Library: nostr-sdk (rust-nostr's bindings) for the keys (nsec or hex), the event id, the
BIP-340 signature and bech32 (npub, nevent). It is one wheel with no Python dependencies,
kept current with the NIPs, and its key and event calls are synchronous, as the sender is.
pynostr would also do, but pulls in tornado, typer, rich and tlv8 and has one maintainer.
nostr-sdk's own relay pool is async and reconnects and retries by itself, which hides the
one thing the outbox needs: which relay answered what. So the exchange with each relay
(one EVENT, one OK; one REQ, events, EOSE) uses `websockets`' sync client, one thread
per relay, each with its own timeout.

Exactly once: the note is signed before any relay is contacted and recorded on the delivery
row (`post.progress`, key "event"); every later attempt sends that same event. A relay
that already has it answers `OK true "duplicate: …"`, so a resend is a no-op on every
relay (unknown_policy "idempotent"). Sent means at least `min_relays` relays said OK; a
relay that fails beyond that is a warning in the log, not a failure.

The kind (config, keys, handles) is the package, `syndicator.channels.nostr`; this module
is imported by its `build()` only.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from nostr_sdk import (
    Event,
    EventBuilder,
    Keys,
    Kind,
    NostrSdkError,
    PublicKey,
    Tag,
    Timestamp,
)
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from syndicator.channels.base import (
    PermanentError,
    Post,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.nostr.shared import DEFAULT_LIMIT, UNKNOWN_POLICY, event_uri

log = logging.getLogger(__name__)

MAX_MESSAGE = 1 << 20  # bytes in one relay message (the note, an event read back)
MAX_COUNT_EVENTS = 5000  # reactions, replies and reposts read from one relay for counts
MAX_RELAY_THREADS = 16  # relays contacted at once
# A '#tag' at the start or after a space or bracket (not a URL's '#fragment').
_HASHTAG = re.compile(r"(?<![^\s(\[])#(\w+)")
# NIP-27 references to people in the text: nostr:npub1… / nostr:nprofile1…
_PROFILE_REF = re.compile(r"nostr:((?:npub|nprofile)1[02-9ac-hj-np-z]+)")
# OK false prefixes (NIP-01) that won't change by trying again as is
_REFUSED = ("blocked:", "invalid:", "pow:", "restricted:", "auth-required:")

T = TypeVar("T")


class RelayError(Exception):
    """One relay could not be asked (connect, timeout, closed, garbage)."""


@dataclass(frozen=True)
class RelayAnswer:
    relay: str
    # "ok" (stored or duplicate), "refused" (OK false; trying again won't help), "busy"
    # (OK false, e.g. rate-limited: not stored), "unreached" (nothing was sent), "maybe"
    # (sent, no answer: it may have stored it)
    outcome: str
    message: str = ""


# --- the event --------------------------------------------------------------------------


def note_tags(text: str) -> list[Tag]:
    """`t` tags for the #hashtags in the text and `p` tags for the people it mentions."""
    tags: list[Tag] = []
    seen: set[str] = set()
    for m in _HASHTAG.finditer(text):
        word = m.group(1).lower()  # NIP-24: t tags are lower case
        if any(c.isalpha() for c in word) and f"t:{word}" not in seen:
            seen.add(f"t:{word}")
            tags.append(Tag.hashtag(word))
    for m in _PROFILE_REF.finditer(text):
        try:
            pk = PublicKey.parse(m.group(1))
        except NostrSdkError:
            continue  # not a valid key: plain text, no tag
        if f"p:{pk.to_hex()}" not in seen:
            seen.add(f"p:{pk.to_hex()}")
            tags.append(Tag.public_key(pk))
    return tags


def reply_tags(post: Post) -> list[Tag]:
    """NIP-10 marked `e` tags for a reply of a thread (the root, and the parent when it is
    not the root: a direct reply to the root carries only "root"), and a `p` tag for the
    parent's author."""
    parent = post.reply_to
    if parent is None:
        return []
    root = post.reply_root or parent
    tags = [["e", root.remote_id, "", "root", root.ref.get("pubkey", "")]]
    if parent.remote_id != root.remote_id:
        tags.append(["e", parent.remote_id, "", "reply", parent.ref.get("pubkey", "")])
    tags = [t if t[-1] else t[:-1] for t in tags]  # no empty pubkey hint
    if parent.ref.get("pubkey"):
        tags.append(["p", parent.ref["pubkey"]])
    try:
        return [Tag.parse(t) for t in tags]
    except NostrSdkError as exc:
        raise PermanentError(f"the reply's parent note is not a valid reference: {exc}") from exc


def build_event(keys: Keys, post: Post) -> Event:
    """The signed kind-1 note, from frozen data only: the same id on every build."""
    created = Timestamp.from_secs(int(post.created_at.timestamp()))
    text, tags = post.text, note_tags(post.text) + reply_tags(post)
    if post.image_url:
        # NIP-92: the image's URL in the text, described by an imeta tag (clients show it)
        text = f"{text}\n{post.image_url}"
        meta = ["imeta", f"url {post.image_url}"]
        meta += [f"m {post.image_type}"] if post.image_type else []
        meta += [f"x {post.image_sha256}"] if post.image_sha256 else []
        meta += [f"alt {post.image_alt}"] if post.image_alt else []
        tags.append(Tag.parse(meta))
    builder = EventBuilder(Kind(1), text).tags(tags)
    return builder.custom_created_at(created).finalize(keys)


def _frame(kind: str, *parts: Any) -> str:
    return json.dumps([kind, *parts], ensure_ascii=False, separators=(",", ":"))


def _message(raw: str | bytes) -> list[Any]:
    try:
        msg = json.loads(raw)
    except ValueError as exc:
        raise RelayError("answered with something that is not JSON") from exc
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise RelayError("answered with something that is not a NIP-01 message")
    return msg


def _references(ev: dict[str, Any], event_id: str) -> bool:
    return any(
        isinstance(t, list) and len(t) >= 2 and t[0] == "e" and t[1] == event_id
        for t in ev.get("tags") or []
    )


def _genuine(ev: dict[str, Any]) -> bool:
    """A relay's event with a valid id and signature (a relay can't inflate counts)."""
    try:
        return bool(Event.from_json(json.dumps(ev)).verify())
    except NostrSdkError:
        return False


# --- the channel ------------------------------------------------------------------------


class NostrChannel:
    type = "nostr"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        relays: list[str],
        keys: Keys,
        min_relays: int = 1,
        timeout: float = 20.0,
        limit: int | None = None,
    ) -> None:
        self.name = name
        self.relays = list(relays)
        self.min_relays = min_relays
        self._keys = keys
        self._timeout = timeout
        self._limit = limit

    def limit(self) -> int:
        return self._limit or DEFAULT_LIMIT

    def close(self) -> None:
        pass  # one connection per relay per call; nothing stays open

    # ---- the signed note ----------------------------------------------------------------

    def sign(self, post: Post) -> dict[str, Any]:
        """The note, signed now, as its NIP-01 JSON."""
        try:
            event = build_event(self._keys, post)
        except NostrSdkError as exc:
            raise PermanentError(f"the note could not be signed: {exc}") from exc
        return dict(json.loads(event.as_json()))

    def _event(self, post: Post) -> tuple[str, dict[str, Any]]:
        event = post.progress.get("event")
        if event is None:
            # Signed once and kept on the row before any relay is contacted: the id would
            # repeat anyway, but BIP-340 signatures don't, and every attempt sends the same
            # bytes. `record` raises TransientError (nothing sent) when it can't keep it.
            event = self.sign(post)
            post.progress.record(event=event)
        if not isinstance(event, dict) or not _genuine(event):
            raise PermanentError(
                "the signed note recorded on this delivery is damaged (its id or signature "
                "does not verify); skip the delivery, or mark it not sent to post it anew"
            )
        return str(event["id"]), event

    # ---- relays --------------------------------------------------------------------------

    def _each(self, ask: Callable[[str], T]) -> list[T]:
        workers = max(1, min(len(self.relays), MAX_RELAY_THREADS))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"nostr-{self.name}") as pool:
            return list(pool.map(ask, self.relays))

    def _connect(self, relay: str) -> ClientConnection:
        return connect(
            relay,
            open_timeout=self._timeout,
            close_timeout=min(self._timeout, 2.0),
            max_size=MAX_MESSAGE,
            ping_interval=None,  # one short exchange per connection
        )

    def _recv(self, ws: ClientConnection, deadline: float) -> list[Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return _message(ws.recv(timeout=left))

    def _publish_one(self, relay: str, event_id: str, frame: str) -> RelayAnswer:
        try:
            ws = self._connect(relay)
        except (OSError, WebSocketException) as exc:  # TimeoutError is an OSError
            return RelayAnswer(relay, "unreached", f"could not connect ({_describe(exc)})")
        with ws:
            try:
                ws.send(frame)
            except (OSError, WebSocketException) as exc:
                return RelayAnswer(relay, "maybe", f"connection lost while sending ({exc})")
            deadline = time.monotonic() + self._timeout
            notice = ""
            while True:
                try:
                    msg = self._recv(ws, deadline)
                except TimeoutError:
                    why = f"no OK within {self._timeout:g}s"
                    return RelayAnswer(
                        relay, "maybe", f"{why} (NOTICE {notice!r})" if notice else why
                    )
                except ConnectionClosed:
                    return RelayAnswer(relay, "maybe", "closed the connection without an OK")
                except (RelayError, OSError, WebSocketException) as exc:
                    return RelayAnswer(relay, "maybe", _describe(exc))
                if msg[0] == "NOTICE" and len(msg) > 1:
                    notice = str(msg[1])[:200]
                if msg[0] != "OK" or len(msg) < 3 or msg[1] != event_id:
                    continue  # AUTH challenges, notices, other subscriptions
                said = str(msg[3])[:300] if len(msg) > 3 else ""
                if msg[2] is True or said.startswith("duplicate:"):
                    return RelayAnswer(relay, "ok", said)
                outcome = "refused" if said.startswith(_REFUSED) else "busy"
                return RelayAnswer(relay, outcome, f"refused: {said or 'no reason given'}")

    def _query_one(self, relay: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events one relay has for these filters (REQ … EOSE); RelayError if it can't say."""
        sub = "syn-" + secrets.token_hex(6)
        try:
            with self._connect(relay) as ws:
                ws.send(_frame("REQ", sub, *filters))
                deadline = time.monotonic() + self._timeout
                found: list[dict[str, Any]] = []
                while True:
                    msg = self._recv(ws, deadline)
                    if msg[0] == "EVENT" and len(msg) >= 3 and msg[1] == sub:
                        if isinstance(msg[2], dict) and len(found) < MAX_COUNT_EVENTS:
                            found.append(msg[2])
                    elif msg[0] == "EOSE" and len(msg) >= 2 and msg[1] == sub:
                        ws.send(_frame("CLOSE", sub))
                        return found
                    elif msg[0] == "CLOSED" and len(msg) >= 2 and msg[1] == sub:
                        raise RelayError(f"closed the query: {str(msg[2:3])[:200]}")
        except TimeoutError as exc:
            raise RelayError(f"no end of stored events within {self._timeout:g}s") from exc
        except (OSError, WebSocketException) as exc:
            raise RelayError(_describe(exc)) from exc

    def _query(self, filters: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], list[str]]:
        """Each answering relay's events, and what went wrong with the others."""

        def ask(relay: str) -> list[dict[str, Any]] | str:
            try:
                return self._query_one(relay, filters)
            except RelayError as exc:
                return f"{relay}: {exc}"

        answers = self._each(ask)
        return [a for a in answers if isinstance(a, list)], [
            a for a in answers if isinstance(a, str)
        ]

    # ---- send ----------------------------------------------------------------------------

    def send(self, post: Post) -> Sent:
        event_id, event = self._event(post)
        frame = _frame("EVENT", event)
        answers = self._each(lambda relay: self._publish_one(relay, event_id, frame))
        ok = sum(a.outcome == "ok" for a in answers)
        failed = [a for a in answers if a.outcome != "ok"]
        if ok >= self.min_relays:
            for a in failed:  # more relays would be nice, but the note is out
                log.warning(
                    "channel %r (nostr): relay %s: %s (the note is on %d of %d relays)",
                    self.name, a.relay, a.message, ok, len(answers),
                )  # fmt: skip
            return self._sent(event_id, event)
        detail = "; ".join(f"{a.relay}: {a.message}" for a in failed)
        text = f"the note reached {ok} of {len(answers)} relays, {self.min_relays} needed: {detail}"
        possible = ok + sum(a.outcome in ("busy", "unreached", "maybe") for a in failed)
        if possible < self.min_relays:
            raise PermanentError(f"{text} (change the relays, or lower min_relays)")
        if any(a.outcome == "maybe" for a in failed):
            raise UnknownOutcome(text)  # the same event is sent again: a no-op where it is
        raise TransientError(f"{text} (nothing was stored where it failed; will retry)")

    def _sent(self, event_id: str, event: dict[str, Any]) -> Sent:
        author = str(event.get("pubkey") or "")
        return Sent(
            remote_id=event_id,
            remote_url=event_uri(event_id, author, self.relays),
            ref={"pubkey": author} if author else {},  # a reply's `p` tag names it
        )

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """The note if at least min_relays relays have it; None sends it again (a no-op
        on the relays that have it)."""
        if post.progress.get("event") is None:
            return None  # never signed, so never sent
        event_id, event = self._event(post)
        answers, _ = self._query([{"ids": [event_id]}])
        have = sum(any(ev.get("id") == event_id for ev in found) for found in answers)
        return self._sent(event_id, event) if have >= self.min_relays else None

    # ---- counts --------------------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Reactions (kind 7, not "-"), replies (kind 1) and reposts (kind 6) that tag the
        note, from every relay that answers, each event counted once."""
        if not re.fullmatch(r"[0-9a-f]{64}", remote_id or ""):
            raise PermanentError(f"{remote_id!r} is not a Nostr event id")
        filters = [{"kinds": [k], "#e": [remote_id], "limit": MAX_COUNT_EVENTS} for k in (7, 1, 6)]
        answers, errors = self._query(filters)
        if not answers:
            raise TransientError("no relay answered: " + "; ".join(errors))
        seen: dict[str, dict[str, Any]] = {}
        for found in answers:
            for ev in found:
                eid = ev.get("id")
                if isinstance(eid, str) and eid not in seen and _references(ev, remote_id):
                    seen[eid] = ev
        genuine = [ev for ev in seen.values() if _genuine(ev)]
        return {
            "likes": sum(ev.get("kind") == 7 and ev.get("content") != "-" for ev in genuine),
            "replies": sum(ev.get("kind") == 1 for ev in genuine),
            "reposts": sum(ev.get("kind") == 6 for ev in genuine),
        }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__

"""A fake Bluesky PDS: the XRPC methods syndicator uses, with the PDS's error shapes.

    com.atproto.server.createSession / refreshSession
    com.atproto.repo.putRecord / createRecord / getRecord
    com.atproto.identity.resolveHandle
    app.bsky.feed.getPosts (the AppView's, proxied by a real PDS): a post's counts come
        from `set_counts(uri, likes=..., reposts=..., replies=..., quotes=...)`

putRecord with the same rkey and an identical record is a no-op that answers the same
uri and cid (as a real repo does); a different record at the same rkey is an update and
is recorded in `overwrites`. Errors are {"error": "...", "message": "..."} with the
status a PDS uses (400 InvalidRecord/RecordNotFound/ExpiredToken, 401
AuthenticationRequired, 429 RateLimitExceeded with ratelimit-* headers).

    with FakePDS(handle="pod.example.com", password="app-pass") as pds:
        pds.handles["guest.bsky.social"] = "did:plc:guest"
        ... service = pds.url ...
        assert pds.records[("app.bsky.feed.post", rkey)]["text"] == "..."
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import FakeServer, Received, Reply

_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]*\.)+[a-zA-Z][a-zA-Z0-9]*$")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _jwt(payload: dict[str, Any]) -> str:
    sig = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{_b64({'alg': 'HS256', 'typ': 'at+jwt'})}.{_b64(payload)}.{sig}"


def fake_cid(record: dict[str, Any]) -> str:
    """A CID-looking string that depends only on the record's content."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).digest()
    bits = "".join(f"{b:08b}" for b in digest)
    return "bafyrei" + "".join(_B32[int(bits[i : i + 5], 2)] for i in range(0, 260, 5))[:52]


def _err(status: int, error: str, message: str) -> Reply:
    return Reply(status, {"error": error, "message": message})


@dataclass
class Write:
    collection: str
    rkey: str
    record: dict[str, Any]
    cid: str
    kind: str  # "create" | "update"


class FakePDS(FakeServer):
    def __init__(
        self,
        *,
        handle: str = "pod.example.com",
        password: str = "app-pass-word",
        did: str = "did:plc:podexample0000000000000",
        access_ttl: float = 7200.0,
    ) -> None:
        super().__init__()
        self.handle, self.password, self.did = handle, password, did
        self.access_ttl = access_ttl
        self.handles: dict[str, str] = {handle: did}  # what resolveHandle knows
        self.records: dict[tuple[str, str], dict[str, Any]] = {}  # (collection, rkey) -> record
        self.cids: dict[tuple[str, str], str] = {}
        self.writes: list[Write] = []  # every create or change of a record
        self.blobs: dict[str, bytes] = {}  # uploadBlob: cid -> the uploaded bytes
        self.overwrites: list[Write] = []  # changes of an existing record (should stay empty)
        self.sessions_created = 0
        self.sessions_refreshed = 0
        self._access: dict[str, float] = {}  # token -> expiry
        self._refresh: set[str] = set()
        self._rev = 0
        self.counts: dict[str, dict[str, int]] = {}  # post uri -> likeCount etc.

    def env(self, channel: str) -> dict[str, str]:
        return {f"SYNDICATOR_{channel.upper().replace('-', '_')}_APP_PASSWORD": self.password}

    def revoke_sessions(self) -> None:
        """Forget every token (as after a password change): the next call answers 401."""
        with self.lock:
            self._access.clear()
            self._refresh.clear()

    def posts(self) -> list[dict[str, Any]]:
        """The app.bsky.feed.post records now in the repo."""
        with self.lock:
            return [r for (c, _), r in self.records.items() if c == "app.bsky.feed.post"]

    def set_counts(self, uri: str, **counts: int) -> None:
        """What listeners did with a post: likes, reposts, replies, quotes (others stay)."""
        with self.lock:
            self.counts.setdefault(uri, {}).update(counts)

    def delete_record(self, collection: str, rkey: str) -> None:
        with self.lock:
            self.records.pop((collection, rkey), None)

    def control(self, req: Received) -> Reply:
        """POST /_fake/counts {"uri": ..., "likes": 3, ...}: set_counts over HTTP."""
        if req.method == "POST" and req.path == "/_fake/counts":
            spec = dict(req.json() or {})
            self.set_counts(str(spec.pop("uri")), **{k: int(v) for k, v in spec.items()})
            return Reply(200, {"ok": True})
        return super().control(req)

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        reply = _err(429, "RateLimitExceeded", "Rate Limit Exceeded")
        reply.headers = {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(time.time() + reset_in)),
            "ratelimit-policy": "5000;w=3600",
        }
        if retry_after is not None:
            reply.headers["retry-after"] = str(int(retry_after))
        return reply

    # ---- sessions ------------------------------------------------------------------------

    def _new_session(self) -> dict[str, Any]:
        now = int(time.time())
        access = _jwt(
            {"scope": "com.atproto.appPass", "sub": self.did, "iat": now,
             "exp": int(now + self.access_ttl), "aud": "did:web:fake.pds"}
        )  # fmt: skip
        refresh = _jwt(
            {"scope": "com.atproto.refresh", "sub": self.did, "iat": now, "exp": now + 86400 * 60,
             "jti": secrets.token_hex(8), "aud": "did:web:fake.pds"}
        )  # fmt: skip
        self._access[access] = now + self.access_ttl
        self._refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handle,
            "did": self.did,
            "active": True,
        }

    def _bearer(self, req: Received) -> str | None:
        auth = req.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _check_access(self, req: Received) -> Reply | None:
        token = self._bearer(req)
        if token is None:
            return _err(401, "AuthenticationRequired", "Authentication Required")
        with self.lock:
            exp = self._access.get(token)
        if exp is None:
            return _err(401, "AuthenticationRequired", "Token could not be verified")
        if exp < time.time():
            return _err(400, "ExpiredToken", "Token has expired")
        return None

    # ---- XRPC ----------------------------------------------------------------------------

    def app(self, req: Received) -> Reply:
        if not req.path.startswith("/xrpc/"):
            return _err(404, "NotFound", "Not Found")
        method = req.path[len("/xrpc/") :]
        handler = {
            "com.atproto.server.createSession": self._create_session,
            "com.atproto.server.refreshSession": self._refresh_session,
            "com.atproto.repo.putRecord": self._put_record,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.getRecord": self._get_record,
            "com.atproto.identity.resolveHandle": self._resolve_handle,
            "app.bsky.feed.getPosts": self._get_posts,
            "com.atproto.repo.uploadBlob": self._upload_blob,
        }.get(method)
        if handler is None:
            return _err(501, "MethodNotImplemented", f"Method Not Implemented: {method}")
        return handler(req)

    def _create_session(self, req: Received) -> Reply:
        data = req.json() or {}
        ident = data.get("identifier")
        if ident not in (self.handle, self.did) or data.get("password") != self.password:
            return _err(401, "AuthenticationRequired", "Invalid identifier or password")
        with self.lock:
            self.sessions_created += 1
            return Reply(200, self._new_session())

    def _refresh_session(self, req: Received) -> Reply:
        token = self._bearer(req)
        with self.lock:
            if token not in self._refresh:
                return _err(400, "ExpiredToken", "Token has been revoked")
            self._refresh.discard(token)
            self.sessions_refreshed += 1
            return Reply(200, self._new_session())

    def _resolve_handle(self, req: Received) -> Reply:
        handle = (req.arg("handle") or "").lower()
        did = self.handles.get(handle)
        if did is None:
            return _err(400, "InvalidRequest", "Unable to resolve handle")
        return Reply(200, {"did": did})

    def _upload_blob(self, req: Received) -> Reply:
        denied = self._check_access(req)
        if denied is not None:
            return denied
        if not req.body:
            return _err(400, "InvalidRequest", "empty blob")
        cid = "bafkrei" + hashlib.sha256(req.body).hexdigest()[:52]
        with self.lock:
            self.blobs[cid] = req.body
        mime = req.headers.get("content-type") or "application/octet-stream"
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(req.body)}
        return Reply(200, {"blob": blob})

    def _uri(self, collection: str, rkey: str) -> str:
        return f"at://{self.did}/{collection}/{rkey}"

    def _validate(self, data: dict[str, Any]) -> Reply | None:
        if data.get("repo") not in (self.did, self.handle):
            return _err(400, "InvalidRequest", f"Could not find repo: {data.get('repo')}")
        collection = data.get("collection")
        if not isinstance(collection, str) or not _NSID.match(collection):
            return _err(400, "InvalidRequest", "Invalid collection")
        record = data.get("record")
        if not isinstance(record, dict):
            return _err(400, "InvalidRequest", "record must be an object")
        if record.get("$type") != collection:
            return _err(400, "InvalidRecord", "Invalid $type: must match the collection")
        if collection == "app.bsky.feed.post":
            return _validate_post(record)
        return None

    def _write(self, collection: str, rkey: str, record: dict[str, Any]) -> Reply:
        key = (collection, rkey)
        cid = fake_cid(record)
        with self.lock:
            before = self.records.get(key)
            if before != record:
                w = Write(collection, rkey, record, cid, "update" if before else "create")
                self.writes.append(w)
                if before is not None:
                    self.overwrites.append(w)
                self.records[key] = record
                self.cids[key] = cid
                self._rev += 1
            rev = f"3l{self._rev:011d}"
        return Reply(
            200,
            {
                "uri": self._uri(collection, rkey),
                "cid": cid,
                "commit": {"cid": fake_cid({"rev": rev}), "rev": rev},
                "validationStatus": "valid",
            },
        )

    def _put_record(self, req: Received) -> Reply:
        denied = self._check_access(req)
        if denied:
            return denied
        data = req.json() or {}
        rkey = data.get("rkey")
        if not isinstance(rkey, str) or not _RKEY.match(rkey) or rkey in (".", ".."):
            return _err(400, "InvalidRequest", f"Invalid record key: {rkey!r}")
        invalid = self._validate(data)
        if invalid:
            return invalid
        return self._write(data["collection"], rkey, data["record"])

    def _create_record(self, req: Received) -> Reply:
        denied = self._check_access(req)
        if denied:
            return denied
        data = req.json() or {}
        invalid = self._validate(data)
        if invalid:
            return invalid
        from syndicator.channels.tids import make_tid

        rkey = data.get("rkey") or make_tid(datetime.now().astimezone(), secrets.randbelow(1024))
        with self.lock:
            if (data["collection"], rkey) in self.records:
                return _err(400, "InvalidRequest", "Record already exists")
        return self._write(data["collection"], rkey, data["record"])

    def _get_record(self, req: Received) -> Reply:
        repo, collection, rkey = req.arg("repo"), req.arg("collection"), req.arg("rkey")
        if repo not in (self.did, self.handle):
            return _err(400, "InvalidRequest", f"Could not find repo: {repo}")
        key = (collection or "", rkey or "")
        with self.lock:
            record = self.records.get(key)
            cid = self.cids.get(key)
        if record is None:
            return _err(400, "RecordNotFound", f"Could not locate record: {self._uri(*key)}")
        return Reply(200, {"uri": self._uri(*key), "cid": cid, "value": record})

    def _get_posts(self, req: Received) -> Reply:
        denied = self._check_access(req)
        if denied:
            return denied
        uris = req.query.get("uris") or []
        if not uris or len(uris) > 25:
            return _err(400, "InvalidRequest", "uris must hold 1 to 25 items")
        posts = []
        for uri in uris:
            m = re.fullmatch(r"at://([^/]+)/([^/]+)/([^/]+)", uri)
            if not m or m.group(1) not in (self.did, self.handle):
                continue
            key = (m.group(2), m.group(3))
            with self.lock:
                record, cid = self.records.get(key), self.cids.get(key)
                counts = dict(self.counts.get(uri, {}))
            if record is None:
                continue  # as the AppView does: a missing post is left out, no error
            posts.append(
                {
                    "uri": uri,
                    "cid": cid,
                    "author": {"did": self.did, "handle": self.handle},
                    "record": record,
                    "indexedAt": record.get("createdAt"),
                    "likeCount": counts.get("likes", 0),
                    "repostCount": counts.get("reposts", 0),
                    "replyCount": counts.get("replies", 0),
                    "quoteCount": counts.get("quotes", 0),
                }
            )
        return Reply(200, {"posts": posts})


def _validate_post(record: dict[str, Any]) -> Reply | None:
    text = record.get("text")
    if not isinstance(text, str):
        return _err(400, "InvalidRecord", "Record/text must be a string")
    if len(text) > 300 or len(text.encode()) > 3000:
        return _err(400, "InvalidRecord", "Record/text must not be longer than 300 graphemes")
    created = record.get("createdAt")
    try:
        datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return _err(400, "InvalidRecord", "Record/createdAt must be an valid datetime string")
    size = len(text.encode())
    for i, facet in enumerate(record.get("facets") or []):
        idx = facet.get("index") or {}
        start, end = idx.get("byteStart"), idx.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            return _err(400, "InvalidRecord", f"Record/facets/{i}/index is out of range")
        if not facet.get("features"):
            return _err(400, "InvalidRecord", f"Record/facets/{i}/features must not be empty")
    embed = record.get("embed")
    if embed is not None and embed.get("$type") == "app.bsky.embed.images":
        images = embed.get("images") or []
        if not images or any("$link" not in (i.get("image") or {}).get("ref", {}) for i in images):
            return _err(400, "InvalidRecord", "Record/embed/images must hold blob refs")
        return None
    if embed is not None:
        if embed.get("$type") != "app.bsky.embed.external":
            return _err(400, "InvalidRecord", "Record/embed has an unknown $type")
        ext = embed.get("external") or {}
        for field in ("uri", "title", "description"):
            if not isinstance(ext.get(field), str):
                return _err(400, "InvalidRecord", f"Record/embed/external must have {field}")
    return None

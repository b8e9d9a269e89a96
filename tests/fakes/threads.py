"""A fake Threads API (Meta's graph.threads.net) on 127.0.0.1, with the common fault injection.

    POST /v1.0/{user}/threads           media_type=TEXT, text, link_attachment -> container
                                        media_type=IMAGE, image_url, text, alt_text
    POST /v1.0/{user}/threads_publish   creation_id                          -> the thread
    GET  /v1.0/{user}/threads           the user's threads, newest first (since, limit, after)
    GET  /v1.0/{id}                     a container (status, error_message) or a thread
    GET  /v1.0/{thread}/insights        metric=views,likes,replies,reposts,quotes

Parameters come in the query string or a form body, as Meta accepts both. Requests must
carry the token (`Authorization: Bearer` or `access_token`), else Meta's code-190 error.
A text over 500 characters (an emoji counts as its UTF-8 bytes) is refused at creation; a
container publishes once (a second publish is refused, as Meta does). An IMAGE container
fetches its `image_url` over HTTP at creation, as Meta does (a public URL, no upload) and
keeps the bytes; one it can't fetch is in status ERROR. `image_ready_after = n` leaves an
IMAGE container IN_PROGRESS for its first n status reads (publishing it then is refused
with Meta's "not ready" error). `link_attachment` is refused on an IMAGE container.

    with FakeThreads() as th:
        env = th.env("threads")                 # SYNDICATOR_THREADS_ACCESS_TOKEN=...
        ... api_url = th.api_url, user_id = th.user_id ...
        assert [t.text for t in th.threads] == [...]
        th.threads[0].image                     # the bytes Meta fetched for an image post
        th.set_status(container_id, "EXPIRED")  # or POST /_fake/containers/{id} {"status": ...}
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import emoji
import grapheme
import httpx

from .base import FakeServer, Received, Reply

_STATUSES = ("EXPIRED", "ERROR", "FINISHED", "IN_PROGRESS", "PUBLISHED")
_METRICS = ("views", "likes", "replies", "reposts", "quotes", "shares")


def _error(status: int, message: str, code: int, **extra: Any) -> Reply:
    body = {"error": {"message": message, "type": "OAuthException", "code": code,
                      "fbtrace_id": "AbCdEfGhIjK", **extra}}  # fmt: skip
    return Reply(status, body)


def _meta_length(text: str) -> int:
    """Meta's rule for the 500: characters, an emoji as its UTF-8 bytes."""
    return sum(
        len(g.encode("utf-8")) if emoji.emoji_count(g) else 1 for g in grapheme.graphemes(text)
    )


@dataclass
class Container:
    id: str
    text: str
    link: str | None
    status: str = "FINISHED"
    error_message: str | None = None
    media_id: str | None = None
    reply_to: str | None = None  # reply_to_id: the post it answers
    media_type: str = "TEXT"
    image_url: str | None = None
    alt_text: str | None = None
    image: bytes | None = None  # what was fetched from image_url
    reads_left: int = 0  # status reads before an IN_PROGRESS image container is FINISHED


@dataclass
class Thread:
    id: str
    text: str
    link: str | None
    created_at: datetime
    container_id: str | None = None
    insights: dict[str, int] = field(default_factory=dict)
    reply_to: str | None = None  # the post it answers (reply_to_id)
    media_type: str = "TEXT"
    image_url: str | None = None
    alt_text: str | None = None
    image: bytes | None = None

    @property
    def shortcode(self) -> str:
        return f"C{self.id[-8:]}"


class FakeThreads(FakeServer):
    user_id = "17841400000000001"
    username = "podbot"
    max_length = 500

    def __init__(self, *, token: str = "threads-token") -> None:
        super().__init__()
        self.token = token
        self.containers: dict[str, Container] = {}
        self.threads: list[Thread] = []  # oldest first
        self._ids = itertools.count(18_000_000_000_000_001)
        self.insights_allowed = True  # False: the token lacks threads_manage_insights
        self.image_ready_after = 0  # status reads an IMAGE container stays IN_PROGRESS
        self.fetches: list[str] = []  # image URLs fetched, in order

    @property
    def api_url(self) -> str:
        return self.url + "/v1.0"

    def env(self, channel: str) -> dict[str, str]:
        """The environment a syndicator channel named `channel` needs to talk to this fake."""
        return {f"SYNDICATOR_{channel.upper().replace('-', '_')}_ACCESS_TOKEN": self.token}

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        reply = _error(429, "Application request limit reached", 4, is_transient=True)
        reply.headers["Retry-After"] = str(
            int(retry_after if retry_after is not None else reset_in)
        )
        return reply

    # ---- test helpers --------------------------------------------------------------------

    def add_thread(self, text: str, created_at: datetime | None = None) -> Thread:
        """A thread posted some other way (by hand, in the app)."""
        with self.lock:
            t = Thread(str(next(self._ids)), text, None, created_at or datetime.now(UTC))
            self.threads.append(t)
            return t

    def set_status(self, container_id: str, status: str, error_message: str | None = None) -> None:
        with self.lock:
            c = self.containers[container_id]
            c.status, c.error_message = status, error_message

    def set_insights(self, media_id: str, **counts: int) -> None:
        with self.lock:
            next(t for t in self.threads if t.id == media_id).insights.update(counts)

    def creates(self) -> list[Received]:
        return self.requests("POST", r"/threads$")

    def publishes(self) -> list[Received]:
        return self.requests("POST", r"/threads_publish$")

    def control(self, req: Received) -> Reply:
        m = re.fullmatch(r"/_fake/containers/(\d+)", req.path)
        if req.method == "POST" and m and m.group(1) in self.containers:
            spec = req.json() or {}
            self.set_status(m.group(1), spec.get("status", "EXPIRED"), spec.get("error_message"))
            return Reply(200, {"ok": True})
        return super().control(req)

    # ---- the API -------------------------------------------------------------------------

    def _params(self, req: Received) -> dict[str, str]:
        params = {k: v[0] for k, v in req.query.items()}
        ctype = req.headers.get("content-type", "")
        if req.body and "application/x-www-form-urlencoded" in ctype:
            form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
            params.update({k: v[0] for k, v in form.items()})
        elif req.body and "json" in ctype:
            params.update({k: str(v) for k, v in json.loads(req.body).items()})
        return params

    def app(self, req: Received) -> Reply:
        params = self._params(req)
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {self.token}" and params.get("access_token") != self.token:
            return _error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        parts = req.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "v1.0":
            return _error(404, "Unknown path components", 2500)
        route = parts[1:]
        with self.lock:
            if route[0] in (self.user_id, "me") and len(route) == 2:
                if req.method == "POST" and route[1] == "threads":
                    return self._create(params)
                if req.method == "POST" and route[1] == "threads_publish":
                    return self._publish(params)
                if req.method == "GET" and route[1] == "threads":
                    return self._list(params)
            if req.method == "GET" and len(route) == 2 and route[1] == "insights":
                return self._insights(route[0], params)
            if req.method == "GET" and len(route) == 1:
                return self._object(route[0])
        return _error(400, "Unsupported request - method type or path", 100)

    def _create(self, p: dict[str, str]) -> Reply:
        kind = p.get("media_type")
        if kind not in ("TEXT", "IMAGE"):
            return _error(400, "The parameter media_type is required (TEXT, IMAGE)", 100)
        text = p.get("text", "")
        if kind == "TEXT" and not text:
            return _error(400, "The parameter text is required for TEXT posts", 100)
        if kind == "IMAGE" and not p.get("image_url"):
            return _error(400, "The parameter image_url is required for IMAGE posts", 100)
        if kind == "IMAGE" and p.get("link_attachment"):
            return _error(400, "The parameter link_attachment is only for TEXT posts", 100)
        if _meta_length(text) > self.max_length:
            return _error(400, "Param text must be at most 500 characters long.", 100,
                          error_subcode=2207006)  # fmt: skip
        parent = p.get("reply_to_id")
        if parent is not None and not any(t.id == parent for t in self.threads):
            return _error(400, "The reply_to_id post does not exist", 100)
        c = Container(str(next(self._ids)), text, p.get("link_attachment"), reply_to=parent,
                      media_type=kind, image_url=p.get("image_url"),
                      alt_text=p.get("alt_text"))  # fmt: skip
        if kind == "IMAGE":
            self._fetch(c)
        self.containers[c.id] = c
        return Reply(200, {"id": c.id})

    def _fetch(self, c: Container) -> None:
        """Meta cURLs the image from the public server: no answer or no 200 is an ERROR."""
        assert c.image_url
        self.fetches.append(c.image_url)
        try:
            resp = httpx.get(c.image_url, timeout=5, follow_redirects=True)
        except httpx.HTTPError:
            resp = None
        if resp is None or resp.status_code != 200 or not resp.content:
            c.status, c.error_message = "ERROR", "UNKNOWN"
            return
        c.image = resp.content
        if self.image_ready_after:
            c.status, c.reads_left = "IN_PROGRESS", self.image_ready_after

    def _publish(self, p: dict[str, str]) -> Reply:
        c = self.containers.get(p.get("creation_id", ""))
        if c is None:
            return _error(400, "The media container does not exist", 100, error_subcode=4279009)
        if c.status == "PUBLISHED":
            return _error(400, "The media has already been published", 100,
                          error_subcode=4279002)  # fmt: skip
        if c.status != "FINISHED":
            return _error(400, f"The media container is {c.status} and can't be published",
                          9007, error_subcode=2207027)  # fmt: skip
        t = Thread(
            str(next(self._ids)), c.text, c.link, datetime.now(UTC), c.id, reply_to=c.reply_to,
            media_type=c.media_type, image_url=c.image_url, alt_text=c.alt_text, image=c.image,
        )  # fmt: skip
        self.threads.append(t)
        c.status, c.media_id = "PUBLISHED", t.id
        return Reply(200, {"id": t.id})

    def _shown(self, t: Thread) -> dict[str, Any]:
        return {
            "id": t.id,
            "media_product_type": "THREADS",
            "media_type": "IMAGE" if t.media_type == "IMAGE" else "TEXT_POST",
            "media_url": t.image_url,
            "alt_text": t.alt_text,
            "permalink": f"https://www.threads.net/@{self.username}/post/{t.shortcode}",
            "username": self.username,
            "text": t.text,
            "timestamp": t.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "shortcode": t.shortcode,
            "link_attachment_url": t.link,
        }

    def _list(self, p: dict[str, str]) -> Reply:
        newest = sorted(self.threads, key=lambda t: (t.created_at, t.id), reverse=True)
        if p.get("since"):
            since = datetime.fromtimestamp(int(p["since"]), UTC)
            newest = [t for t in newest if t.created_at >= since]
        limit = min(int(p.get("limit") or 25), 100)
        start = int(p["after"]) if p.get("after") else 0
        page = newest[start : start + limit]
        fields = (p.get("fields") or "id").split(",")
        body: dict[str, Any] = {
            "data": [{k: v for k, v in self._shown(t).items() if k in fields} for t in page]
        }
        cursors = {"before": str(start)}
        if start + limit < len(newest):
            cursors["after"] = str(start + limit)
        body["paging"] = {"cursors": cursors}
        return Reply(200, body)

    def _object(self, oid: str) -> Reply:
        c = self.containers.get(oid)
        if c is not None:
            if c.reads_left:
                c.reads_left -= 1
                c.status = "IN_PROGRESS" if c.reads_left else "FINISHED"
            body = {"id": c.id, "status": c.status}
            if c.error_message:
                body["error_message"] = c.error_message
            return Reply(200, body)
        t = next((t for t in self.threads if t.id == oid), None)
        if t is None:
            return _error(400, f"Object with ID '{oid}' does not exist", 100, error_subcode=33)
        return Reply(200, self._shown(t))

    def _insights(self, oid: str, p: dict[str, str]) -> Reply:
        t = next((t for t in self.threads if t.id == oid), None)
        if t is None:
            return _error(400, f"Object with ID '{oid}' does not exist", 100, error_subcode=33)
        if not self.insights_allowed:
            return _error(403, "Application does not have permission for this action", 10)
        metrics = [m for m in (p.get("metric") or "").split(",") if m]
        if not metrics or any(m not in _METRICS for m in metrics):
            return _error(400, "(#100) metric must be one of " + ", ".join(_METRICS), 100)
        data = [
            {"name": m, "period": "lifetime", "values": [{"value": t.insights.get(m, 0)}],
             "title": m.title(), "id": f"{t.id}/insights/{m}/lifetime"}
            for m in metrics
        ]  # fmt: skip
        return Reply(200, {"data": data})

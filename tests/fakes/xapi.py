"""A fake X (Twitter) API v2: POST /2/tweets, GET /2/users/me, GET /2/users/:id/tweets,
GET /2/tweets?ids=...&tweet.fields=public_metrics (counts from `Tweet.metrics`; with
`read_refused = True` it answers the 403 "client-not-enrolled" of X's lower API tiers).
and image uploads (POST /2/media/upload, multipart; POST /2/media/metadata for alt text):
`uploads` keeps each upload's bytes by media id, a tweet its `media_ids`.

Requests must carry an OAuth 1.0a user-context header whose HMAC-SHA1 signature checks
out against the fake's consumer and token secrets (else 401, as X answers). Posting the
same text twice gets X's "duplicate content" 403. The timeline shows texts the way X
does: links rewritten to t.co and "&", "<", ">" HTML-escaped.

    with FakeX() as x:
        env = x.env("x")          # SYNDICATOR_X_API_KEY=... for a channel named "x"
        ... api_url = x.url ...
        assert len(x.tweets) == 1
"""

from __future__ import annotations

import html
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from oauthlib.oauth1.rfc5849 import signature

from .base import FakeServer, Received, Reply, multipart_parts

_URL = re.compile(r"https?://\S+")


@dataclass
class Tweet:
    id: str
    text: str  # as posted
    created_at: datetime
    author_id: str
    # public_metrics: like_count, retweet_count, reply_count, quote_count, impression_count
    metrics: dict[str, int] = field(default_factory=dict)
    media_ids: tuple[str, ...] = ()

    @property
    def shown_text(self) -> str:
        """What X's API returns: links as t.co, and HTML-escaped."""
        counter = itertools.count(1)
        text = _URL.sub(lambda m: f"https://t.co/fake{next(counter):06d}", self.text)
        return html.escape(text, quote=False)


def _problem(status: int, title: str, detail: str, **extra: Any) -> Reply:
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status, **extra}
    return Reply(status, body, content_type="application/problem+json")


class FakeX(FakeServer):
    user_id = "1500000000000000001"
    username = "podbot"

    def __init__(
        self,
        *,
        api_key: str = "consumer-key",
        api_secret: str = "consumer-secret",
        access_token: str = "1500000000000000001-token",
        access_token_secret: str = "token-secret",
        duplicate_check: bool = True,
        max_length: int = 280,
    ) -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.duplicate_check = duplicate_check
        self.max_length = max_length
        self.tweets: list[Tweet] = []
        self.uploads: dict[str, bytes] = {}  # media id -> the uploaded bytes
        self.alt_texts: dict[str, str] = {}  # media id -> alt text
        self._ids = itertools.count(1_800_000_000_000_000_000)
        self.verify_signatures = True
        self.read_refused = False  # GET /2/tweets answers X's tier 403

    def set_metrics(self, tweet_id: str, **metrics: int) -> None:
        """What listeners did with a tweet (like_count=3, retweet_count=1, ...)."""
        with self.lock:
            tweet = next(t for t in self.tweets if t.id == tweet_id)
            tweet.metrics.update(metrics)

    def delete_tweet(self, tweet_id: str) -> None:
        with self.lock:
            self.tweets = [t for t in self.tweets if t.id != tweet_id]

    def env(self, channel: str) -> dict[str, str]:
        """The environment a syndicator channel named `channel` needs to talk to this fake."""
        p = f"SYNDICATOR_{channel.upper().replace('-', '_')}_"
        return {
            p + "API_KEY": self.api_key,
            p + "API_SECRET": self.api_secret,
            p + "ACCESS_TOKEN": self.access_token,
            p + "ACCESS_TOKEN_SECRET": self.access_token_secret,
        }

    def add_tweet(self, text: str, created_at: datetime | None = None) -> Tweet:
        """Put a tweet on the account's timeline (as if posted earlier)."""
        with self.lock:
            t = Tweet(str(next(self._ids)), text, created_at or datetime.now(UTC), self.user_id)
            self.tweets.append(t)
            return t

    def control(self, req: Received) -> Reply:
        """POST /_fake/metrics {"id": ..., "like_count": 3, ...} (set_metrics over HTTP);
        POST /_fake/read_refused {"refused": true} (X's tier 403 on reads)."""
        spec = dict(req.json() or {}) if req.method == "POST" else {}
        if req.path == "/_fake/metrics" and spec:
            self.set_metrics(str(spec.pop("id")), **{k: int(v) for k, v in spec.items()})
            return Reply(200, {"ok": True})
        if req.path == "/_fake/read_refused" and spec:
            self.read_refused = bool(spec.get("refused"))
            return Reply(200, {"ok": True})
        return super().control(req)

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        reply = _problem(429, "Too Many Requests", "Too Many Requests")
        reply.headers = {
            "x-rate-limit-limit": "200",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time() + reset_in)),
        }
        if retry_after is not None:
            reply.headers["Retry-After"] = str(int(retry_after))
        return reply

    # ---- OAuth 1.0a ----------------------------------------------------------------------

    def _authorized(self, req: Received) -> bool:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("OAuth "):
            return False
        params = dict(
            (k, unquote(v)) for k, v in re.findall(r'(\w+)="([^"]*)"', auth[len("OAuth ") :])
        )
        if params.get("oauth_consumer_key") != self.api_key:
            return False
        if params.get("oauth_token") != self.access_token or "oauth_signature" not in params:
            return False
        if not self.verify_signatures:
            return True
        query = req.raw_query
        host = req.headers.get("host", f"127.0.0.1:{self.port}")
        uri = f"http://{host}{req.path}" + (f"?{query}" if query else "")
        collected = signature.collect_parameters(
            uri_query=query,
            headers={"Authorization": auth},
            exclude_oauth_signature=True,
            with_realm=False,
        )
        request = SimpleNamespace(
            params=collected, uri=uri, http_method=req.method, signature=params["oauth_signature"]
        )
        return signature.verify_hmac_sha1(request, self.api_secret, self.access_token_secret)

    # ---- the API -------------------------------------------------------------------------

    def app(self, req: Received) -> Reply:
        if not self._authorized(req):
            return _problem(401, "Unauthorized", "Unauthorized")
        if req.method == "POST" and req.path == "/2/tweets":
            return self._create(req)
        if req.method == "POST" and req.path == "/2/media/upload":
            return self._upload(req)
        if req.method == "POST" and req.path == "/2/media/metadata":
            data = req.json() or {}
            with self.lock:
                if data.get("id") not in self.uploads:
                    return _problem(400, "Invalid Request", "no such media id")
                self.alt_texts[data["id"]] = data["metadata"]["alt_text"]["text"]
            return Reply(200, {"data": {"associated_metadata": True}})
        if req.method == "GET" and req.path == "/2/users/me":
            return Reply(
                200, {"data": {"id": self.user_id, "name": "Pod", "username": self.username}}
            )
        if req.method == "GET" and req.path == "/2/tweets":
            return self._lookup(req)
        m = re.fullmatch(r"/2/users/(\d+)/tweets", req.path)
        if req.method == "GET" and m:
            return self._timeline(m.group(1), req)
        return _problem(404, "Not Found Error", f"no route {req.method} {req.path}")

    def _upload(self, req: Received) -> Reply:
        parts = multipart_parts(req)
        media = parts.get("media")
        if not media:
            return _problem(400, "Invalid Request", "media: required")
        with self.lock:
            media_id = str(next(self._ids))
            self.uploads[media_id] = media
        return Reply(
            200,
            {"data": {"id": media_id, "media_key": f"3_{media_id}", "expires_after_secs": 86400}},
        )

    def _create(self, req: Received) -> Reply:
        data = req.json() or {}
        media_ids = tuple((data.get("media") or {}).get("media_ids") or ())
        with self.lock:
            if any(m not in self.uploads for m in media_ids):
                return _problem(400, "Invalid Request", "media.media_ids: unknown media id")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return Reply(
                400,
                {
                    "errors": [{"message": "text: must not be empty"}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
            )
        if len(text) > self.max_length:
            return _problem(403, "Forbidden", "Your Tweet text is too long.")
        with self.lock:
            if self.duplicate_check and any(t.text == text for t in self.tweets):
                return _problem(
                    403,
                    "Forbidden",
                    "You are not allowed to create a Tweet with duplicate content.",
                )
            t = self.add_tweet(text)
            t.media_ids = media_ids
        return Reply(
            201, {"data": {"id": t.id, "text": t.shown_text, "edit_history_tweet_ids": [t.id]}}
        )

    def _timeline(self, user_id: str, req: Received) -> Reply:
        if user_id != self.user_id:
            return Reply(200, {"meta": {"result_count": 0}})
        max_results = int(req.arg("max_results") or 10)
        if not 5 <= max_results <= 100:
            return _problem(400, "Invalid Request", "max_results must be between 5 and 100")
        start = req.arg("start_time")
        with self.lock:
            tweets = sorted(self.tweets, key=lambda t: int(t.id), reverse=True)
        if start:
            since = datetime.fromisoformat(start.replace("Z", "+00:00"))
            tweets = [t for t in tweets if t.created_at >= since]
        offset = int(req.arg("pagination_token") or 0)
        page = tweets[offset : offset + max_results]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if offset + max_results < len(tweets):
            meta["next_token"] = str(offset + max_results)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [
                {
                    "id": t.id,
                    "text": t.shown_text,
                    "created_at": t.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "edit_history_tweet_ids": [t.id],
                }
                for t in page
            ]
        return Reply(200, body)

    def _lookup(self, req: Received) -> Reply:
        if self.read_refused:
            return Reply(
                403,
                {
                    "client_id": "1",
                    "detail": "When authenticating requests to the Twitter API v2 endpoints, "
                    "you must use keys and tokens from a Twitter developer App that is "
                    "attached to a Project.",
                    "reason": "client-not-enrolled",
                    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
                    "title": "Client Forbidden",
                    "required_enrollment": "Appropriate Level of API Access",
                    "type": "https://api.twitter.com/2/problems/client-forbidden",
                },
            )
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            return _problem(400, "Invalid Request", "ids must hold 1 to 100 tweet ids")
        fields = (req.arg("tweet.fields") or "").split(",")
        with self.lock:
            found = {t.id: t for t in self.tweets if t.id in ids}
        data, errors = [], []
        for i in ids:
            t = found.get(i)
            if t is None:
                errors.append(
                    {
                        "value": i, "detail": f"Could not find tweet with ids: [{i}].",
                        "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                        "resource_id": i, "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                )  # fmt: skip
                continue
            item: dict[str, Any] = {
                "id": t.id,
                "text": t.shown_text,
                "edit_history_tweet_ids": [t.id],
            }
            if "public_metrics" in fields:
                item["public_metrics"] = {
                    "retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0,
                    "bookmark_count": 0, "impression_count": 0, **t.metrics,
                }  # fmt: skip
            data.append(item)
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return Reply(200, body)

"""X (Twitter): tweepy's API v2 `Client.create_tweet`, OAuth 1.0a user context.

tweepy 4.x builds every URL on a hard-coded "https://api.twitter.com" and sets no
timeout. `_XClient` gives it a requests session that moves each request onto the
configured `api_url` (keeping the route) and always sets a timeout; the OAuth 1.0a
signature is computed by requests on the final URL, so it stays valid.

X has no idempotency key. For a row whose outcome is unknown, `reconcile` reads the
account's own timeline for the frozen text; on a resend, X's "duplicate content" 403
means the text is already there, which counts as sent. The kind (config, length,
handles) is the package, `syndicator.channels.twitter`; this module is imported by its
`build()` only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import tweepy
from tweepy.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    TooManyRequests,
    TweepyException,
    TwitterServerError,
    Unauthorized,
)

from syndicator.channels import _net
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.twitter.shared import DEFAULT_LIMIT, UNKNOWN_POLICY

# How far before the row's frozen time a matching tweet may be (clock skew between us and X).
_SKEW = timedelta(minutes=10)
# Timeline pages (100 tweets each) read back before concluding "not posted".
_MAX_PAGES = 3
_DUPLICATE_CODES = {187}  # v1.1 "Status is a duplicate."


class _RebasingSession(requests.Session):
    """Sends tweepy's requests to `base` instead of api.twitter.com, with a timeout."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__()
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"api_url {base!r} is not an http(s) URL")
        self.base = base.rstrip("/")
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url if isinstance(url, str) else url.decode())
        rebased = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, rebased, *args, **kwargs)


class _XClient(tweepy.Client):
    """tweepy's v2 client on a configurable base URL, never without a timeout."""

    def __init__(self, *, api_url: str, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = _RebasingSession(api_url, timeout)


def _is_duplicate(exc: HTTPException) -> bool:
    if any(code in _DUPLICATE_CODES for code in exc.api_codes):
        return True
    return any("duplicate" in str(m).lower() for m in exc.api_messages)


def _message(exc: HTTPException) -> str:
    status = exc.response.status_code
    words = "; ".join(str(m) for m in exc.api_messages) or exc.response.reason or ""
    return f"X answered {status}: {words}".rstrip(": ")


class TwitterChannel:
    type = "twitter"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        api_secret: str,
        access_token: str,
        access_token_secret: str,
        api_url: str = "https://api.x.com",
        timeout: float = 20.0,
        limit: int | None = None,
        username: str | None = None,
    ) -> None:
        self.name = name
        self._limit = limit
        self._username = username  # the config's; else learned when the account is read
        self._client = _XClient(
            api_url=api_url,
            timeout=timeout,
            consumer_key=api_key,
            consumer_secret=api_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            return_type=dict,
            wait_on_rate_limit=False,  # never sleep in a send; the outbox schedules the retry
        )
        self._me: dict[str, Any] | None = None

    def limit(self) -> int:
        return self._limit or DEFAULT_LIMIT

    def close(self) -> None:
        self._client.session.close()

    # ---- send ----------------------------------------------------------------------------

    # X keeps an upload no post uses for 24 hours
    media_ttl = 20 * 3600.0

    def upload(self, post: Post) -> dict[str, Any]:
        """POST /2/media/upload, then the alt text with /2/media/metadata; an unanswered
        upload is only an orphan, so every failure but a refusal is retried."""
        assert post.image_file
        what = "uploading the image to X"
        c = self._client
        auth = tweepy.OAuth1UserHandler(
            c.consumer_key, c.consumer_secret, c.access_token, c.access_token_secret
        ).apply_auth()
        try:
            with open(post.image_file, "rb") as f:
                resp = c.session.post(
                    "https://api.x.com/2/media/upload",  # rebased onto api_url by the session
                    files={"media": (Path(post.image_file).name, f, post.image_type)},
                    data={"media_category": "tweet_image"},
                    auth=auth,
                )
        except OSError as exc:
            raise PermanentError(f"{what}: {exc}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(
                f"{what}: X answered {resp.status_code}",
                retry_after=_net.retry_after(resp.headers),
                status=resp.status_code,
            )
        if resp.status_code >= 400:
            raise PermanentError(f"{what}: X answered {resp.status_code}: {resp.text[:200]}")
        media_id = str(((resp.json() or {}).get("data") or {}).get("id") or "")
        if not media_id:
            raise TransientError(f"{what}: X answered without a media id")
        if post.image_alt:
            alt = {"alt_text": {"text": post.image_alt[:1000]}}  # X's limit
            try:
                c.request(
                    "POST",
                    "/2/media/metadata",
                    json={"id": media_id, "metadata": alt},
                    user_auth=True,
                )
            except (TweepyException, requests.RequestException) as exc:
                err = self._error(exc, "setting the image's alt text on X")
                raise TransientError(err.message, status=err.status) from exc
        return {"id": media_id}

    def send(self, post: Post) -> Sent:
        media_ids = [post.media["id"]] if post.media and post.media.get("id") else None
        try:
            resp = self._client.create_tweet(
                text=post.text, media_ids=media_ids, user_auth=True, **self._reply_fields(post)
            )
        except Forbidden as exc:
            if _is_duplicate(exc):
                # X refuses the same text twice: it is already on the timeline.
                return self._find_or_blank(post)
            raise PermanentError(_message(exc), status=403) from exc
        except (TweepyException, requests.RequestException) as exc:
            raise self._error(exc, "posting to X") from exc
        data = resp.get("data") or {}
        tweet_id = str(data["id"]) if data.get("id") else None
        if tweet_id is None:
            raise UnknownOutcome(f"X answered without a tweet id: {str(resp)[:200]}")
        return Sent(remote_id=tweet_id, remote_url=self._tweet_url(tweet_id))

    @staticmethod
    def _reply_fields(post: Post) -> dict[str, Any]:
        """A reply of a thread: create_tweet's `in_reply_to_tweet_id` (the parent)."""
        return {"in_reply_to_tweet_id": post.reply_to.remote_id} if post.reply_to else {}

    def _find_or_blank(self, post: Post) -> Sent:
        try:
            found = self.reconcile(post)
        except SendError:
            found = None
        return found or Sent(remote_id=None, remote_url=None)

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """Look for the frozen text on the account's own recent timeline."""
        try:
            me = self._whoami()
            since = _aware(post.created_at) - _SKEW
            token: str | None = None
            for _ in range(_MAX_PAGES):
                params: dict[str, Any] = {
                    "max_results": 100,
                    "exclude": ["retweets"],
                    "tweet_fields": ["created_at"],
                    "start_time": since,
                }
                if token:
                    params["pagination_token"] = token
                page = self._client.get_users_tweets(me["id"], user_auth=True, **params)
                for tweet in page.get("data") or []:
                    if _net.same_text(post.text, tweet.get("text", "")):
                        tid = str(tweet["id"])
                        return Sent(remote_id=tid, remote_url=self._tweet_url(tid))
                token = (page.get("meta") or {}).get("next_token")
                if not token:
                    return None
        except (TweepyException, requests.RequestException) as exc:
            err = self._error(exc, "reading the X timeline")
            raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
        raise UnknownOutcome(
            f"the post is not among the newest {_MAX_PAGES * 100} tweets since "
            f"{since:%Y-%m-%d %H:%M} UTC; check the account by hand"
        )

    def _whoami(self) -> dict[str, Any]:
        if self._me is None:
            self._me = self._client.get_me(user_auth=True)["data"]
        return self._me

    def _tweet_url(self, tweet_id: str) -> str:
        user = (self._me or {}).get("username") or self._username or "i/web"
        return f"https://x.com/{user}/status/{tweet_id}"

    # ---- what listeners did ----------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """public_metrics of one tweet (GET /2/tweets?ids=...&tweet.fields=public_metrics).
        X's lower API tiers refuse this read with 403: a PermanentError the caller notes."""
        what = f"reading the counts of tweet {remote_id}"
        try:
            resp = self._client.get_tweets(
                ids=[remote_id], tweet_fields=["public_metrics"], user_auth=True
            )
        except (TweepyException, requests.RequestException) as exc:
            raise _net.read_error(self._error(exc, what)) from exc
        tweet = next((t for t in resp.get("data") or [] if str(t.get("id")) == remote_id), None)
        if tweet is None:  # X answers 200 with an "errors" entry for a deleted tweet
            detail = "; ".join(
                str(e.get("detail") or e.get("title")) for e in resp.get("errors") or []
            )
            raise PermanentError(f"{what}: {detail or 'not found'}", status=404)
        m = tweet.get("public_metrics") or {}
        counts = {
            "likes": _net.count(m.get("like_count")),
            "reposts": _net.count(m.get("retweet_count")),
            "replies": _net.count(m.get("reply_count")),
            "quotes": _net.count(m.get("quote_count")),
        }
        if m.get("impression_count") is not None:
            counts["views"] = _net.count(m.get("impression_count"))
        return counts

    # ---- errors --------------------------------------------------------------------------

    def _error(self, exc: BaseException, what: str) -> SendError:
        if isinstance(exc, TooManyRequests):
            wait = _net.retry_after(exc.response.headers)
            if wait is None and exc.reset_time:
                wait = max(exc.reset_time - time.time(), 0.0)
            return TransientError(f"{what}: rate limited by X (429)", retry_after=wait, status=429)
        if isinstance(exc, TwitterServerError):
            return UnknownOutcome(f"{what}: {_message(exc)}", status=exc.response.status_code)
        if isinstance(exc, Unauthorized):
            return PermanentError(
                f"{what}: {_message(exc)} (check the API key/secret and access token/secret "
                "and that the app has read and write permission)",
                status=401,
            )
        if isinstance(exc, BadRequest | NotFound | Forbidden):
            return PermanentError(f"{what}: {_message(exc)}", status=exc.response.status_code)
        if isinstance(exc, HTTPException):
            status = exc.response.status_code
            if status in (408, 409, 425):
                return TransientError(f"{what}: {_message(exc)}", status=status)
            return PermanentError(f"{what}: {_message(exc)}", status=status)
        if isinstance(exc, requests.RequestException):
            return _net.transport_error(exc, what)
        return UnknownOutcome(f"{what}: {exc}")


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

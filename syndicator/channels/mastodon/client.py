"""Mastodon (and API-compatible servers): Mastodon.py's `status_post` with an Idempotency-Key.

The key is frozen on the delivery row, so resending an `unknown` row returns the status
the first attempt created instead of a second one (unknown_policy "idempotent": the
outbox simply sends again). Mastodon keeps keys for about an hour, so `reconcile` also
exists: it reads the account's recent statuses for the frozen text and returns the
status when found, or None (then a resend with the same key is safe). Call it before
resending a row that has been unknown for long.

Rate limits are raised, never slept on (ratelimit_method="throw"); the wait comes back
as TransientError.retry_after. The kind (config, length, handles) is the package,
`syndicator.channels.mastodon`; this module is imported by its `build()` only.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
    MastodonVersionError,
)

from syndicator import textutil
from syndicator.channels import _net
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.mastodon.shared import DEFAULT_LIMIT, UNKNOWN_POLICY

# A failed instance lookup is retried after this long (limit() is called while planning).
_LIMIT_RETRY = 300.0
_SKEW = timedelta(minutes=10)


class _Session(requests.Session):
    """Remembers the last response (per thread) so a 429's headers can be read."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self._local = threading.local()

    @property
    def last_response(self) -> requests.Response | None:
        return getattr(self._local, "response", None)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self._local.response = None
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        resp = super().request(method, url, *args, **kwargs)
        self._local.response = resp
        return resp


def html_to_text(content: str) -> str:
    """A status's HTML as plain text (paragraphs and <br> as line breaks)."""
    return textutil.html_to_text(content, lines=True)


def _api_error_parts(exc: MastodonAPIError) -> tuple[int | None, str]:
    """(status, message) from Mastodon.py's ('Mastodon API returned error', code, reason, msg)."""
    args = exc.args
    if len(args) >= 4 and isinstance(args[1], int):
        status, reason, msg = args[1], args[2], args[3]
        return status, f"{status} {reason}: {msg}" if msg else f"{status} {reason}"
    return None, " ".join(str(a) for a in args)


class MastodonChannel:
    type = "mastodon"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        instance: str,
        access_token: str,
        timeout: float = 20.0,
        limit: int | None = None,
        visibility: str = "public",
    ) -> None:
        self.name = name
        self.instance = instance
        self._limit = limit
        self._visibility = visibility
        self._session = _Session(timeout)
        self._api = Mastodon(
            access_token=access_token,
            api_base_url=instance,
            request_timeout=timeout,
            ratelimit_method="throw",
            version_check_mode="none",  # no network at construction
            session=self._session,
        )
        self._instance_limit: int | None = None
        self._limit_failed_at: float | None = None
        self._account_id: str | None = None

    def close(self) -> None:
        self._session.close()

    # ---- limit ---------------------------------------------------------------------------

    def limit(self) -> int:
        """cfg.limit, else the instance's advertised max_characters (cached), else 500."""
        if self._limit:
            return self._limit
        if self._instance_limit is not None:
            return self._instance_limit
        if self._limit_failed_at and time.monotonic() - self._limit_failed_at < _LIMIT_RETRY:
            return DEFAULT_LIMIT
        found = self._read_instance_limit()
        if found is None:
            self._limit_failed_at = time.monotonic()
            return DEFAULT_LIMIT
        self._instance_limit = found
        return found

    def _read_instance_limit(self) -> int | None:
        for read in (self._api.instance_v2, self._api.instance_v1):
            try:
                info = read()
            except MastodonNotFoundError:
                continue  # an older server without /api/v2/instance
            except (MastodonError, requests.RequestException):
                return None
            found = _max_characters(info)
            if found:
                return found
        return None

    # ---- send ----------------------------------------------------------------------------

    # an attachment no status uses is deleted by the server after about a day
    media_ttl = 12 * 3600.0

    def upload(self, post: Post) -> dict[str, Any]:
        """`media_post` with the alt text as `description`; the sender keeps the id."""
        assert post.image_file
        try:
            media = self._api.media_post(
                post.image_file, mime_type=post.image_type, description=post.image_alt
            )
        except (MastodonError, requests.RequestException) as exc:
            err = self._error(exc, "uploading the image to Mastodon")
            if isinstance(err, UnknownOutcome):  # an orphan upload is harmless: do it again
                raise TransientError(err.message, status=err.status) from exc
            raise err from exc
        return {"id": str(media["id"])}

    def send(self, post: Post) -> Sent:
        media_ids = [post.media["id"]] if post.media and post.media.get("id") else None
        try:
            status = self._api.status_post(
                post.text,
                idempotency_key=post.idempotency_key or None,
                visibility=self._visibility,
                # a reply of a thread answers its parent status
                in_reply_to_id=post.reply_to.remote_id if post.reply_to else None,
                media_ids=media_ids,
            )
        except (MastodonError, requests.RequestException) as exc:
            raise self._error(exc, "posting to Mastodon") from exc
        return Sent(remote_id=str(status["id"]), remote_url=status.get("url") or status.get("uri"))

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """The status with the frozen text on the account's recent timeline, or None."""
        since = _aware(post.created_at) - _SKEW
        try:
            if self._account_id is None:
                self._account_id = str(self._api.account_verify_credentials()["id"])
            statuses = self._api.account_statuses(self._account_id, limit=40, exclude_reblogs=True)
        except (MastodonError, requests.RequestException) as exc:
            err = self._error(exc, "reading the Mastodon timeline")
            raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
        for st in statuses:
            created = st.get("created_at")
            if isinstance(created, datetime) and _aware(created) < since:
                break  # newest first: everything further is older than the row
            if _net.same_text(post.text, html_to_text(st.get("content") or "")):
                return Sent(remote_id=str(st["id"]), remote_url=st.get("url") or st.get("uri"))
        return None

    # ---- what listeners did ----------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Favourites, reblogs and replies of one status (GET /api/v1/statuses/:id)."""
        try:
            st = self._api.status(remote_id)
        except (MastodonError, requests.RequestException) as exc:
            err = self._error(exc, f"reading the counts of Mastodon status {remote_id}")
            raise _net.read_error(err) from exc
        return {
            "likes": _net.count(st.get("favourites_count")),
            "reposts": _net.count(st.get("reblogs_count")),
            "replies": _net.count(st.get("replies_count")),
        }

    # ---- errors --------------------------------------------------------------------------

    def _error(self, exc: BaseException, what: str) -> SendError:
        if isinstance(exc, MastodonRatelimitError):
            resp = self._session.last_response
            wait = _net.retry_after(resp.headers) if resp is not None else None
            reset = getattr(self._api, "ratelimit_reset", None)
            if wait is None and isinstance(reset, int | float):
                wait = max(float(reset) - time.time(), 0.0)
            return TransientError(f"{what}: rate limited (429)", retry_after=wait, status=429)
        if isinstance(exc, MastodonIllegalArgumentError | MastodonVersionError):
            return PermanentError(f"{what}: {exc}")  # refused by Mastodon.py before any request
        if isinstance(exc, MastodonNetworkError):
            # Mastodon.py wraps the requests exception without `from`; the original is the
            # context, and tells whether the request could have reached the server.
            return _net.transport_error(exc, what)
        if isinstance(exc, MastodonServerError):
            status, msg = _api_error_parts(exc)
            return UnknownOutcome(f"{what}: {msg}", status=status)
        if isinstance(exc, MastodonAPIError):
            status, msg = _api_error_parts(exc)
            if status is None or 200 <= status < 300:
                # An answer we could not read (e.g. not JSON): the status may exist.
                return UnknownOutcome(f"{what}: {msg}", status=status)
            if status == 429 or status in (408, 409, 425):
                return TransientError(f"{what}: {msg}", status=status)
            if status >= 500:
                return UnknownOutcome(f"{what}: {msg}", status=status)
            hint = ""
            if isinstance(exc, MastodonUnauthorizedError) or status in (401, 403):
                hint = " (check the access token and that it has the write:statuses scope)"
            return PermanentError(f"{what}: {msg}{hint}", status=status)
        if isinstance(exc, requests.RequestException):
            return _net.transport_error(exc, what)
        return UnknownOutcome(f"{what}: {exc}")


def _max_characters(info: Any) -> int | None:
    try:
        conf = info.get("configuration") or {}
        value = (conf.get("statuses") or {}).get("max_characters")
        if value is None:
            value = info.get("max_toot_chars")  # Pleroma/Akkoma in /api/v1/instance
        value = int(value)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if value > 0 else None


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

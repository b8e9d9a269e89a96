"""Threads (Meta's Threads API): a post is a container, created and then published.

    POST /{user-id}/threads          media_type=TEXT, text, link_attachment -> {"id": container}
                                     media_type=IMAGE, image_url, text, alt_text (an image post)
    POST /{user-id}/threads_publish  creation_id=container                  -> {"id": media}

An image post has no byte upload: Meta fetches `image_url` itself, so the post's image
must be where the site serves it (`post.image_url`, from [cards] base_url). Without a
public URL the post goes out as text (said once per channel in the log); a container
whose image Meta could not fetch (status ERROR) is replaced by a text one, so a missing
picture never holds the announcement back.

Threads has no idempotency key, so the two steps are made safe by the row: the
container's id is recorded on the delivery (`post.progress`) before it is published.
A later attempt, after a crash or a lost answer, asks the container's status first
(`GET /{container-id}?fields=status`): PUBLISHED means the post is out (it is then found
on the account's recent threads for its id and link), FINISHED means it can still be
published — the same container, never a second post. A container that was created but
whose id was never recorded is never published; it expires on Meta's side in 24 hours.

An `unknown` row is reconciled the same way, and by reading the account's recent threads
(`GET /{user-id}/threads?fields=id,text,permalink,timestamp`) for the frozen text.

Plain HTTP with httpx: the API is four small JSON calls, and the Python wrappers for it
can neither be pointed at another base URL nor tell a refused connection from a lost
answer, which is what the outbox needs to know. The kind (config, length, handles) is the
package, `syndicator.channels.threads`; this module is imported by its `build()` only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from syndicator.channels import _net
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.threads.shared import DEFAULT_API_URL, DEFAULT_LIMIT, UNKNOWN_POLICY

log = logging.getLogger(__name__)

# How far before the row's frozen time a matching thread may be (clock skew with Meta).
_SKEW = timedelta(minutes=10)
# Recent threads read back before concluding "not posted": pages of _PAGE.
_MAX_PAGES = 3
_PAGE = 50
# Meta's error codes for "too many calls"; they may come with HTTP 400 or 403, not 429.
_RATE_CODES = {4, 17, 32, 613}
# Meta's error codes for a token that is invalid, expired or lacks a permission.
_AUTH_CODES = {102, 190, 200, 10}
# A container still being processed: Meta suggests waiting about this long.
_IN_PROGRESS_WAIT = 30.0
# Meta's answer to publishing a container that is not ready (an image still being fetched).
_NOT_READY_CODE, _NOT_READY_SUBCODE = 9007, 2207027
COUNT_METRICS = ("views", "likes", "replies", "reposts", "quotes")


class _Failed(Exception):
    """An answer that isn't a success: carries the response for `_error`."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(resp.status_code)
        self.resp = resp


def _meta_error(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _describe(resp: httpx.Response) -> str:
    """Meta's own words: "Threads answered 400: <message> (code 100, subcode 2207051)"."""
    err = _meta_error(resp)
    words = str(err.get("error_user_msg") or err.get("message") or resp.reason_phrase or "")
    codes = [f"code {err['code']}"] if err.get("code") is not None else []
    if err.get("error_subcode") is not None:
        codes.append(f"subcode {err['error_subcode']}")
    text = f"Threads answered {resp.status_code}: {words[:300]}".rstrip(": ")
    return text + (f" ({', '.join(codes)})" if codes else "")


def _gone(resp: httpx.Response) -> bool:
    """The object is not there (deleted): 404/410, or Meta's code 100, subcode 33."""
    err = _meta_error(resp)
    return resp.status_code in (404, 410) or (
        err.get("code") == 100 and err.get("error_subcode") == 33
    )


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _timestamp(value: Any) -> datetime | None:
    """Meta's "2023-10-17T05:42:03+0000"."""
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


class ThreadsChannel:
    type = "threads"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        user_id: str,
        access_token: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 20.0,
        limit: int | None = None,
    ) -> None:
        self.name = name
        self._user = user_id
        self._limit = limit
        # the "no public URL for the image" warning is given once per channel, not per post
        self._told_no_url = False
        # The token goes in a header, never in the URL: httpx logs URLs.
        self._client = httpx.Client(
            base_url=api_url.rstrip("/") + "/",
            timeout=timeout,
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def limit(self) -> int:
        return self._limit or DEFAULT_LIMIT

    def close(self) -> None:
        self._client.close()

    # ---- HTTP ----------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The answer's JSON object; raises _Failed (an answer) or httpx.HTTPError (none)."""
        resp = self._client.request(method, path, params=params, data=data)
        if not resp.is_success:
            raise _Failed(resp)
        try:
            body = resp.json()
        except ValueError:
            raise _Failed(resp) from None
        if not isinstance(body, dict):
            raise _Failed(resp)
        return body

    def _error(self, exc: Exception, what: str, *, may_have_acted: bool) -> SendError:
        """What a failure means. `may_have_acted`: the request could have published."""
        if isinstance(exc, httpx.HTTPError):
            if may_have_acted:
                return _net.transport_error(exc, what)
            return TransientError(f"{what}: {_net.describe(exc)} (nothing was published)")
        assert isinstance(exc, _Failed)
        resp = exc.resp
        status, msg = resp.status_code, f"{what}: {_describe(resp)}"
        err = _meta_error(resp)
        if status < 300:  # a success we could not read
            return UnknownOutcome(msg, status=status) if may_have_acted else TransientError(msg)
        if status == 429 or err.get("code") in _RATE_CODES or err.get("is_transient") is True:
            wait = _net.retry_after(resp.headers)
            return TransientError(msg, retry_after=wait, status=status)
        if err.get("code") == _NOT_READY_CODE or err.get("error_subcode") == _NOT_READY_SUBCODE:
            # nothing was published; the next attempt asks the recorded container's status
            return TransientError(
                f"{msg} (the container is not ready yet; will publish it later)",
                retry_after=_IN_PROGRESS_WAIT, status=status,
            )  # fmt: skip
        if status >= 500 or status in (408, 425):
            # Safe to retry even after a publish: the next attempt asks the container's
            # status before publishing it again.
            return TransientError(msg, status=status)
        if status in (401, 403) or err.get("code") in _AUTH_CODES:
            msg += (
                " (check SYNDICATOR_<NAME>_ACCESS_TOKEN: long-lived tokens expire after 60 "
                "days, and it needs the threads_basic and threads_content_publish permissions)"
            )
        return PermanentError(msg, status=status)

    # ---- send ----------------------------------------------------------------------------

    def send(self, post: Post) -> Sent:
        container = post.progress.get("container_id")
        if container:
            status, detail = self._container_status(container, reading=False)
            if status == "PUBLISHED":
                return self._published(post)
            if status == "IN_PROGRESS":
                raise TransientError(
                    f"the Threads container {container} is still being processed; "
                    "will publish it later",
                    retry_after=_IN_PROGRESS_WAIT,
                )
            if status == "ERROR" and post.progress.get("image_url"):
                # Meta could not fetch or read the image: the post goes out as text
                # instead, in a new container (this one can never be published)
                reason = detail or "no reason given"
                log.warning(
                    "channel %s: Threads could not use the image %s (%s); posting delivery "
                    "%s without it (is the cards folder published where [cards] base_url "
                    "says?)", self.name, post.progress.get("image_url"), reason,
                    post.delivery_id,
                )  # fmt: skip
                post.progress.record(container_id=None, image_url=None, image_failed=reason)
                container = None
            elif status == "ERROR":
                raise PermanentError(
                    f"the Threads container {container} failed: {detail or 'no reason given'}"
                )
            if status == "EXPIRED":
                container = None  # never published within Meta's 24 hours: make a new one
        if not container:
            image = self._image_url(post)
            container = self._create(post, image)
            # Recorded before publishing: a retry publishes this container, never a new one
            # (and knows whether it carries an image).
            post.progress.record(container_id=container, image_url=image)
        return self._publish(container)

    def _image_url(self, post: Post) -> str | None:
        """The public URL Meta fetches the post's image from, or None: a text post."""
        if not post.image_file or post.progress.get("image_failed"):
            return None
        if not post.image_url:
            if not self._told_no_url:
                self._told_no_url = True
                log.warning(
                    "channel %s: Threads takes images only from a public URL, and the image "
                    "of delivery %s has none, so it is posted as text; set [cards] base_url "
                    "to where the site serves [cards] dir (said once per channel)",
                    self.name, post.delivery_id,
                )  # fmt: skip
            return None
        return post.image_url

    def _create(self, post: Post, image_url: str | None) -> str:
        data = {"media_type": "TEXT", "text": post.text}
        if image_url:
            data["media_type"] = "IMAGE"
            data["image_url"] = image_url
            if post.image_alt:
                data["alt_text"] = post.image_alt
        elif post.url:
            data["link_attachment"] = post.url  # Meta takes a link card on text posts only
        if post.reply_to:  # a reply of a thread answers its parent post
            data["reply_to_id"] = post.reply_to.remote_id
        what = "creating the Threads post"
        try:
            body = self._call("POST", f"{self._user}/threads", data=data)
        except (_Failed, httpx.HTTPError) as exc:
            # An unpublished container is never seen and expires: retrying is safe.
            raise self._error(exc, what, may_have_acted=False) from exc
        if not body.get("id"):
            raise TransientError(f"{what}: Threads answered without a container id")
        return str(body["id"])

    def _publish(self, container: str) -> Sent:
        what = f"publishing the Threads container {container}"
        try:
            body = self._call(
                "POST", f"{self._user}/threads_publish", params={"creation_id": container}
            )
        except (_Failed, httpx.HTTPError) as exc:
            raise self._error(exc, what, may_have_acted=True) from exc
        if not body.get("id"):
            raise UnknownOutcome(f"{what}: Threads answered without the post's id")
        media = str(body["id"])
        return Sent(remote_id=media, remote_url=self._permalink(media))

    def _permalink(self, media: str) -> str | None:
        """The post's link; the post is out whatever happens here, so failures are None."""
        try:
            body = self._call("GET", media, params={"fields": "permalink"})
        except (_Failed, httpx.HTTPError):
            return None
        link = body.get("permalink")
        return str(link) if link else None

    def _container_status(self, container: str, *, reading: bool) -> tuple[str, str]:
        what = f"reading the status of the Threads container {container}"
        try:
            body = self._call("GET", container, params={"fields": "id,status,error_message"})
        except (_Failed, httpx.HTTPError) as exc:
            err = self._error(exc, what, may_have_acted=False)
            if reading:
                raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
            raise err from exc
        return str(body.get("status") or "").upper(), str(body.get("error_message") or "")

    def _published(self, post: Post) -> Sent:
        """A container known to be published: its thread, or an honest Sent without id."""
        found = self._find(post)
        return found if found is not None else Sent()

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """For an `unknown` row: the thread if it was published, None if it surely wasn't."""
        container = post.progress.get("container_id")
        if container:
            status, _ = self._container_status(container, reading=True)
            if status == "PUBLISHED":
                return self._published(post)
            # Not published (FINISHED, IN_PROGRESS, EXPIRED, ERROR): send decides.
            return None
        # No container recorded means nothing was published by syndicator; the read-back
        # also catches a post made by hand with the same text.
        return self._find(post)

    def _find(self, post: Post) -> Sent | None:
        """The account's recent thread with the frozen text, or None."""
        since = _aware(post.created_at) - _SKEW
        params = {
            "fields": "id,text,permalink,timestamp",
            "limit": str(_PAGE),
            "since": str(int(since.timestamp())),
        }
        what = "reading the account's recent threads"
        for _ in range(_MAX_PAGES):
            try:
                body = self._call("GET", f"{self._user}/threads", params=params)
            except (_Failed, httpx.HTTPError) as exc:
                err = self._error(exc, what, may_have_acted=False)
                raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
            for item in body.get("data") or []:
                if not isinstance(item, dict):
                    continue
                when = _timestamp(item.get("timestamp"))
                if when is not None and when < since:
                    return None  # newest first: the rest is older than the row
                if _net.same_text(post.text, str(item.get("text") or "")):
                    link = item.get("permalink")
                    return Sent(remote_id=str(item.get("id")), remote_url=link or None)
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not body.get("data"):
                return None
            params = {**params, "after": str(after)}
        return None

    # ---- counts --------------------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Views, likes, replies, reposts and quotes of one thread (media insights)."""
        what = f"reading the insights of thread {remote_id}"
        try:
            body = self._call(
                "GET", f"{remote_id}/insights", params={"metric": ",".join(COUNT_METRICS)}
            )
        except (_Failed, httpx.HTTPError) as exc:
            err = self._error(exc, what, may_have_acted=False)
            if isinstance(exc, _Failed) and _gone(exc.resp):
                # Meta answers 400 "does not exist" for a deleted post: never ask again
                raise PermanentError(err.message, status=404) from exc
            raise err from exc
        counts: dict[str, int] = {}
        for item in body.get("data") or []:
            if not isinstance(item, dict) or item.get("name") not in COUNT_METRICS:
                continue
            # "values": [{"value": n}] for a post's lifetime; "total_value": {"value": n} too
            values = item.get("values") or []
            raw = values[0].get("value") if values and isinstance(values[0], dict) else None
            if raw is None:
                raw = (item.get("total_value") or {}).get("value")
            try:
                counts[str(item["name"])] = int(raw)
            except (TypeError, ValueError):
                continue
        return counts

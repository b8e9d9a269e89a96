"""Bluesky: the atproto SDK's `com.atproto.repo.putRecord` with a frozen record key.

The row froze a TID (record key) and a createdAt, and the record is built only from
frozen data, so every attempt writes the identical record at the same key: a retry is
a no-op on the PDS, never a second post. Facets carry UTF-8 byte offsets (the SDK's own
detection of links, #tags and $cashtags); a mention becomes a facet only when the
service resolves its handle to a DID (a definite "unable to resolve" drops it, any
other failure postpones the send so the record stays the same on every attempt).

Logging in happens once per channel (lazily, at the first send); the SDK refreshes the
session before its access token expires. The kind (config, length, handles) is the
package, `syndicator.channels.bluesky`; this module is imported by its `build()` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from atproto_client import Client, models
from atproto_client.exceptions import (
    AtProtocolError,
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.request import Request
from atproto_client.utils import facet_detection

from syndicator.channels import _net
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.bluesky.shared import DEFAULT_LIMIT, UNKNOWN_POLICY
from syndicator.channels.tids import is_valid_tid

COLLECTION = "app.bsky.feed.post"
_TOKEN_ERRORS = {"ExpiredToken", "InvalidToken"}


def created_at(dt: datetime) -> str:
    """The frozen instant as the ISO form Bluesky uses: UTC, milliseconds, "Z"."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _xrpc_error(exc: RequestErrorBase) -> tuple[int | None, str, str]:
    """(status, error name, message) of an XRPC error answer."""
    resp = exc.response
    if resp is None:
        return None, "", str(exc.__cause__ or exc)
    content = resp.content
    name = getattr(content, "error", None) or ""
    message = getattr(content, "message", None) or ""
    if not name and isinstance(content, dict):
        name, message = str(content.get("error", "")), str(content.get("message", ""))
    if not name and isinstance(content, bytes | str):
        message = (content.decode("utf-8", "replace") if isinstance(content, bytes) else content)[
            :300
        ]
    return resp.status_code, name, message


def _describe(status: int | None, name: str, message: str) -> str:
    words = ": ".join(p for p in (name, message) if p)
    return f"{status} {words}".strip() if status else words


class BlueskyChannel:
    type = "bluesky"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        handle: str,
        app_password: str,
        service: str = "https://bsky.social",
        timeout: float = 20.0,
        limit: int | None = None,
        password_env: str = "",
    ) -> None:
        self.name = name
        self.handle = handle
        self._password = app_password
        self._password_env = password_env
        self._limit = limit
        self._client = Client(base_url=service, request=Request(timeout=httpx.Timeout(timeout)))
        self._did: str | None = None

    def limit(self) -> int:
        return self._limit or DEFAULT_LIMIT

    def close(self) -> None:
        self._client.request.close()

    # ---- session -------------------------------------------------------------------------

    def _login(self, *, force: bool = False) -> str:
        """Log in once (the SDK keeps and refreshes the session); errors are never "unknown"."""
        if self._did and not force:
            return self._did
        try:
            self._client.login(self.handle, self._password, fetch_bsky_profile=False)
        except (AtProtocolError, httpx.HTTPError) as exc:
            raise self._before_write_error(exc, "logging in to Bluesky") from exc
        session = self._client._session  # the SDK exposes the DID and handle only here
        if session is None or not session.did:
            raise TransientError("logging in to Bluesky: the service answered without a session")
        self._did = session.did
        self.handle = session.handle or self.handle
        return self._did

    # ---- the record ----------------------------------------------------------------------

    def build_record(self, post: Post) -> dict[str, Any]:
        """The post record, from frozen data only (the same on every attempt)."""
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": post.text,
            "createdAt": created_at(post.created_at),
        }
        facets = self._facets(post.text)
        if facets:
            record["facets"] = facets
        langs = post.extra.get("langs")
        if langs:
            record["langs"] = list(langs)[:3]
        reply = reply_ref(post)
        if reply:
            record["reply"] = reply
        blob = (post.media or {}).get("blob")
        if post.url:
            record["embed"] = {
                "$type": "app.bsky.embed.external",
                "external": {
                    "uri": post.url,
                    "title": post.title or "",
                    "description": post.description or "",
                    **({"thumb": blob} if blob else {}),  # the card is the link card's picture
                },
            }
        elif blob:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [{"image": blob, "alt": post.image_alt or ""}],
            }
        return record

    # ---- the image -----------------------------------------------------------------------

    # a blob no record points at is dropped by the PDS after a while
    media_ttl = 1800.0

    def upload(self, post: Post) -> dict[str, Any]:
        """uploadBlob; the blob reference goes into the record (the sender keeps it)."""
        assert post.image_file
        self._login()
        try:
            data = Path(post.image_file).read_bytes()
        except OSError as exc:
            raise PermanentError(f"reading the image: {exc}") from exc
        try:
            resp = self._client.com.atproto.repo.upload_blob(data)
        except (AtProtocolError, httpx.HTTPError) as exc:
            # nothing points at a blob yet: uploading again is always safe
            err = self._write_error(exc, "uploading the image to Bluesky")
            if isinstance(err, PermanentError):
                raise err from exc
            raise TransientError(err.message, status=err.status) from exc
        return {"blob": resp.blob.model_dump(by_alias=True, exclude_none=True, mode="json")}

    def _facets(self, text: str) -> list[dict[str, Any]]:
        found = [
            f.model_dump(by_alias=True, exclude_none=True)
            for f in facet_detection.detect_facets(text)
        ]
        dids: dict[str, str | None] = {}
        for m in facet_detection.detect_mentions(text):
            handle = m.handle.lower()
            if handle not in dids:
                dids[handle] = self._resolve(handle)
            did = dids[handle]
            if did:
                found.append(
                    {
                        "$type": "app.bsky.richtext.facet",
                        "index": {"byteStart": m.byte_start, "byteEnd": m.byte_end},
                        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                    }
                )
        return sorted(found, key=lambda f: f["index"]["byteStart"])

    def _resolve(self, handle: str) -> str | None:
        try:
            resp = self._client.com.atproto.identity.resolve_handle(
                models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
            )
        except BadRequestError:
            return None  # the service says no such handle: no mention facet
        except (AtProtocolError, httpx.HTTPError) as exc:
            raise self._before_write_error(exc, f"resolving @{handle}") from exc
        return resp.did

    # ---- send ----------------------------------------------------------------------------

    def send(self, post: Post) -> Sent:
        if not is_valid_tid(post.record_key):
            raise PermanentError(
                f"record key {post.record_key!r} is not a valid TID; the delivery row is damaged"
            )
        did = self._login()
        record = self.build_record(post)
        data = models.ComAtprotoRepoPutRecord.Data(
            repo=did, collection=COLLECTION, rkey=post.record_key, record=record
        )
        try:
            try:
                resp = self._client.com.atproto.repo.put_record(data)
            except (UnauthorizedError, BadRequestError) as exc:
                status, name, _ = _xrpc_error(exc)
                if status != 401 and name not in _TOKEN_ERRORS:
                    raise
                # The token was refused, so nothing was written: log in again, once.
                self._login(force=True)
                resp = self._client.com.atproto.repo.put_record(data)
        except (AtProtocolError, httpx.HTTPError) as exc:
            raise self._write_error(exc, "posting to Bluesky") from exc
        return Sent(remote_id=resp.uri, remote_url=self._post_url(post.record_key), ref=_cid(resp))

    def _post_url(self, rkey: str) -> str:
        return f"https://bsky.app/profile/{self.handle}/post/{rkey}"

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """getRecord at the frozen key: there -> Sent; RecordNotFound -> None."""
        try:
            did = self._login()
            resp = self._client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(
                    repo=did, collection=COLLECTION, rkey=post.record_key
                )
            )
        except BadRequestError as exc:
            status, name, message = _xrpc_error(exc)
            if name == "RecordNotFound" or "could not locate record" in message.lower():
                return None
            raise UnknownOutcome(
                f"reading the Bluesky record back: {_describe(status, name, message)}",
                status=status,
            ) from exc
        except SendError as exc:
            raise UnknownOutcome(f"{exc.message}; cannot tell whether it was posted") from exc
        except (AtProtocolError, httpx.HTTPError) as exc:
            err = self._write_error(exc, "reading the Bluesky record back")
            raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
        return Sent(remote_id=resp.uri, remote_url=self._post_url(post.record_key), ref=_cid(resp))

    # ---- what listeners did ----------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Likes, reposts, replies and quotes of one post (app.bsky.feed.getPosts)."""
        what = "reading the counts of a Bluesky post"
        self._login()
        try:
            resp = self._client.app.bsky.feed.get_posts(
                models.AppBskyFeedGetPosts.Params(uris=[remote_id])
            )
        except (AtProtocolError, httpx.HTTPError) as exc:
            raise self._before_write_error(exc, what) from exc
        view = next((p for p in resp.posts if p.uri == remote_id), None)
        if view is None:  # getPosts leaves out what it can't find: deleted
            raise PermanentError(f"{what}: {remote_id} is not there any more", status=404)
        return {
            "likes": _net.count(view.like_count),
            "reposts": _net.count(view.repost_count),
            "replies": _net.count(view.reply_count),
            "quotes": _net.count(view.quote_count),
        }

    # ---- errors --------------------------------------------------------------------------

    def _common(self, exc: BaseException, what: str) -> SendError | None:
        if isinstance(exc, RateLimitExceededError):
            wait = exc.retry_after
            if wait is None and exc.reset_at is not None:
                wait = max((exc.reset_at - datetime.now(UTC)).total_seconds(), 0.0)
            return TransientError(f"{what}: rate limited (429)", retry_after=wait, status=429)
        if isinstance(exc, UnauthorizedError):
            status, name, message = _xrpc_error(exc)
            hint = (
                f" (check the handle and the app password in {self._password_env})"
                if self._password_env
                else " (check the handle and the app password)"
            )
            return PermanentError(
                f"{what}: {_describe(status, name, message)}{hint}", status=status
            )
        return None

    def _before_write_error(self, exc: BaseException, what: str) -> SendError:
        """Failures before the write: nothing was posted, so never "unknown"."""
        known = self._common(exc, what)
        if known:
            return known
        if isinstance(exc, RequestErrorBase) and exc.response is not None:
            status, name, message = _xrpc_error(exc)
            text = f"{what}: {_describe(status, name, message)}"
            if status is not None and 400 <= status < 500 and status not in (408, 409, 425):
                return PermanentError(text, status=status)
            return TransientError(text, status=status)
        return TransientError(f"{what}: {_net.describe(exc)} (nothing was posted; will retry)")

    def _write_error(self, exc: BaseException, what: str) -> SendError:
        known = self._common(exc, what)
        if known:
            return known
        if isinstance(exc, RequestErrorBase) and exc.response is not None:
            status, name, message = _xrpc_error(exc)
            text = f"{what}: {_describe(status, name, message)}"
            if status is None or status >= 500:
                return UnknownOutcome(text, status=status)
            if status in (408, 409, 425):
                return TransientError(text, status=status)
            return PermanentError(text, status=status)
        if isinstance(exc, NetworkError | httpx.HTTPError):
            return _net.transport_error(exc, what)
        return UnknownOutcome(f"{what}: {exc}")


def _cid(resp: Any) -> dict[str, str]:
    """A reply to this post names it by uri and cid (a strong ref): keep the cid."""
    cid = getattr(resp, "cid", None)
    return {"cid": str(cid)} if cid else {}


def reply_ref(post: Post) -> dict[str, Any] | None:
    """app.bsky.feed.post#replyRef for a reply of a thread: the root and the parent, each
    as a strong ref (uri + cid, stored on their rows when they were sent)."""
    if post.reply_to is None:
        return None
    root = post.reply_root or post.reply_to
    refs = {}
    for name, ref in (("root", root), ("parent", post.reply_to)):
        cid = ref.ref.get("cid")
        if not cid:
            raise PermanentError(
                f"the {name} post of this reply ({ref.remote_id}) has no stored cid, so "
                "Bluesky cannot link to it; skip this reply"
            )
        refs[name] = {"uri": ref.remote_id, "cid": cid}
    return refs

"""LinkedIn: the Posts API (`POST /rest/posts`) through LinkedIn's own Rest.li client.

A post is one CREATE with the `LinkedIn-Version` and `X-Restli-Protocol-Version: 2.0.0`
headers; the new post's URN comes back in the `x-restli-id` header (201). The episode's
URL goes in an article card (`content.article`), so the text needs no link.

The text is LinkedIn's "little text": `|{}@[]()<>#\\*_~` are reserved and must be
escaped with a backslash to be read as plain text (an unescaped one can cut the post
short). The frozen row keeps the readable text; `little_text` escapes it when it is
sent, writing `#tag` as the documented hashtag template and keeping the documented
mention element `@[Name](urn:li:person:…)` as it is. LinkedIn measures the 3,000
character limit on the commentary it receives, as Java string length, so `count` is the
length of the escaped text in UTF-16 code units (never less than LinkedIn counts).

An image (the episode's card) is uploaded first, with the Images API, as the channel's
`upload` (the sender records the image URN on the row before the post):

    POST /rest/images?action=initializeUpload  {"initializeUploadRequest": {"owner": author}}
        -> {"value": {"uploadUrl": ..., "image": "urn:li:image:…"}}
    PUT  <uploadUrl>  the bytes

The post is then an image post, `content.media` {"id": urn, "altText": ...}, with the
episode's link in its text; a text without the link keeps the article card instead,
with the image as its `thumbnail`, so the link is never lost.

There is no idempotency key. An `unknown` row is reconciled by reading the author's
recent posts (the `author` finder) for the same text and article; on a resend,
LinkedIn's 422 "Content is a duplicate of urn:li:share:…" names the post already there,
which counts as sent.

The official client (linkedin-api-client) builds every URL on api.linkedin.com and sets
no timeout; `_Session` moves each request onto the configured `api_url` (keeping the
route) and always sets one. The kind (config, length, mentions) is the package,
`syndicator.channels.linkedin`; this module is imported by its `build()` only.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from linkedin_api.clients.restli.client import RestliClient
from linkedin_api.common.errors import ResponseFormattingError

from syndicator.channels import _net
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.linkedin.shared import (
    DEFAULT_API_URL,
    DEFAULT_LIMIT,
    DEFAULT_VERSION,
    UNKNOWN_POLICY,
    little_text,
    plain_text,
)

# How far before the row's frozen time a matching post may be (clock skew with LinkedIn).
_SKEW = timedelta(minutes=10)
# The author finder is read this many posts a page, for at most this many pages.
_PAGE = 50
_MAX_PAGES = 3

_DUPLICATE = re.compile(r"duplicate of (urn:li:[A-Za-z]+:[0-9A-Za-z_-]+)", re.IGNORECASE)


def post_url(urn: str) -> str:
    """Where a post (urn:li:share:… or urn:li:ugcPost:…) is shown."""
    return f"https://www.linkedin.com/feed/update/{urn}/"


class _Session(requests.Session):
    """Sends the client's requests to `base` instead of api.linkedin.com, with a timeout,
    and remembers the last response per thread (an error page the client can't parse)."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__()
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"api_url {base!r} is not an http(s) URL")
        self.base = base.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    @property
    def last_response(self) -> requests.Response | None:
        return getattr(self._local, "response", None)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self._local.response = None
        resp = super().send(request, **kwargs)
        self._local.response = resp
        return resp


def _answer(resp: requests.Response | None) -> tuple[int | None, str]:
    """(status, LinkedIn's own message) of an answer."""
    if resp is None:
        return None, ""
    try:
        body = resp.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error_description") or "")
    if not message:
        message = (resp.text or resp.reason or "")[:300]
    return resp.status_code, message.strip()


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _image_urn(post: Post) -> str | None:
    """The image URN an earlier `upload` recorded for this post, if any."""
    urn = (post.media or {}).get("id")
    return str(urn) if urn else None


def _retryable(err: SendError) -> SendError:
    """An upload is never an unknown outcome: at worst an orphan image, so try again."""
    if isinstance(err, UnknownOutcome):
        return TransientError(err.message, status=err.status)
    return err


class LinkedInChannel:
    type = "linkedin"
    unknown_policy = UNKNOWN_POLICY
    # LinkedIn documents no lifetime for an uploaded image that no post uses yet; an
    # upload older than this is done again (the same bytes) rather than risk a post
    # refused for a stale URN.
    media_ttl = 12 * 3600.0

    def __init__(
        self,
        name: str,
        *,
        author: str,
        access_token: str,
        api_url: str = DEFAULT_API_URL,
        version: str = DEFAULT_VERSION,
        timeout: float = 20.0,
        limit: int | None = None,
        token_env: str = "",
    ) -> None:
        self.name = name
        self.author = author
        self._token = access_token
        self._token_env = token_env
        self._version = version
        self._limit = limit
        self._client = RestliClient()
        self._client.session.close()  # replaced: it would post to api.linkedin.com
        self._session = _Session(api_url, timeout)
        self._client.session = self._session
        # image bytes go to the upload URL LinkedIn hands out (another host), as it is
        self._uploads = requests.Session()

    def limit(self) -> int:
        return self._limit or DEFAULT_LIMIT

    def close(self) -> None:
        self._session.close()
        self._uploads.close()

    # ---- the post ------------------------------------------------------------------------

    def build_post(self, post: Post) -> dict[str, Any]:
        """The Posts API entity, from frozen data (and the image URN `upload` recorded)."""
        entity: dict[str, Any] = {
            "author": self.author,
            "commentary": little_text(post.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        image = _image_urn(post)
        if image and (not post.url or post.url in post.text):
            media = {"id": image}
            if post.image_alt:
                media["altText"] = post.image_alt
            entity["content"] = {"media": media}
        elif post.url:
            article = {"source": post.url, "title": post.title or post.url}
            if post.description:
                article["description"] = post.description
            if image:  # the link is only in the card: the image is its thumbnail
                article["thumbnail"] = image
                if post.image_alt:
                    article["thumbnailAltText"] = post.image_alt
            entity["content"] = {"article": article}
        return entity

    # ---- the image -----------------------------------------------------------------------

    def upload(self, post: Post) -> dict[str, Any]:
        """initializeUpload, then PUT the bytes; an upload whose answer is lost is only an
        orphan, so every failure but a refusal is retried (TransientError)."""
        assert post.image_file
        what = "registering the image upload with LinkedIn"
        try:
            resp = self._client.action(
                resource_path="/images",
                action_name="initializeUpload",
                action_params={"initializeUploadRequest": {"owner": self.author}},
                access_token=self._token,
                version_string=self._version,
            )
        except ResponseFormattingError as exc:
            raise _retryable(
                self._status_error(self._session.last_response, what, write=False)
            ) from exc
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {_net.describe(exc)}") from exc
        if not 200 <= resp.status_code < 300:
            raise _retryable(self._status_error(resp.response, what, write=False))
        value = resp.value if isinstance(resp.value, dict) else {}
        upload_url, image = str(value.get("uploadUrl") or ""), str(value.get("image") or "")
        if not upload_url or not image:
            raise TransientError(f"{what}: LinkedIn answered without an uploadUrl and image")
        self._put(upload_url, post)
        return {"id": image}

    def _put(self, upload_url: str, post: Post) -> None:
        what = "uploading the image to LinkedIn"
        assert post.image_file
        try:
            with open(post.image_file, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise PermanentError(f"{what}: {exc}") from exc
        headers = {"Content-Type": post.image_type or "application/octet-stream"}
        host = urlsplit(upload_url).hostname or ""
        if host == urlsplit(self._session.base).hostname or host.endswith(".linkedin.com"):
            # LinkedIn's own upload host takes the token, as its docs show; no other does
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            resp = self._uploads.put(
                upload_url, data=data, headers=headers, timeout=self._session.timeout
            )
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {_net.describe(exc)}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(
                f"{what}: LinkedIn answered {resp.status_code}",
                retry_after=_net.retry_after(resp.headers), status=resp.status_code,
            )  # fmt: skip
        if not resp.ok:
            _, message = _answer(resp)
            raise PermanentError(f"{what}: LinkedIn answered {resp.status_code}: {message}",
                                 status=resp.status_code)  # fmt: skip

    # ---- send ----------------------------------------------------------------------------

    def send(self, post: Post) -> Sent:
        what = "posting to LinkedIn"
        try:
            resp = self._client.create(
                resource_path="/posts",
                entity=self.build_post(post),
                access_token=self._token,
                version_string=self._version,
            )
        except ResponseFormattingError as exc:
            raise self._status_error(self._session.last_response, what, write=True) from exc
        except requests.RequestException as exc:
            raise _net.transport_error(exc, what) from exc
        if 200 <= resp.status_code < 300:
            urn = resp.entity_id
            if not urn:
                raise UnknownOutcome(
                    f"{what}: LinkedIn answered {resp.status_code} without the post's id "
                    "(x-restli-id)",
                    status=resp.status_code,
                )
            return Sent(remote_id=str(urn), remote_url=post_url(str(urn)))
        status, message = _answer(resp.response)
        dup = _DUPLICATE.search(message) if status == 422 else None
        if dup:
            # LinkedIn refuses the same content twice and names the post that has it.
            return Sent(remote_id=dup.group(1), remote_url=post_url(dup.group(1)))
        raise self._status_error(resp.response, what, write=True)

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, post: Post) -> Sent | None:
        """Look for the frozen text (and article) among the author's recent posts."""
        since = _aware(post.created_at) - _SKEW
        want = plain_text(little_text(post.text))
        for page in range(_MAX_PAGES):
            elements = self._author_posts(page * _PAGE)
            for el in elements:
                if not isinstance(el, dict) or _created_before(el, since):
                    continue  # an older post of the same text is another announcement
                if self._matches(el, post, want):
                    urn = str(el.get("id") or "")
                    return Sent(remote_id=urn or None, remote_url=post_url(urn) if urn else None)
            # newest first (sortBy LAST_MODIFIED): stop once a page reaches older posts
            if len(elements) < _PAGE or any(_older(el, since) for el in elements):
                return None
        raise UnknownOutcome(
            f"the post is not among the author's newest {_MAX_PAGES * _PAGE} posts since "
            f"{since:%Y-%m-%d %H:%M} UTC; check {self.author}'s posts by hand"
        )

    def _author_posts(self, start: int) -> list[Any]:
        what = "reading the author's LinkedIn posts"
        try:
            resp = self._client.finder(
                resource_path="/posts",
                finder_name="author",
                query_params={
                    "author": self.author,
                    "count": _PAGE,
                    "start": start,
                    "sortBy": "LAST_MODIFIED",
                },
                access_token=self._token,
                version_string=self._version,
            )
        except ResponseFormattingError as exc:
            err = self._status_error(self._session.last_response, what, write=False)
            raise UnknownOutcome(f"{err.message}; cannot tell whether it was posted") from exc
        except requests.RequestException as exc:
            reason = _net.describe(exc)
            raise UnknownOutcome(f"{what}: {reason}; cannot tell whether it was posted") from exc
        if not 200 <= resp.status_code < 300:
            err = self._status_error(resp.response, what, write=False)
            raise UnknownOutcome(
                f"{err.message}; cannot tell whether it was posted", status=err.status
            )
        return list(resp.elements or [])

    @staticmethod
    def _matches(el: dict[str, Any], post: Post, want: str) -> bool:
        if el.get("lifecycleState") not in (None, "PUBLISHED"):
            return False
        content = el.get("content") or {}
        image = _image_urn(post)
        # the image post this row sent, or its article card
        sent_image = bool(image) and (content.get("media") or {}).get("id") == image
        if not sent_image and post.url and (content.get("article") or {}).get("source") != post.url:
            return False
        return _net.same_text(want, plain_text(str(el.get("commentary") or "")))

    # ---- counts --------------------------------------------------------------------------

    def read_counts(self, remote_id: str) -> dict[str, int]:
        """Likes and comments from the post's social actions summary."""
        what = "reading the LinkedIn post's social actions"
        try:
            resp = self._client.get(
                resource_path="/socialActions/{id}",
                path_keys={"id": remote_id},
                access_token=self._token,
                version_string=self._version,
            )
        except ResponseFormattingError as exc:
            raise self._count_error(self._session.last_response, what) from exc
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {_net.describe(exc)}") from exc
        if not 200 <= resp.status_code < 300:
            raise self._count_error(resp.response, what)
        entity = resp.entity if isinstance(resp.entity, dict) else {}
        counts: dict[str, int] = {}
        likes = (entity.get("likesSummary") or {}).get("totalLikes")
        comments = (entity.get("commentsSummary") or {}).get("aggregatedTotalComments")
        if isinstance(likes, int):
            counts["likes"] = likes
        if isinstance(comments, int):
            counts["replies"] = comments
        return counts

    def _count_error(self, resp: requests.Response | None, what: str) -> SendError:
        status, message = _answer(resp)
        if status in (401, 403):
            return PermanentError(
                f"{what}: not offered to this app ({status}: {message}); LinkedIn gives "
                "counts only with r_member_social (person) or r_organization_social "
                "(organization)",
                status=status,
            )
        if status == 404:
            return PermanentError(f"{what}: no such post ({message})", status=status)
        if status == 429:
            wait = _net.retry_after(resp.headers) if resp is not None else None
            return TransientError(f"{what}: rate limited (429)", retry_after=wait, status=429)
        return TransientError(f"{what}: {status} {message}".rstrip(), status=status)

    # ---- errors --------------------------------------------------------------------------

    def _status_error(self, resp: requests.Response | None, what: str, *, write: bool) -> SendError:
        status, message = _answer(resp)
        text = f"{what}: LinkedIn answered {status}: {message}".rstrip(": ")
        if status is None or 200 <= status < 300:
            # An answer we could not read: the post may exist.
            return UnknownOutcome(f"{what}: an answer that could not be read", status=status)
        if status == 429:
            wait = _net.retry_after(resp.headers) if resp is not None else None
            return TransientError(f"{what}: rate limited by LinkedIn (429)", retry_after=wait,
                                  status=429)  # fmt: skip
        if status in (408, 409, 425):
            return TransientError(text, status=status)
        if status >= 500:
            return UnknownOutcome(text, status=status) if write else TransientError(text)
        if status == 401:
            where = f" in {self._token_env}" if self._token_env else ""
            return PermanentError(
                f"{text} (check the access token{where}: LinkedIn's tokens last 60 days, "
                "then a new one is needed)",
                status=status,
            )
        if status == 403:
            return PermanentError(
                f"{text} (the token needs w_member_social to post as a person, or "
                "w_organization_social and a page admin role to post as an organization; "
                f"author is {self.author})",
                status=status,
            )
        if status == 426:
            return PermanentError(
                f"{text} (LinkedIn-Version {self._version} is not active: set `version` "
                "to a recent month, YYYYMM)",
                status=status,
            )
        return PermanentError(text, status=status)


def _before(el: Any, key: str, since: datetime) -> bool:
    """Whether the post's `key` time (epoch milliseconds) is before `since`."""
    stamp = el.get(key) if isinstance(el, dict) else None
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return False
    return datetime.fromtimestamp(stamp / 1000, UTC) < since


def _created_before(el: Any, since: datetime) -> bool:
    return _before(el, "createdAt", since)


def _older(el: Any, since: datetime) -> bool:
    """Last modified before `since`: with LAST_MODIFIED order, everything after is too
    (an old post edited lately is not: it comes first, created long ago)."""
    if isinstance(el, dict) and el.get("lastModifiedAt") is None:
        return _created_before(el, since)
    return _before(el, "lastModifiedAt", since)

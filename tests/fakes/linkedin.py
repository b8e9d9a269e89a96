"""A fake LinkedIn Posts API: POST /rest/posts, the author finder, socialActions, and
the Images API's upload (POST /rest/images?action=initializeUpload, then a PUT of the
bytes to the upload URL it hands out, which needs no LinkedIn-Version header).

Requests must carry `Authorization: Bearer <token>` (else 401), an active
`LinkedIn-Version` (missing: 400; one in `sunset`: 426) and
`X-Restli-Protocol-Version: 2.0.0` (else 400), as LinkedIn answers. A post's commentary
must be valid little text: a reserved character (`|{}@[]()<>#\\*_~`) outside a mention
`@[Name](urn:li:person:…)` or a hashtag template `{hashtag|\\#|tag}` must be escaped with
a backslash (else 422), and at most 3,000 UTF-16 code units long (else 422). The same
commentary and article twice by one author gets LinkedIn's 422 "Content is a duplicate
of urn:li:share:…". A created post answers 201 with its URN in `x-restli-id`. A post's
`content` is one of `article` and `media`; an image URN in `content.media.id` or
`content.article.thumbnail` must have been uploaded (bytes PUT), else 422.

    with FakeLinkedIn() as li:
        env = li.env("li")            # SYNDICATOR_LI_ACCESS_TOKEN=... for a channel "li"
        ... api_url = li.url, author = li.author ...
        assert len(li.posts) == 1
        li.images["urn:li:image:…"]   # the uploaded bytes (None: registered, never PUT)
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .base import FakeServer, Received, Reply

_RESERVED = set("|{}@[]()<>#\\*_~")
_MENTION = re.compile(
    r"@\[((?:\\.|[^\[\]\\])+)\]\((urn:li:(?:person|organization):[A-Za-z0-9_-]+)\)"
)
_HASHTAG = re.compile(r"\{hashtag\|\\?[#＃]\|((?:\\.|[^}\\|])+)\}")
MAX_COMMENTARY = 3000


def little_error(text: str) -> str | None:
    """Why `text` is not valid little text, or None when it is (the fake's own parser)."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                return f"a lone backslash at the end (offset {i})"
            i += 2
            continue
        m = _MENTION.match(text, i) or _HASHTAG.match(text, i)
        if m:
            i = m.end()
            continue
        if c in _RESERVED:
            return f"unescaped reserved character {c!r} at offset {i}"
        i += 1
    return None


@dataclass
class LinkedInPost:
    urn: str
    author: str
    commentary: str  # as received (little text)
    article: dict[str, Any] | None
    created_at: int  # epoch milliseconds, as LinkedIn gives them
    body: dict[str, Any] = field(default_factory=dict)
    last_modified: int = 0  # epoch milliseconds; 0: never edited (= created_at)
    likes: int = 0
    comments: int = 0
    media: dict[str, Any] | None = None  # an image post: {"id": urn, "altText": ...}

    @property
    def modified_at(self) -> int:
        return self.last_modified or self.created_at

    def element(self) -> dict[str, Any]:
        el: dict[str, Any] = {
            "id": self.urn,
            "author": self.author,
            "commentary": self.commentary,
            "visibility": self.body.get("visibility", "PUBLIC"),
            "distribution": self.body.get("distribution", {"feedDistribution": "MAIN_FEED"}),
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
            "createdAt": self.created_at,
            "publishedAt": self.created_at,
            "lastModifiedAt": self.modified_at,
            "lifecycleStateInfo": {"isEditedByAuthor": bool(self.last_modified)},
        }
        if self.article is not None:
            el["content"] = {"article": dict(self.article)}
        elif self.media is not None:
            el["content"] = {"media": dict(self.media)}
        return el


def _error(status: int, message: str, code: int | None = None) -> Reply:
    body: dict[str, Any] = {"message": message, "status": status}
    if code is not None:
        body["serviceErrorCode"] = code
    return Reply(status, body)


class FakeLinkedIn(FakeServer):
    author = "urn:li:person:Ab3dE_fG-h"

    def __init__(self, *, token: str = "li-token", counts_offered: bool = True) -> None:
        super().__init__()
        self.token = token
        self.counts_offered = counts_offered  # False: socialActions answers 403
        self.authors = {self.author, "urn:li:organization:2414183"}  # the token may post as
        self.sunset = {"202301", "202302"}
        self.posts: list[LinkedInPost] = []
        self._ids = itertools.count(7_300_000_000_000_000_000)
        self.images: dict[str, bytes | None] = {}  # image URN -> the bytes PUT, None before
        self._uploads: dict[str, str] = {}  # upload token -> image URN
        # where upload URLs point (LinkedIn's are on another host than the API's)
        self.upload_base: str | None = None

    def env(self, channel: str) -> dict[str, str]:
        """The environment a syndicator channel named `channel` needs to talk to this fake."""
        return {f"SYNDICATOR_{channel.upper().replace('-', '_')}_ACCESS_TOKEN": self.token}

    def add_post(
        self,
        commentary: str,
        *,
        source: str | None = None,
        created_at: float | None = None,
        author: str | None = None,
    ) -> LinkedInPost:
        """Put a post on the author's feed (as if posted earlier); `created_at` epoch seconds."""
        with self.lock:
            p = LinkedInPost(
                f"urn:li:share:{next(self._ids)}", author or self.author, commentary,
                {"source": source, "title": source} if source else None,
                int((time.time() if created_at is None else created_at) * 1000),
            )  # fmt: skip
            self.posts.append(p)
            return p

    def edit(self, urn: str, commentary: str | None = None, at: float | None = None) -> None:
        """The author edits a post now, or `at` (epoch seconds): it moves up in
        LAST_MODIFIED order."""
        with self.lock:
            for p in self.posts:
                if p.urn == urn:
                    p.commentary = p.commentary if commentary is None else commentary
                    p.last_modified = int((time.time() if at is None else at) * 1000)

    def react(self, urn: str, *, likes: int = 0, comments: int = 0) -> None:
        with self.lock:
            for p in self.posts:
                if p.urn == urn:
                    p.likes, p.comments = likes, comments

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        reply = _error(429, "Resource level throttle APPLICATION DAY limit for calls to this "
                       "resource is reached.")  # fmt: skip
        if retry_after is not None:
            reply.headers["Retry-After"] = str(int(retry_after))
        return reply

    # ---- the API -------------------------------------------------------------------------

    def app(self, req: Received) -> Reply:
        m = re.fullmatch(r"/dms-uploads/([\w-]+)/uploaded-image/0", req.path)
        if req.method == "PUT" and m:  # the signed upload URL: no version headers needed
            return self._put_image(m.group(1), req)
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid access token", 65600)
        version = req.headers.get("linkedin-version")
        if not version:
            return _error(400, "A version must be present. Please specify a version by "
                          "adding the LinkedIn-Version header.")  # fmt: skip
        if version in self.sunset:
            return _error(426, f"Requested version {version} is not active", 10)
        if req.headers.get("x-restli-protocol-version") != "2.0.0":
            return _error(400, "X-Restli-Protocol-Version 2.0.0 is required")
        if req.method == "POST" and req.path == "/rest/posts":
            return self._create(req)
        if req.method == "POST" and req.path == "/rest/images":
            return self._initialize_upload(req)
        if req.method == "GET" and req.path == "/rest/posts":
            return self._finder(req)
        m = re.fullmatch(r"/rest/socialActions/([^/]+)", req.path)
        if req.method == "GET" and m:
            return self._social_actions(unquote(m.group(1)))
        return _error(404, f"No route {req.method} {req.path}")

    def _create(self, req: Received) -> Reply:
        body = req.json() or {}
        author = body.get("author")
        if author not in self.authors:
            return _error(403, f"Not enough permissions to create a post as {author}",
                          100)  # fmt: skip
        for key, want in (("lifecycleState", "PUBLISHED"), ("visibility", "PUBLIC")):
            if body.get(key) != want:
                return _error(422, f"/{key} :: {body.get(key)!r} is not accepted here")
        if not isinstance(body.get("distribution"), dict):
            return _error(422, "/distribution :: field is required but not found")
        commentary = body.get("commentary")
        if not isinstance(commentary, str):
            return _error(422, "/commentary :: field is required but not found")
        if len(commentary.encode("utf-16-le")) // 2 > MAX_COMMENTARY:
            return _error(422, f"/commentary :: length exceeds {MAX_COMMENTARY} characters")
        why = little_error(commentary)
        if why:
            return _error(422, f"/commentary :: not valid little text: {why}")
        content = body.get("content") or {}
        article, media = content.get("article"), content.get("media")
        if article is not None and media is not None:
            return _error(422, "/content :: only one of article, media may be given")
        if article is not None and not article.get("source"):
            return _error(422, "/content/article/source :: field is required but not found")
        if media is not None and not media.get("id"):
            return _error(422, "/content/media/id :: field is required but not found")
        image = (media or {}).get("id") or (article or {}).get("thumbnail")
        with self.lock:
            if image is not None and self.images.get(image) is None:
                return _error(422, f"/content :: {image} is not an uploaded image")
            for p in self.posts:
                if (p.author, p.commentary, p.article, p.media) == (
                    author, commentary, article, media
                ):  # fmt: skip
                    return _error(422, f"Content is a duplicate of {p.urn}")
            p = LinkedInPost(f"urn:li:share:{next(self._ids)}", author, commentary, article,
                             int(time.time() * 1000), body, media=media)  # fmt: skip
            self.posts.append(p)
        return Reply(201, None, {"x-restli-id": p.urn, "x-linkedin-id": p.urn.rsplit(":", 1)[1]})

    def _initialize_upload(self, req: Received) -> Reply:
        if req.arg("action") != "initializeUpload":
            return _error(400, f"Unsupported action {req.arg('action')!r}")
        owner = ((req.json() or {}).get("initializeUploadRequest") or {}).get("owner")
        if owner not in self.authors:
            return _error(403, f"Not enough permissions to upload images as {owner}", 100)
        with self.lock:
            n = next(self._ids)
            urn, token = f"urn:li:image:D4E10AQ{n}", f"up{n}"
            self.images[urn] = None
            self._uploads[token] = urn
        expires = int((time.time() + 86400) * 1000)
        base = self.upload_base or self.url
        upload_url = f"{base}/dms-uploads/{token}/uploaded-image/0?ca=vector_feedshare"
        return Reply(200, {"value": {"uploadUrlExpiresAt": expires, "uploadUrl": upload_url,
                                     "image": urn}})  # fmt: skip

    def _put_image(self, token: str, req: Received) -> Reply:
        with self.lock:
            urn = self._uploads.get(token)
            if urn is None:
                return _error(404, "No such upload")
            if not req.body:
                return _error(400, "The upload is empty")
            self.images[urn] = req.body
        return Reply(201, None)

    def _finder(self, req: Received) -> Reply:
        if req.arg("q") != "author":
            return _error(400, "Unsupported finder")
        author = req.arg("author")
        if author not in self.authors:
            return _error(403, f"Not enough permissions to read the posts of {author}")
        start, count = int(req.arg("start") or 0), int(req.arg("count") or 10)
        if not 1 <= count <= 100:
            return _error(400, "count must be between 1 and 100")
        with self.lock:
            mine = [p for p in self.posts if p.author == author]
        if req.arg("sortBy") == "CREATED":
            mine.sort(key=lambda p: (p.created_at, p.urn), reverse=True)
        else:  # LAST_MODIFIED, LinkedIn's default
            mine.sort(key=lambda p: (p.modified_at, p.urn), reverse=True)
        page = mine[start : start + count]
        return Reply(
            200,
            {
                "elements": [p.element() for p in page],
                "paging": {"start": start, "count": count, "links": []},
            },
        )

    def _social_actions(self, urn: str) -> Reply:
        if not self.counts_offered:
            return _error(403, "Not enough permissions to access: socialActions.GET.20261101",
                          100)  # fmt: skip
        with self.lock:
            found = next((p for p in self.posts if p.urn == urn), None)
        if found is None:
            return _error(404, f"Not found: {urn}")
        return Reply(
            200,
            {
                "target": urn,
                "likesSummary": {
                    "totalLikes": found.likes,
                    "aggregatedTotalLikes": found.likes,
                    "likedByCurrentUser": False,
                },
                "commentsSummary": {
                    "totalFirstLevelComments": found.comments,
                    "aggregatedTotalComments": found.comments,
                },
            },
        )

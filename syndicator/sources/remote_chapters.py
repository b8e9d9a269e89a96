"""Remote `podcast:chapters` files: fetched over http(s) with a size cap and a timeout,
validated against the podcast-namespace JSON chapters format
(https://github.com/Podcastindex-org/podcast-namespace/blob/main/chapters/jsonChapters.md).

Shared by every kind of source (a chapters URL is a URL, whoever read it): the pipeline asks
the store first (each file is fetched once and cached) and calls
`fetch_chapters` only for the URLs it has not seen. Every outcome is a `RemoteChapters`,
never an exception: a broken file is a reason, and the episode goes on without it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from syndicator.sources import bounds
from syndicator.sources.base import Chapter
from syndicator.sources.feeds.fetch import Fetcher
from syndicator.sources.feeds.safety import Resolver
from syndicator.sources.text import clean_text, fix_text

# A chapters file is a few KB (hundreds of chapters at most); anything past this cap is
# not a chapters file.
MAX_BYTES = 512 * 1024
TIMEOUT_SECONDS = 10.0  # per phase (connect, each read); the whole GET gets 3x this
MAX_PER_PASS = 50  # new chapters files fetched per pass; the rest wait for the next pass
MAX_CHAPTERS = 1000  # chapters kept from one file
CONCURRENCY = 4  # files fetched at once (per host the fetch settings' cap holds too)
ACCEPT = "application/json+chapters, application/json;q=0.9, */*;q=0.5"


class _JsonChapter(BaseModel):
    """One chapter as the format defines it: startTime is required, the rest optional."""

    model_config = ConfigDict(extra="allow")

    startTime: float = Field(ge=0, allow_inf_nan=False)
    title: str | None = None
    endTime: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    toc: bool | None = None
    img: str | None = None
    url: str | None = None


class _JsonChapters(BaseModel):
    """The document: `version` and `chapters` are required."""

    model_config = ConfigDict(extra="allow")

    version: str
    chapters: list[_JsonChapter]


@dataclass
class RemoteChapters:
    """One chapters URL after a fetch: its chapters, or why there are none."""

    url: str
    chapters: list[Chapter] = field(default_factory=list)
    error: str | None = None  # the reason, for a warning that names the URL


def is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _where(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "the document"


def parse_chapters_json(body: bytes) -> list[Chapter]:
    """The chapters of a JSON chapters document, sorted by start; chapters without a title
    (image-only marks) are left out. Raises ValueError with a reason a person can act on."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"it is not valid JSON ({exc})") from None
    try:
        doc = _JsonChapters.model_validate(raw)
    except ValidationError as exc:
        errs = exc.errors()
        shown = "; ".join(f"{_where(e)}: {e['msg']}" for e in errs[:3])
        more = f" (and {len(errs) - 3} more)" if len(errs) > 3 else ""
        raise ValueError(
            f"it is not a podcast:chapters JSON document ({shown}{more}); the format needs "
            '{"version": "1.2.0", "chapters": [{"startTime": 0, "title": "..."}]}'
        ) from None
    out: list[Chapter] = []
    for ch in doc.chapters[:MAX_CHAPTERS]:
        title = clean_text(fix_text(" ".join((ch.title or "").split())))
        if not title:
            continue
        try:
            start = bounds.duration_seconds(ch.startTime)
        except ValueError:
            continue  # past a week: no episode is that long
        out.append(Chapter(start=int(start), title=title))
    out.sort(key=lambda c: c.start)
    return out


async def _fetch_one(
    fetcher: Fetcher, url: str, sem: asyncio.Semaphore, timeout: float
) -> RemoteChapters:
    if not is_web_url(url):
        return RemoteChapters(url, error="it is not an http(s) URL, so it was not fetched")
    async with sem:
        got = await fetcher.get(url, timeout=timeout, max_bytes=MAX_BYTES)
    if got.error_kind:
        return RemoteChapters(url, error=f"{got.error_kind}: {got.error}")
    if got.status is None or not 200 <= got.status < 300:
        return RemoteChapters(url, error=f"the server answered HTTP {got.status}")
    try:
        return RemoteChapters(url, chapters=parse_chapters_json(got.body))
    except ValueError as exc:
        return RemoteChapters(url, error=str(exc))


async def fetch_chapters(
    urls: Sequence[str],
    *,
    user_agent: str = "",
    max_per_host: int = 4,
    allow_private_redirects: bool = False,
    resolver: Resolver | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> list[RemoteChapters]:
    """Fetch each chapters URL (in order, one result each), a few at a time."""
    if not urls:
        return []
    sem = asyncio.Semaphore(CONCURRENCY)
    async with Fetcher(
        user_agent=user_agent,
        max_per_host=max_per_host,
        max_connections=CONCURRENCY,
        allow_private_redirects=allow_private_redirects,
        resolver=resolver,
    ) as fetcher:
        fetcher.client.headers["Accept"] = ACCEPT
        return list(await asyncio.gather(*(_fetch_one(fetcher, u, sem, timeout) for u in urls)))


def fetch_chapters_sync(urls: Sequence[str], **kwargs: Any) -> list[RemoteChapters]:
    """fetch_chapters() for synchronous callers, also from inside a running event loop."""

    def run() -> list[RemoteChapters]:
        return asyncio.run(fetch_chapters(urls, **kwargs))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(1, thread_name_prefix="chapters") as pool:
        return pool.submit(run).result()

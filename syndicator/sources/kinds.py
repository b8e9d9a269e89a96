"""Source kinds: one `poll()` per kind of source, found through entry points.

A kind is registered in the `syndicator.sources` entry-point group (pyproject.toml):

    [project.entry-points."syndicator.sources"]
    jekyll = "syndicator.sources.jekyll:JekyllKind"
    feed = "syndicator.sources.feeds.poll:FeedKind"

The pipeline hands each kind the sources of its `type` with what the store remembers
of them (`Known`), and stores each `Polled` that comes back. A kind knows nothing of
the store: it reads, and says what it read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from importlib.metadata import entry_points
from typing import Any, Protocol

from syndicator.sources.base import FileStamp, PollResult, ScanResult

GROUP = "syndicator.sources"
# Used only when the installed metadata lists no kinds (a checkout whose package was
# installed before the entry points existed); tests/test_layers.py holds it equal to
# pyproject.toml's table.
BUILTIN = {
    "jekyll": "syndicator.sources.jekyll:JekyllKind",
    "feed": "syndicator.sources.feeds.poll:FeedKind",
}


@dataclass
class Known:
    """What the store remembers of one source from earlier passes."""

    url: str | None = None  # feeds: the URL after a permanent redirect
    etag: str | None = None  # feeds: validators for a conditional GET
    last_modified: str | None = None
    files: dict[str, FileStamp] = field(default_factory=dict)  # files read before
    fingerprint: str | None = None  # what the source's setup looked like when last read


@dataclass
class PollJob:
    config: Any  # the source's config model (JekyllSourceConfig, FeedSourceConfig, ...)
    known: Known = field(default_factory=Known)


@dataclass
class Polled:
    """One source read: its result, or (result None) why the kind could not read it."""

    job: PollJob
    location: str  # where problems about the whole source are filed (path or URL)
    result: ScanResult | PollResult | None = None
    error: str | None = None
    fingerprint: str | None = None  # the setup's fingerprint now, to remember when complete


class Progress(Protocol):
    def step(self, description: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


@dataclass
class PollContext:
    tz: tzinfo  # for dates written without a zone
    fetch: Any  # config.FetchConfig: the shared HTTP settings
    progress: Progress
    should_stop: Callable[[], bool] | None = None  # a shutdown: stop reading early
    tls: Any = None  # the pass's TLS context, made at first use (feeds: ~20 ms of CPU)


class SourceKind(Protocol):
    type: str  # the `type` of its sources in the config
    order: int  # kinds run in this order: local reads first, then network polls
    scheduled: bool  # True: the pipeline skips sources not due yet, and disabled ones

    def poll(self, jobs: Sequence[PollJob], ctx: PollContext) -> Iterator[Polled]:
        """Read each job's source; yield one Polled per job. A failure on one source is
        that source's Polled (result None, error set), never an exception, except that
        a stop (`ctx.should_stop`) may end the reading with `RenderStopped`."""
        ...


def load_kinds() -> list[SourceKind]:
    """Every registered kind, in its `order`."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    kinds: list[SourceKind] = []
    if found:
        kinds = [ep.load()() for ep in found.values()]
    else:
        import importlib

        for target in BUILTIN.values():
            module, _, attr = target.partition(":")
            kinds.append(getattr(importlib.import_module(module), attr)())
    return sorted(kinds, key=lambda k: (k.order, k.type))

"""Build, check and write the configured feeds (`syndicator feed build`, and each pass).

For each `[[feeds]]` entry: read its episodes from the store, build the RSS, run
the checks (check.py), and write the file only when its content changed (ignoring
`lastBuildDate`), atomically (temporary file in the same folder, fsync,
os.replace). Chapters files (`<feed dir>/chapters/<episode id>-<content hash>.json`,
see chapters.py) are written before the feed that points to them; the optional
JSON Feed only when its bytes changed. FeedState records each build.

Decisions:
- No `[[feeds]]` configured means no feed is published (podcast.feed_url alone
  does not create one): `publish_feeds` returns [].
- Which episodes: audio (enclosure_url set), not withdrawn, from the feed's
  sources (empty list: all), dated now or earlier (a future-dated episode
  appears on the first pass after its date), newest first, `limit` newest.
- lastBuildDate is the build time of the pass that wrote the change; an
  unchanged feed is not rewritten, so it keeps the date of its last change.
- Problems found by the checks are reported (FeedOutcome.problems,
  FeedState.check_problems) but do not stop the write: a feed with a warning is
  better than a stale one. A build that fails outright writes nothing and
  records FeedState.last_error; the other feeds go on. One episode that can't
  be written is left out with a problem naming it.
- Pings are not sent here: for each outcome with `changed`, the caller plans one
  ping row per `ping.ping_targets(feed_cfg, outcome.url)`.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.config import FeedConfig, Settings, unknown_source_message
from syndicator.directory import chapters, interact, jsonfeed, rss
from syndicator.directory.check import UNSAFE_URL, check_tree
from syndicator.directory.extensions import RemoteItem
from syndicator.directory.opml import OpmlShow, opml_document
from syndicator.sources import episode_fields
from syndicator.store import episodes as store_episodes
from syndicator.store import feeds as store_feeds
from syndicator.store import shows as store_shows
from syndicator.store import source_rows
from syndicator.store.db import session

_TMP_COUNTER = itertools.count()
# A build writes its temporary file in seconds (tens of MB at most); one left unchanged
# this long belongs to a build that was killed, and a later build of the same file
# removes it. Younger ones may be another live build's (another process, a cron pass).
STALE_TMP_SECONDS = 15 * 60
# _TempFile's names: .<target name>.<pid>.<counter>.tmp
_TMP_NAME = re.compile(r"\.(.+)\.\d+\.\d+\.tmp")

log = logging.getLogger(__name__)


class UnknownFeedError(ValueError):
    """`names` asked for a feed that is not configured."""


class UnsafeFeedError(ValueError):
    """The built feed carries a URL that is not http(s) (javascript:, data:, file:...)."""


@dataclass
class FeedOutcome:
    name: str
    path: Path
    url: str
    changed: bool  # written now (check_only: would be written)
    problems: list[str]
    episode_count: int
    size_bytes: int
    seconds: float
    content_hash: str = ""  # sha256 of the feed ignoring lastBuildDate ("" when it failed)
    error: str | None = None  # what stopped this feed's build (also in problems)
    chapters_written: int = 0
    chapters_seconds: float = 0.0  # of `seconds`, spent writing chapters files
    json_feed_path: Path | None = None
    opml_path: Path | None = None  # the OPML of the network's shows (`opml = true`)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a big feed allocates ~10^6 short-lived objects without cycles (lxml
    elements, rows); pausing the cyclic GC meanwhile saves ~10% of the build's time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def feed_path(settings: Settings, feed: FeedConfig) -> Path:
    p = Path(feed.path)
    return p if p.is_absolute() else settings.base_dir / p


FeedEpisode = rss.FeedEpisode  # the rows a feed is built from (made from the declaration)
_COLUMNS = [f.name for f in episode_fields.FEED_FIELDS]


@dataclass
class _Network:
    """What a feed shows of the shows its sources come from (a network feed)."""

    items: dict[str, rss.ItemShow]  # by source: each item's own show (merged feeds only)
    podroll: list[RemoteItem]  # `podroll = true`
    opml: list[OpmlShow]  # `opml = true`


def _network(s: Session, settings: Settings, feed: FeedConfig) -> _Network:
    """The shows of a feed's sources as their own feeds describe them (store), in the
    order of the feed's sources. A feed of several sources is merged: each item shows its
    show's name and artwork."""
    names = list(feed.sources) or [src.name for src in settings.sources]
    merged = len(names) > 1
    if not (merged or feed.podroll or feed.opml):
        return _Network({}, [], [])
    rows = store_shows.by_sources(s, names)
    shows = [rows[n] for n in names if n in rows]
    items = (
        {r.source: rss.ItemShow(r.title, r.image or None) for r in shows if r.title or r.image}
        if merged
        else {}
    )
    roll = [
        RemoteItem(r.podcast_guid or rss.podcast_guid(r.feed_url), r.feed_url, r.title)
        for r in shows
        if feed.podroll and r.feed_url
    ]
    lst = [OpmlShow(r.title, r.feed_url, r.link or None) for r in shows if feed.opml and r.feed_url]
    return _Network(items, roll, lst)


def opml_path(feed_file: Path, feed: FeedConfig) -> Path:
    """Where a feed's OPML of shows is written: beside the feed."""
    return feed_file.parent / (feed.opml_file or feed_file.stem + ".opml")


def query_episodes(s: Session, feed: FeedConfig, now: datetime) -> list[rss.EpisodeLike]:
    """The episodes a feed shows, newest first."""
    rows = store_episodes.feed_rows(s, _COLUMNS, now, sources=feed.sources, limit=feed.limit)
    return [FeedEpisode(*row) for row in rows]


class _TempFile:
    """A new file beside `path` that replaces it only on commit(): readers see the old
    file or the new one, never half. The new file keeps the old one's permissions (else
    0644: web servers must read it). durable=False skips the fsyncs (still atomic)."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path, self.durable = path, durable
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            self.mode = 0o644
        # A name no other writer uses (pid + counter), created exclusively.
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_TMP_COUNTER)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self.file: BinaryIO = os.fdopen(os.open(self.tmp, flags, 0o600), "wb")

    def commit(self) -> None:
        try:
            if self.durable:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.tmp, self.mode)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        if self.durable:
            with contextlib.suppress(OSError):  # not every platform/filesystem allows it
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

    def discard(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def remove_stale_temp_files(
    folder: Path, target: str | None = None, *, older_than: float = STALE_TMP_SECONDS
) -> int:
    """Remove the temporary files _TempFile left in `folder` (for the file named `target`,
    or any) whose last write is more than `older_than` seconds ago; returns how many."""
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        m = _TMP_NAME.fullmatch(entry.name)
        if m is None or (target is not None and m.group(1) != target):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
                log.info("removed %s, left by a build that was stopped mid-write", entry.path)
        except FileNotFoundError:
            pass  # another build removed it first
    return removed


def atomic_write(
    path: Path, data: bytes | Callable[[BinaryIO], None], *, durable: bool = True
) -> None:
    """Write `data` (bytes, or a function writing them to the open file) to `path`
    atomically: temporary file in the same folder, fsync, os.replace, fsync the folder."""
    tmp = _TempFile(path, durable=durable)
    try:
        if callable(data):
            data(tmp.file)
        else:
            tmp.file.write(data)
    except BaseException:
        tmp.discard()
        raise
    tmp.commit()


class _Tee:
    """Write to a file and a HashingWriter at once: one serialization of the feed."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def write(self, data: bytes) -> int:
        for sink in self.sinks:
            sink.write(data)
        return len(data)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _file_content_hash(path: Path) -> str | None:
    """rss.content_hash of the file on disk (None: no file), read in chunks: the feed
    can be tens of MB and is compared on every pass."""
    try:
        f = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    sink = rss.HashingWriter()
    with f:
        while chunk := f.read(1 << 20):
            sink.write(chunk)
    return sink.hexdigest()


def _write_if_changed(path: Path, data: bytes, *, durable: bool = True) -> bool:
    if _read(path) == data:
        return False
    atomic_write(path, data, durable=durable)
    return True


def _create(path: Path, data: bytes) -> None:
    """Write a file no reader knows of yet (its URL is not in any feed written so far)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_chapter_files(folder: Path, files: dict[str, bytes]) -> int:
    """Write the chapters files that are missing or incomplete; returns how many.

    Names carry a hash of the content, so a file that is there with the right size is
    already right and is neither read nor rewritten (thousands of episodes). Call this
    before writing the feed that points to them: a new file's URL is then unknown to
    readers while it is written, so it is written in place; a file of the wrong size (a
    crash mid-write) is replaced atomically. When an episode's chapters change, its
    older files (same episode, other hash) are removed.
    """
    if not files:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(folder)
    existing = {e.name: e for e in os.scandir(folder)}
    written: list[str] = []
    for name, data in files.items():
        entry = existing.get(name)
        if entry is None:
            _create(folder / name, data)
        else:
            try:
                if entry.stat().st_size == len(data):
                    continue
            except FileNotFoundError:
                pass
            atomic_write(folder / name, data, durable=False)
        written.append(name)
    if written:
        stems = {n.rsplit("-", 1)[0] + "-" for n in written}
        for name in existing:
            stem = name.rsplit("-", 1)[0] + "-"
            if stem in stems and name not in files and name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)
    return len(written)


def _select(settings: Settings, names: list[str] | None) -> list[FeedConfig]:
    if names is None:
        return list(settings.feeds)
    known = {f.name for f in settings.feeds}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownFeedError(
            f"no feed named {', '.join(map(repr, unknown))}; configured feeds: "
            + (", ".join(sorted(known)) or "none (add a [[feeds]] table)")
        )
    return [f for f in settings.feeds if f.name in names]


def publish_feeds(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    check_only: bool = False,
    names: list[str] | None = None,
) -> list[FeedOutcome]:
    """Build every configured feed (or those in `names`) and write the changed ones.

    check_only: build and check, write nothing (no files, no store), and report every
    problem; `changed` then says whether a real build would write. Raises
    UnknownFeedError for a name that is not configured.
    """
    feeds = _select(settings, names)
    urls: dict[str, str] = {}
    for f in settings.feeds:
        u = rss.resolve_feed_url(settings.podcast, f)
        urls.setdefault(u, f.name)
    outcomes = []
    for feed in feeds:
        outcome = _publish_one(engine, settings, feed, now, check_only=check_only)
        first = urls.get(outcome.url)
        if outcome.url and first and first != feed.name:
            outcome.problems.insert(
                0,
                f"feeds {first!r} and {feed.name!r} have the same URL {outcome.url}; "
                "give each [[feeds]] table its own url",
            )
        outcomes.append(outcome)
    return outcomes


class UnknownSourceError(ValueError):
    """A feed's `sources` names a source that neither the config nor the store has."""


def _check_sources(s: Session, settings: Settings, feed: FeedConfig) -> None:
    # An unknown name is refused, not skipped: a typo must not publish a feed without
    # that show's episodes (apps would drop them).
    missing = source_rows.not_stored(s, settings.feed_sources_outside_config(feed))
    if missing:
        raise UnknownSourceError("; ".join(unknown_source_message(feed.name, n) for n in missing))


def _publish_one(
    engine: Engine, settings: Settings, feed: FeedConfig, now: datetime, *, check_only: bool
) -> FeedOutcome:
    t0 = time.perf_counter()
    path = feed_path(settings, feed)
    url = rss.resolve_feed_url(settings.podcast, feed)
    outcome = FeedOutcome(feed.name, path, url, False, [], 0, 0, 0.0)
    written = False  # the feed file was replaced: it changed, whatever fails after
    try:
        with _gc_paused(), session(engine) as s:
            _check_sources(s, settings, feed)
            state = store_feeds.by_name(s, feed.name)
            stored_guid = state.podcast_guid if state else None
            episodes = query_episodes(s, feed, now)
            # each episode's sent announcements, as its comment threads (interact.py)
            shown_ids = {ep.id for ep in episodes if ep.id is not None}
            social, social_problems = interact.social_interacts(s, settings, feed, shown_ids)
            network = _network(s, settings, feed)
        meta = rss.feed_meta(settings.podcast, feed, guid=stored_guid)
        problems = list(meta.problems) + social_problems
        left_out: set[int] = set()

        def skip(ep: rss.EpisodeLike, exc: Exception) -> None:
            left_out.add(id(ep))
            problems.append(
                f"episode {ep.guid!r} ({ep.title!r}) left out of feed {feed.name!r}: {exc}"
            )

        def note(ep: rss.EpisodeLike, message: str) -> None:
            problems.append(f"episode {ep.guid!r} ({ep.title!r}) in feed {feed.name!r}: {message}")

        chapter_files: dict[str, bytes] = {}
        json_path = Path(feed.json_feed) if feed.json_feed else None
        if json_path is not None and not json_path.is_absolute():
            json_path = settings.base_dir / json_path
        json_bytes: bytes | None = None
        with _gc_paused():
            root = rss.build_tree(
                meta,
                episodes,
                last_build=now,
                on_error=skip,
                chapter_files=chapter_files,
                on_problem=note,
                social=social,
                shows=network.items,
                podroll=network.podroll,
            )
            shown = [ep for ep in episodes if id(ep) not in left_out]
            if json_path is not None:
                json_url = jsonfeed.json_feed_url(feed, url)
                json_bytes = jsonfeed.build_json_feed(meta, shown, url=json_url)
            outcome.episode_count = len(shown)
            # The rows are not needed any more: free them before the tree becomes bytes
            # (peak memory at 10,000 episodes).
            del episodes, shown
            problems += check_tree(root)  # the tree just built: no second parse of the bytes
            unsafe = [p for p in problems if UNSAFE_URL in p]
            if unsafe:
                # the items' own fields were cleaned while building; this is the last guard
                # (the config, or a field nothing cleaned): never publish such a URL
                outcome.problems = problems
                raise UnsafeFeedError(
                    f"it carries {len(unsafe)} URL(s) that are not http(s), and is not "
                    f"written until they are gone; the first: {unsafe[0]}"
                )
            # The feed is streamed from the tree, never held as one big bytes object:
            # first only hashed; written (streamed again) only when it changed.
            tmp: _TempFile | None = None
            if check_only:
                digest, size = rss.tree_digest(root)
            else:
                # Serialize once, into a temporary file and the hash together; the file
                # replaces the feed only if the content changed.
                remove_stale_temp_files(path.parent, path.name)
                if json_path is not None:
                    remove_stale_temp_files(json_path.parent, json_path.name)
                sink = rss.HashingWriter()
                tmp = _TempFile(path)
                try:
                    rss.write_tree(root, _Tee(tmp.file, sink))  # type: ignore[arg-type]
                except BaseException:
                    tmp.discard()
                    raise
                digest, size = sink.hexdigest(), sink.size
            changed = _file_content_hash(path) != digest
            outcome.changed = changed
            outcome.problems = problems
            outcome.content_hash = digest
            outcome.json_feed_path = json_path
            outcome.size_bytes = size
            if tmp is not None:
                try:
                    # chapters first: the feed must not point to a file that isn't there yet
                    t_ch = time.perf_counter()
                    outcome.chapters_written = write_chapter_files(
                        path.parent / chapters.CHAPTERS_DIR, chapter_files
                    )
                    outcome.chapters_seconds = time.perf_counter() - t_ch
                except BaseException:
                    tmp.discard()
                    raise
                if changed:
                    tmp.commit()
                    written = True
                else:
                    tmp.discard()
                    outcome.size_bytes = path.stat().st_size
                if json_path is not None and json_bytes is not None:
                    _write_if_changed(json_path, json_bytes)
                if feed.opml:
                    outcome.opml_path = opml_path(path, feed)
                    doc = opml_document(meta.title, network.opml, owner_name=meta.owner_name)
                    _write_if_changed(outcome.opml_path, doc)
            del root
        outcome.seconds = time.perf_counter() - t0
        if not check_only:
            _record(engine, feed, meta.podcast_guid, outcome, now)
    except Exception as exc:
        msg = f"feed {feed.name!r} was not built: {type(exc).__name__}: {exc}"
        if isinstance(exc, UnknownSourceError):
            msg = str(exc)  # says it all, and what to do
        outcome.error = msg
        outcome.problems.append(msg)
        outcome.changed = written  # a written feed still needs its pings
        outcome.seconds = time.perf_counter() - t0
        if not check_only:
            with contextlib.suppress(Exception):  # the store itself may be what failed
                _record_error(engine, feed, msg, now)
    return outcome


def _record(engine: Engine, feed: FeedConfig, guid: str, o: FeedOutcome, now: datetime) -> None:
    with session(engine, write=True) as s:
        store_feeds.record_build(
            s, feed.name, podcast_guid=guid, configured_guid=feed.podcast_guid, now=now,
            changed=o.changed, url=o.url, path=str(o.path), content_hash=o.content_hash,
            size_bytes=o.size_bytes, episode_count=o.episode_count,
            build_seconds=round(o.seconds, 4), check_problems=list(o.problems),
        )  # fmt: skip


def _record_error(engine: Engine, feed: FeedConfig, msg: str, now: datetime) -> None:
    with session(engine, write=True) as s:
        store_feeds.record_error(s, feed.name, msg, now)

"""Upsert what sources read into the store, keeping each episode's identity.

Identity rules (DESIGN.md, decision 4): the guid is assigned at first sight and
never changes. A Jekyll post is matched by (source, number), else by any path
the episode ever had, else by its guid candidate; a feed item by its key. A
deleted file marks the episode withdrawn; nothing is forgotten, and the file coming
back makes it live again. A file that turned bad keeps what was stored for it.

A number match is not trusted blindly: when the episode with that number is gone
(deleted or withdrawn) and the new post shares neither a similar slug nor a similar
title with it, the post is a new episode (`identity.same_episode`). Each such decision
is written to the episode's history. A guid another source already holds is not
stored twice: the second one is a problem naming both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.backoff import backoff_seconds
from syndicator.sources import episode_fields
from syndicator.sources.base import EpisodeData, FileStamp, PollResult, ProblemData, ScanResult
from syndicator.store import episodes as store_episodes
from syndicator.store import history, identity, problems
from syndicator.store.db import in_lists
from syndicator.store.models import Episode, EpisodePath, Problem, Source, SourceFile

Event = tuple[Episode, str, str]  # episode, event, detail: written once ids exist
log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class IngestStats:
    new: list[int] = field(default_factory=list)  # episode ids
    changed: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)
    unchanged: int = 0
    bad: int = 0
    problems: int = 0


def known_stamps(s: Session, source: str) -> dict[str, FileStamp]:
    """The stat cache, read with plain columns: this runs on every pass."""
    rows = s.connection().execute(
        sa.select(
            SourceFile.path,  # type: ignore[arg-type]
            SourceFile.mtime_ns,  # type: ignore[arg-type]
            SourceFile.size,  # type: ignore[arg-type]
            SourceFile.content_hash,  # type: ignore[arg-type]
            SourceFile.ok,  # type: ignore[arg-type]
        ).where(SourceFile.source == source)  # type: ignore[arg-type]
    )
    return {r[0]: FileStamp(r[1], r[2], r[3], r[4]) for r in rows}


def ensure_source(s: Session, name: str, type_: str, url: str | None = None) -> Source:
    row = s.exec(select(Source).where(Source.name == name)).first()
    if row is None:
        row = Source(name=name, type=type_, url=url, config_url=url)
        s.add(row)
        s.flush()
    elif url is not None and row.config_url != url:
        # The person changed the URL in the config: that wins over a stored redirect.
        row.url, row.config_url = url, url
        row.etag = row.last_modified = None
        row.disabled, row.disabled_reason = False, None
        s.add(row)
    return row


def _apply_fields(ep: Episode, data: EpisodeData) -> None:
    for name, value in episode_fields.stored_values(data).items():
        setattr(ep, name, value)


def _free_guid(taken: dict[str, str], source: str, candidate: str) -> str:
    """A guid no other episode has: a reused number's new episode gets a suffix."""
    guid = candidate
    n = 1
    while guid in taken:
        guid = f"{source}:{candidate}" if n == 1 else f"{source}:{candidate}#{n}"
        n += 1
    taken[guid] = source
    return guid


def _taken_guids(s: Session) -> dict[str, str]:
    """Every stored guid and the source that holds it."""
    rows = s.connection().execute(sa.select(Episode.guid, Episode.source))  # type: ignore[call-overload]
    return {r[0]: r[1] for r in rows}


def _taken_guids_for(s: Session, source: str, items: list[EpisodeData]) -> dict[str, str]:
    """The stored guids one poll's items can collide with, and their sources: the items'
    guids, the `<source>:<guid>` that `_free_guid` tries next, and (rarely needed) that
    one's `#n` variants. Reading only these, not every guid (`_taken_guids`), keeps a
    pass over many feeds linear in its items."""
    conn = s.connection()

    def lookup(where: sa.ColumnElement[bool], out: dict[str, str]) -> None:
        q = sa.select(Episode.guid, Episode.source).where(where)  # type: ignore[call-overload]
        out.update({r[0]: r[1] for r in conn.execute(q)})

    out: dict[str, str] = {}
    own = {d.guid for d in items}
    wanted = list(own | {f"{source}:{g}" for g in own})
    for chunk in in_lists(wanted):
        lookup(Episode.guid.in_(chunk), out)  # type: ignore[attr-defined]
    for g in own:
        if f"{source}:{g}" in out:
            lookup(Episode.guid.startswith(f"{source}:{g}#", autoescape=True), out)  # type: ignore[attr-defined]
    return out


def _duplicate(s: Session, taken: dict[str, str], source: str, data: EpisodeData) -> str | None:
    """Why a new item is not stored: its guid is already another source's episode."""
    other = taken.get(data.guid)
    if other is None or other == source:
        return None
    held = s.exec(select(Episode).where(Episode.guid == data.guid)).first()
    where = (held.path or held.url or held.title) if held is not None else "?"
    what = data.path or data.url or data.key or data.title
    return (
        f"guid {data.guid!r} of {what} is already episode #{held.id if held else '?'} of "
        f"source {other!r} ({where}); it is stored and announced once, from {other!r}. "
        f"Remove one of the two, or give this one its own guid (the source's `guid` setting)"
    )


def _has_episodes(s: Session, source: str) -> bool:
    return s.exec(select(Episode.id).where(Episode.source == source).limit(1)).first() is not None


def _refused(exc: Exception) -> str:
    """The database's reason, without the statement and its (possibly huge) parameters."""
    reason = getattr(exc, "orig", None) or exc
    return f"{type(reason).__name__}: {str(reason).splitlines()[0][:300] if str(reason) else ''}"


def _is_race(exc: Exception) -> bool:
    """A unique violation: on PostgreSQL another pass stored the same new row first. It is
    not the row's fault; the caller (pipeline.stored) retries and reads the winner's row."""
    if not isinstance(exc, sa.exc.IntegrityError):
        return False
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in str(orig)


def _one_by_one(s: Session, write: Callable[[], _T]) -> _T | Exception:
    """Run `write` and flush it in its own savepoint: its result, or the error if the
    database refused it (the savepoint is rolled back; the rest of the transaction goes on)."""
    try:
        with s.begin_nested():
            out = write()
            s.flush()
    except Exception as exc:  # one refused row is that row's problem, not the pass's
        if _is_race(exc):
            raise
        return exc
    return out


def _is_backlog(data: EpisodeData, first_pass: bool, now: datetime, window: timedelta) -> bool:
    return first_pass and data.date is not None and data.date < now - window


def _new_values(
    source: str, data: EpisodeData, now: datetime, backlog: bool, taken: dict[str, str]
) -> dict[str, Any]:
    """A new episode's columns: what `_upsert` gives the Episode constructor."""
    return dict(
        guid=_free_guid(taken, source, data.guid),
        source=source,
        item_key=data.key,
        path=data.path,
        first_seen_at=now,
        last_changed_at=now,
        content_hash=data.content_hash(),
        backlog=backlog,
        **episode_fields.stored_values(data),
    )


def _bulk_safe(source: str, items: list[EpisodeData]) -> bool:
    """Whether a poll's new items can be inserted together (`store_episodes.insert_many`):
    no item can match another one's new row, i.e. keys and guids are each distinct and no
    guid has the `<source>:` form a renamed guid gets (`_free_guid`). Feeds always are
    (parse_feed drops repeated keys); anything else takes the row-object path."""
    keys = [d.key for d in items]
    guids = [d.guid for d in items]
    return (
        len(set(keys)) == len(keys)
        and len(set(guids)) == len(guids)
        and not any(g.startswith(f"{source}:") for g in guids)
    )


def _upsert(
    s: Session,
    source: str,
    ep: Episode | None,
    data: EpisodeData,
    now: datetime,
    backlog: bool,
    stats: IngestStats,
    taken: dict[str, str],
    events: list[Event],
) -> tuple[Episode, bool]:
    """Insert or update; returns (episode, is_new). New rows get their id at the next flush."""
    if ep is None:
        # Every field given to the constructor: one SQLModel would fill from a
        # default_factory costs a pydantic signature inspection per row (a third of a cold
        # pass's time), and setting fields afterwards costs a validation hook each.
        ep = Episode(**_new_values(source, data, now, backlog, taken))
        s.add(ep)
        return ep, True
    digest = data.content_hash()
    if ep.content_hash != digest or ep.path != data.path or ep.withdrawn != data.withdrawn:
        if ep.withdrawn and not data.withdrawn:
            # The same file back (even byte for byte): the episode is live again.
            events.append((ep, "restored", f"live again: {data.path or data.key} is back"))
        _apply_fields(ep, data)
        ep.path = data.path
        if data.key:
            ep.item_key = data.key
        ep.content_hash = digest
        ep.last_changed_at = now
        s.add(ep)
        stats.changed.append(ep.id)  # type: ignore[arg-type]
    else:
        stats.unchanged += 1
    return ep, False


def apply_scan(
    s: Session,
    source: Source,
    result: ScanResult,
    known: dict[str, FileStamp],
    now: datetime,
    window: timedelta,
) -> IngestStats:
    """Store a Jekyll scan. Files listed as present but not parsed are left as they were.

    Written in one batch; when the database refuses a row, the batch is rolled back and
    written again file by file, so that file becomes a problem and the others are stored.
    """
    try:
        with s.begin_nested():
            return _apply_scan(s, source, result, known, now, window, careful=False)
    except Exception as exc:
        if _is_race(exc):
            raise
        log.warning("source %s: the batch write failed; storing file by file", source.name)
        return _apply_scan(s, source, result, known, now, window, careful=True)


def _apply_scan(
    s: Session,
    source: Source,
    result: ScanResult,
    known: dict[str, FileStamp],
    now: datetime,
    window: timedelta,
    *,
    careful: bool,
) -> IngestStats:
    stats = IngestStats()
    name = source.name
    first_pass = source.first_pass_at is None
    files = {f.path: f for f in result.files}
    missing = set(known) - set(files) if result.complete else set()
    dirty = missing or any(f.status != "unchanged" for f in result.files)
    cached = (
        {r.path: r for r in s.exec(select(SourceFile).where(SourceFile.source == name)).all()}
        if dirty
        else {}
    )
    # Loaded once, only when something has to be matched: no query per file.
    by_number: dict[int, Episode] = {}
    by_path: dict[str, int | Episode] = {}
    by_guid: dict[str, Episode] = {}
    by_id: dict[int, Episode] = {}
    taken: dict[str, str] = {}
    events: list[Event] = []
    loaded = False

    def load() -> None:
        nonlocal loaded
        if loaded:
            return
        loaded = True
        for e in s.exec(select(Episode).where(Episode.source == name).order_by(Episode.id)).all():  # type: ignore[arg-type]
            by_id[e.id] = e  # type: ignore[index]
            by_guid[e.guid] = e
            # A reused number: the live episode holds it, not the withdrawn one before it.
            if e.number is not None and (e.number not in by_number or not e.withdrawn):
                by_number[e.number] = e
        for p in s.exec(select(EpisodePath).where(EpisodePath.source == name)).all():
            by_path[p.path] = p.episode_id
        taken.update(_taken_guids(s))

    def by_file(path: str) -> Episode | None:
        hit = by_path.get(path)
        return hit if hit is None or isinstance(hit, Episode) else by_id.get(hit)

    def gone(ep: Episode) -> bool:
        """Deleted or withdrawn before, or its file vanished in this scan."""
        return ep.withdrawn or (ep.path in missing and all(ep is not a for a in assigned))

    def lookup(data: EpisodeData) -> Episode | None:
        load()
        hit, how = None, ""
        if data.number is not None and data.number in by_number:
            hit, how = by_number[data.number], f"number {data.number}"
        elif data.path in by_path:
            return by_file(data.path)
        elif data.guid in by_guid:
            hit, how = by_guid[data.guid], "guid"
        if hit is None:
            return _renamed_from(data)
        if hit.path == data.path or not gone(hit):
            return hit
        verdict = identity.same_episode(hit.slug, hit.title, data.slug, data.title)
        if verdict.same:
            events.append((hit, "matched", f"{data.path} is {hit.path}: same {how}, {verdict.why}"))
            return hit
        events.append(
            (
                hit,
                "number-reused" if how.startswith("number") else "guid-reused",
                f"{data.path} (\u201c{data.title}\u201d) has this episode's {how} but is a "
                f"different episode, not merged: {verdict.why}. This one stays withdrawn.",
            )
        )
        pending_new[data.path] = (
            f"not merged with episode #{hit.id} {hit.path} (\u201c{hit.title}\u201d, "
            f"{'withdrawn' if hit.withdrawn else 'deleted'}) although it has the same {how}: "
            f"{verdict.why}. A new episode with its own guid."
        )
        return by_file(data.path)

    def _renamed_from(data: EpisodeData) -> Episode | None:
        """A post without a number whose old file vanished in this same scan: the
        one gone file with the same date or title is its previous name."""
        gone = [cached[p].episode_id for p in missing if cached[p].episode_id is not None]
        if not gone:
            return None
        olds = [by_id[i] for i in gone if i in by_id]
        for why, same in (
            ("same date", lambda e: e.date == data.date and e.date is not None),
            ("same title", lambda e: e.title == data.title),
        ):
            hits = [e for e in olds if same(e) and all(e is not a for a in assigned)]
            if len(hits) == 1:
                events.append((hits[0], "matched", f"{data.path} is {hits[0].path}: {why}"))
                return hits[0]
        return None

    for p in result.problems:
        problems.record(s, name, p, now)
        stats.problems += 1
    assigned: list[Episode] = []
    pending_new: dict[str, str] = {}  # path -> why it is a new episode despite a match
    new_eps: list[Episode] = []
    links: list[tuple[SourceFile, Episode, str | None]] = []  # row, episode, new path
    open_locations = {
        loc
        for loc in s.connection()
        .execute(
            sa.select(Problem.location).where(  # type: ignore[call-overload]
                Problem.source == name,
                Problem.resolved_at.is_(None),  # type: ignore[union-attr]
            )
        )
        .scalars()
    }
    problem_kinds: dict[str, set[str]] = {}
    for p in result.problems:
        problem_kinds.setdefault(p.location, set()).add(p.kind)
        open_locations.add(p.location)

    def resolve(path: str) -> None:
        if path in open_locations:
            problems.resolve(s, name, path, now, keep=problem_kinds.get(path))

    bad_paths = {p.location for p in result.problems if p.severity == "error"}
    for path, f in files.items():
        row = cached.get(path)
        if f.status == "unchanged":
            stats.unchanged += 1
            continue
        if row is None:
            row = SourceFile(source=name, path=path, mtime_ns=0, size=0, content_hash="")
        row.mtime_ns, row.size, row.content_hash = (
            f.stamp.mtime_ns,
            f.stamp.size,
            f.stamp.content_hash,
        )
        if f.status == "same-hash":
            s.add(row)
            stats.unchanged += 1
            continue
        if f.status == "bad":
            row.ok = False  # keep episode_id: what was stored for this file stays
            s.add(row)
            stats.bad += 1
            continue
        row.ok = True
        if f.status == "ignored" or f.episode is None:
            row.episode_id = None
            s.add(row)
            resolve(path)
            continue
        data = f.episode
        backlog = _is_backlog(data, first_pass, now, window)
        found = lookup(data)
        dup = _duplicate(s, taken, name, data) if found is None else None
        if dup is not None:
            # Not stored; stamp forgotten so the file is read again once it is fixed.
            row.episode_id, row.mtime_ns, row.content_hash = None, 0, ""
            s.add(row)
            if path in open_locations:  # other problems of the file are fixed; this one holds
                keep = problem_kinds.get(path, set()) | {"duplicate-guid"}
                problems.resolve(s, name, path, now, keep=keep)
            problems.record(s, name, ProblemData(path, "duplicate-guid", dup, None, "warning"), now)
            stats.problems += 1
            continue
        upsert = partial(_upsert, s, name, found, data, now, backlog, stats, taken, events)
        if careful:
            changed_before, events_before = len(stats.changed), len(events)
            done = _one_by_one(s, upsert)
            if isinstance(done, Exception):
                # What was stored for this file stays; the file is read again once it changes.
                del stats.changed[changed_before:]
                del events[events_before:]
                row.ok = False
                s.add(row)
                stats.bad += 1
                stats.problems += 1
                problems.record(
                    s,
                    name,
                    ProblemData(
                        path,
                        "store",
                        f"the database refused this post ({_refused(done)}); nothing of it "
                        "was stored, the other posts were. Check its numbers and lengths.",
                    ),
                    now,
                )
                continue
            ep, is_new = done
        else:
            ep, is_new = upsert()
        if is_new:
            new_eps.append(ep)
            by_guid[ep.guid] = ep
            if path in pending_new:
                events.append((ep, "not-merged", pending_new[path]))
        if ep.number is not None:
            by_number[ep.number] = ep
        new_path = path if path not in by_path else None
        by_path[path] = ep
        links.append((row, ep, new_path))
        assigned.append(ep)
        s.add(row)
        if path not in bad_paths:
            resolve(path)

    s.flush()  # one batch of inserts; now every new episode has its id
    stats.new = [e.id for e in new_eps]  # type: ignore[misc]
    for row, ep, new_path in links:
        row.episode_id = ep.id
        if new_path is not None:
            s.add(EpisodePath(episode_id=ep.id, source=name, path=new_path, first_seen_at=now))  # type: ignore[arg-type]
    for ep, event, detail in events:
        history.add(s, ep.id, event, detail, now)  # type: ignore[arg-type]

    if result.complete:
        live = {r.episode_id for p, r in cached.items() if p in files and r.episode_id is not None}
        live |= {e.id for e in assigned}
        for path in missing:
            row = cached[path]
            s.delete(row)
            resolve(path)
            if row.episode_id is not None and row.episode_id not in live:
                ep = s.get(Episode, row.episode_id)
                if ep is not None and not ep.withdrawn:
                    ep.withdrawn, ep.withdrawn_reason = True, f"file deleted: {path}"
                    ep.last_changed_at = now
                    s.add(ep)
                    stats.withdrawn.append(ep.id)  # type: ignore[arg-type]
        # An empty posts folder is not first sight either (see apply_poll).
        if first_pass and (new_eps or _has_episodes(s, name)):
            source.first_pass_at = now
    source.last_poll_at = now
    source.polls += 1
    source.poll_errors += 0 if result.complete else 1
    source.last_ok_at = now if result.complete else source.last_ok_at
    s.add(source)
    return stats


@dataclass
class _Stored:
    refused: list[str]  # items the database refused, each as "'title' (key): reason"
    dups: list[str]  # why items were not stored: their guid is another source's
    any_episodes: bool  # the source has episodes now (first sight is not an empty feed)


def _store_items(
    s: Session,
    name: str,
    result: PollResult,
    first_pass: bool,
    now: datetime,
    window: timedelta,
    stats: IngestStats,
) -> _Stored:
    """Upsert a poll's items in one batch, else item by item when the database refuses one.

    In the batch, new episodes go in with one executemany (`store_episodes.insert_many`),
    changed ones through their row objects; item by item, every row is an object in its
    own savepoint, so a refused item costs only itself."""
    bulk = _bulk_safe(name, result.episodes)
    for careful in (False, True):
        refused: list[str] = []
        dups: list[str] = []
        try:
            with s.begin_nested():
                stats.new, stats.changed, stats.unchanged = [], [], 0
                eps = s.exec(select(Episode).where(Episode.source == name)).all()
                by_key = {e.item_key: e for e in eps}
                by_guid = {e.guid: e for e in eps}
                taken = _taken_guids_for(s, name, result.episodes)
                new_eps: list[Episode] = []
                new_rows: list[dict[str, Any]] = []
                events: list[Event] = []
                for data in result.episodes:
                    found = by_key.get(data.key) or by_guid.get(data.guid)
                    dup = _duplicate(s, taken, name, data) if found is None else None
                    if dup is not None:
                        dups.append(dup)
                        continue
                    backlog = _is_backlog(data, first_pass, now, window)
                    if found is None and bulk and not careful:
                        new_rows.append(_new_values(name, data, now, backlog, taken))
                        continue
                    upsert = partial(
                        _upsert, s, name, found, data, now, backlog, stats, taken, events
                    )
                    if careful:
                        changed_before, events_before = len(stats.changed), len(events)
                        done = _one_by_one(s, upsert)
                        if isinstance(done, Exception):
                            del stats.changed[changed_before:]
                            del events[events_before:]
                            refused.append(f"{data.title!r} ({data.key}): {_refused(done)}")
                            continue
                    else:
                        done = upsert()
                    ep, is_new = done
                    if is_new:
                        new_eps.append(ep)
                        by_guid[ep.guid] = ep
                    if data.key:
                        by_key[data.key] = ep
                s.flush()
                stats.new = [e.id for e in new_eps]  # type: ignore[misc]
                stats.new += store_episodes.insert_many(s, new_rows)
                for ep, event, detail in events:
                    history.add(s, ep.id, event, detail, now)  # type: ignore[arg-type]
            return _Stored(refused, dups, bool(eps or new_eps or new_rows))
        except Exception as exc:
            if careful or _is_race(exc):
                raise
            log.warning("source %s: the batch write failed; storing item by item", name)
    raise AssertionError("not reached: the careful round returns or raises")


def apply_poll(
    s: Session,
    source: Source,
    result: PollResult,
    now: datetime,
    window: timedelta,
    every: timedelta,
    max_backoff: timedelta,
) -> IngestStats:
    """Store a feed poll: episodes, validators, redirects, back-off and problems."""
    stats = IngestStats()
    name = source.name
    source.last_poll_at = now
    source.polls += 1
    source.poll_errors += result.status in ("error", "gone")
    if result.new_url:
        source.url = result.new_url
    for p in result.problems:
        problems.record(s, name, p, now)
        stats.problems += 1
    if result.status in ("ok", "not-modified"):
        source.consecutive_errors = 0
        source.last_error = None
        source.last_ok_at = now
        source.alerted = False
        source.next_due_at = now + every
        if result.etag is not None or result.status == "ok":
            source.etag = result.etag
        if result.last_modified is not None or result.status == "ok":
            source.last_modified = result.last_modified
        keep = {p.kind for p in result.problems}
        first_pass = source.first_pass_at is None
        if result.status == "ok":
            stored = _store_items(s, name, result, first_pass, now, window, stats)
            if stored.refused:
                keep.add("store")
                shown = "; ".join(stored.refused[:3]) + (" ..." if len(stored.refused) > 3 else "")
                problems.record(
                    s,
                    name,
                    ProblemData(
                        result.url,
                        "store",
                        f"the database refused {len(stored.refused)} item(s), which were not "
                        f"stored ({shown}); the feed's other items were. Check the items' numbers.",
                    ),
                    now,
                )
                stats.problems += 1
            if stored.dups:
                keep.add("duplicate-guid")
                dups = stored.dups
                more = f" (and {len(dups) - 1} more item(s) like it)" if len(dups) > 1 else ""
                problems.record(
                    s,
                    name,
                    ProblemData(result.url, "duplicate-guid", dups[0] + more, None, "warning"),
                    now,
                )
                stats.problems += 1
            # An empty first answer is not first sight: the back catalogue that fills it
            # later must still count as backlog.
            if first_pass and stored.any_episodes:
                source.first_pass_at = now
        if result.status == "not-modified":
            # The same body as last time: what its reading found still holds (a duplicate
            # guid too). Only a failure to fetch (an error) is over.
            keep |= problems.open_kinds(s, name, result.url, exclude_severity="error")
        if not any(p.severity == "error" for p in result.problems):
            problems.resolve(s, name, result.url, now, keep=keep)
    elif result.status == "gone":
        source.disabled = True
        source.disabled_reason = result.error or "the feed answered 410 Gone"
        source.last_error = source.disabled_reason
        source.next_due_at = None
    else:
        source.consecutive_errors += 1
        source.last_error = result.error or "poll failed"
        wait = backoff_seconds(
            every.total_seconds(),
            source.consecutive_errors,
            max_backoff.total_seconds(),
            retry_after=result.retry_after,
            max_doublings=16,
        )
        source.next_due_at = now + max(timedelta(seconds=wait), timedelta(seconds=1))
    s.add(source)
    return stats

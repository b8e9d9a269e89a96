"""Upsert what sources read into the store, keeping each episode's identity.

Identity rules (DESIGN.md, decision 4): the guid is assigned at first sight and
never changes. A Jekyll post is matched by (source, number), else by any path
the episode ever had, else by its guid candidate; a feed item by its key. A
deleted file marks the episode withdrawn; nothing is forgotten. A file that
turned bad keeps what was stored for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.sources.base import EpisodeData, FileStamp, PollResult, ScanResult
from syndicator.store import problems
from syndicator.store.models import Episode, EpisodePath, Source, SourceFile


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
    ep.number = data.number
    ep.slug = data.slug
    ep.title = data.title
    ep.date = data.date
    ep.url = data.url
    ep.guests = [g.to_dict() for g in data.guests]
    ep.tags = list(data.tags)
    ep.categories = list(data.categories)
    if data.enclosure:
        ep.enclosure_url = data.enclosure.url
        ep.enclosure_length = data.enclosure.length
        ep.enclosure_type = data.enclosure.type
    else:
        ep.enclosure_url = ep.enclosure_length = ep.enclosure_type = None
    ep.duration_seconds = data.duration_seconds
    ep.description = data.description
    ep.show_notes_html = data.show_notes_html
    ep.chapters = [c.to_dict() for c in data.chapters]
    ep.image = data.image
    ep.transcript_url = data.transcript_url
    ep.transcript_type = data.transcript_type
    ep.explicit = data.explicit
    ep.episode_type = data.episode_type
    ep.withdrawn = data.withdrawn
    ep.withdrawn_reason = data.withdrawn_reason


def _free_guid(s: Session, source: str, candidate: str) -> str:
    """A guid no other episode has; another source's collision gets a prefix."""
    guid = candidate
    n = 1
    while s.exec(select(Episode.id).where(Episode.guid == guid)).first() is not None:
        guid = f"{source}:{candidate}" if n == 1 else f"{source}:{candidate}#{n}"
        n += 1
    return guid


def _is_backlog(data: EpisodeData, first_pass: bool, now: datetime, window: timedelta) -> bool:
    return first_pass and data.date is not None and data.date < now - window


def _upsert(
    s: Session,
    source: str,
    ep: Episode | None,
    data: EpisodeData,
    now: datetime,
    backlog: bool,
    stats: IngestStats,
) -> Episode:
    digest = data.content_hash()
    if ep is None:
        ep = Episode(
            guid=_free_guid(s, source, data.guid),
            source=source,
            item_key=data.key,
            path=data.path,
            first_seen_at=now,
            last_changed_at=now,
            content_hash=digest,
            backlog=backlog,
        )
        _apply_fields(ep, data)
        s.add(ep)
        s.flush()
        stats.new.append(ep.id)  # type: ignore[arg-type]
        return ep
    if ep.content_hash != digest or ep.path != data.path:
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
    return ep


def apply_scan(
    s: Session,
    source: Source,
    result: ScanResult,
    known: dict[str, FileStamp],
    now: datetime,
    window: timedelta,
) -> IngestStats:
    """Store a Jekyll scan. Files listed as present but not parsed are left as they were."""
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
    by_number: dict[int, Episode] | None = None
    by_path: dict[str, int] | None = None

    def lookup(data: EpisodeData) -> Episode | None:
        nonlocal by_number, by_path
        if by_number is None:
            eps = s.exec(select(Episode).where(Episode.source == name)).all()
            by_number = {e.number: e for e in eps if e.number is not None}
            by_path = {
                p.path: p.episode_id
                for p in s.exec(select(EpisodePath).where(EpisodePath.source == name)).all()
            }
        if data.number is not None and data.number in by_number:
            return by_number[data.number]
        assert by_path is not None
        if data.path in by_path:
            return s.get(Episode, by_path[data.path])
        same_guid = s.exec(
            select(Episode).where(Episode.source == name, Episode.guid == data.guid)
        ).first()
        if same_guid is not None:
            return same_guid
        return _renamed_from(data)

    def _renamed_from(data: EpisodeData) -> Episode | None:
        """A post without a number whose old file vanished in this same scan: the
        one gone file with the same date or title is its previous name."""
        gone = [cached[p].episode_id for p in missing if cached[p].episode_id is not None]
        if not gone:
            return None
        olds = [e for e in s.exec(select(Episode).where(Episode.id.in_(gone))).all()]  # type: ignore[union-attr]
        for same in (
            lambda e: e.date == data.date and e.date is not None,
            lambda e: e.title == data.title,
        ):
            hits = [e for e in olds if same(e) and e.id not in assigned]
            if len(hits) == 1:
                return hits[0]
        return None

    for p in result.problems:
        problems.record(s, name, p, now)
        stats.problems += 1
    assigned: list[int] = []
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
            problems.resolve(s, name, path, now)
            continue
        data = f.episode
        ep = _upsert(
            s, name, lookup(data), data, now, _is_backlog(data, first_pass, now, window), stats
        )
        if by_number is not None and ep.number is not None:
            by_number[ep.number] = ep
        if by_path is not None and path not in by_path:
            s.add(EpisodePath(episode_id=ep.id, source=name, path=path, first_seen_at=now))  # type: ignore[arg-type]
            by_path[path] = ep.id  # type: ignore[assignment]
        row.episode_id = ep.id
        assigned.append(ep.id)  # type: ignore[arg-type]
        s.add(row)
        if path not in bad_paths:
            problems.resolve(
                s, name, path, now, keep={p.kind for p in result.problems if p.location == path}
            )

    if result.complete:
        live = {r.episode_id for p, r in cached.items() if p in files and r.episode_id is not None}
        live |= set(assigned)
        for path in missing:
            row = cached[path]
            s.delete(row)
            problems.resolve(s, name, path, now)
            if row.episode_id is not None and row.episode_id not in live:
                ep = s.get(Episode, row.episode_id)
                if ep is not None and not ep.withdrawn:
                    ep.withdrawn, ep.withdrawn_reason = True, f"file deleted: {path}"
                    ep.last_changed_at = now
                    s.add(ep)
                    stats.withdrawn.append(ep.id)  # type: ignore[arg-type]
        if first_pass:
            source.first_pass_at = now
    source.last_poll_at = now
    source.polls += 1
    source.poll_errors += 0 if result.complete else 1
    source.last_ok_at = now if result.complete else source.last_ok_at
    s.add(source)
    return stats


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
        if not any(p.severity == "error" for p in result.problems):
            problems.resolve(s, name, result.url, now, keep={p.kind for p in result.problems})
        first_pass = source.first_pass_at is None
        if result.status == "ok":
            by_key = {
                e.item_key: e for e in s.exec(select(Episode).where(Episode.source == name)).all()
            }
            for data in result.episodes:
                ep = (
                    by_key.get(data.key)
                    or s.exec(
                        select(Episode).where(Episode.source == name, Episode.guid == data.guid)
                    ).first()
                )
                ep = _upsert(
                    s, name, ep, data, now, _is_backlog(data, first_pass, now, window), stats
                )
                if data.key:
                    by_key[data.key] = ep
            if first_pass:
                source.first_pass_at = now
    elif result.status == "gone":
        source.disabled = True
        source.disabled_reason = result.error or "the feed answered 410 Gone"
        source.last_error = source.disabled_reason
        source.next_due_at = None
    else:
        source.consecutive_errors += 1
        source.last_error = result.error or "poll failed"
        backoff = min(every * (2 ** min(source.consecutive_errors - 1, 16)), max_backoff)
        if result.retry_after is not None:
            backoff = max(backoff, timedelta(seconds=result.retry_after))
        source.next_due_at = now + max(backoff, timedelta(seconds=1))
    s.add(source)
    return stats

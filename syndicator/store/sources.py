"""Sources: one row per configured source, with its polling and error state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, select

from syndicator.store.db import in_lists, now_sql
from syndicator.store.models import Source, SourceFile, UTCDateTime


def by_name(s: Session, name: str) -> Source:
    """The row of a configured source (the pass creates it before it polls)."""
    return s.exec(select(Source).where(Source.name == name)).one()


def by_id(s: Session, source_id: int) -> Source | None:
    return s.get(Source, source_id)


def by_names(s: Session, names: list[str]) -> dict[str, Source]:
    """The rows of these sources by name, a few queries for any number of them."""
    out: dict[str, Source] = {}
    for chunk in in_lists(names):
        out.update(
            (row.name, row)
            for row in s.exec(select(Source).where(Source.name.in_(chunk)))  # type: ignore[attr-defined]
        )
    return out


def having_files(s: Session, names: list[str]) -> set[str]:
    """Which of these sources have a stat cache (local scans do; feeds never)."""
    out: set[str] = set()
    for chunk in in_lists(names):
        q = (
            sa.select(SourceFile.source)
            .where(SourceFile.source.in_(chunk))  # type: ignore[attr-defined]
            .distinct()
        )
        out.update(name for (name,) in s.execute(q).all())
    return out


@dataclass(frozen=True)
class Unchanged:
    """A feed that answered 304: its validators (None keeps the stored one) and when it
    is due next."""

    name: str
    etag: str | None
    last_modified: str | None
    next_due_at: datetime


def not_modified_many(s: Session, rows: list[Unchanged], now: datetime) -> None:
    """Store many 304 answers in one executemany UPDATE: what `ingest.apply_poll` writes
    for a "not-modified" poll with no problems and no redirect (last polled, last ok,
    next due, the validators; an error run ends). A worker on the 304 path spends most
    of its time here otherwise: a transaction, an ORM load and a commit per feed."""
    if not rows:
        return
    t = Source.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.update(t)
        .where(t.c.name == sa.bindparam("b_name"))
        .values(
            last_poll_at=now,
            last_ok_at=now,
            next_due_at=sa.bindparam("b_due", type_=UTCDateTime()),
            polls=t.c.polls + 1,
            consecutive_errors=0,
            last_error=None,
            alerted=False,
            etag=sa.func.coalesce(sa.bindparam("b_etag", type_=sa.String()), t.c.etag),
            last_modified=sa.func.coalesce(
                sa.bindparam("b_lm", type_=sa.String()), t.c.last_modified
            ),
        )
    )
    params = [
        {"b_name": r.name, "b_due": r.next_due_at, "b_etag": r.etag, "b_lm": r.last_modified}
        for r in rows
    ]
    s.connection().execute(stmt, params)


def count_error(s: Session, name: str, error: str) -> None:
    """One more error in a row for the source (its result could not be stored)."""
    _count_error(s, by_name(s, name), error)


def _count_error(s: Session, row: Source, error: str) -> None:
    row.consecutive_errors += 1
    row.last_error = error[:500]
    s.add(row)


def scanned(s: Session, row: Source, next_due_at: datetime, error: str | None) -> None:
    """A local scan's outcome: when to look again; no error ends the run of errors (and
    its alert), an error counts one more."""
    row.next_due_at = next_due_at
    if error is None:
        row.consecutive_errors, row.last_error, row.alerted = 0, None, False
        s.add(row)
    else:
        _count_error(s, row, error)


def mark_alerted(s: Session, source_id: int) -> None:
    """An alert for the source's current run of errors went out."""
    row = s.get(Source, source_id)
    if row is not None:
        row.alerted = True
        s.add(row)


def not_alerted(s: Session) -> list[Source]:
    return list(s.exec(select(Source).where(Source.alerted == False)).all())  # noqa: E712


def all_by_name(s: Session) -> list[Source]:
    return list(s.exec(select(Source).order_by(Source.name)).all())


def change_stamp(s: Session) -> tuple[Any, ...]:
    q = sa.select(
        sa.func.max(Source.last_poll_at), sa.func.sum(Source.consecutive_errors), sa.func.count()
    )
    return tuple(s.execute(q).one())


# ------------------------------------------------ PostgreSQL workers: claims and leases


def _named(names: list[str] | None) -> Any:
    # one array parameter, not one per name: a worker may list 100,000 sources
    if names is None:
        return sa.true()
    return Source.name == sa.any_(sa.bindparam("names", names, type_=ARRAY(sa.String)))


def claim_statement(
    owner: str,
    names: list[str] | None,
    lease: timedelta,
    limit: int,
    *,
    due_only: bool,
    at: datetime | None = None,
    type_: str | None = None,
    exclude: list[str] | None = None,
) -> Any:
    """The UPDATE that `claim_due` runs (bench/bench_claims.py EXPLAINs it too)."""
    now = now_sql() if at is None else sa.bindparam("at", at, UTCDateTime())
    pick = (
        sa.select(Source.id)
        .where(
            _named(names),
            sa.true() if type_ is None else Source.type == type_,
            sa.true()
            if not exclude
            else Source.name != sa.all_(sa.bindparam("exclude", exclude, type_=ARRAY(sa.String))),
            Source.disabled == False,  # noqa: E712
            sa.or_(Source.lease_until.is_(None), Source.lease_until < now),  # type: ignore[union-attr,operator]
        )
        # the earliest due first, straight off ix_sources_next_due_at (no sort): a source
        # never polled (NULL) comes after the due ones, in the same pass
        .order_by(Source.next_due_at)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if due_only:
        pick = pick.where(sa.or_(Source.next_due_at.is_(None), Source.next_due_at <= now))  # type: ignore[union-attr,operator]
    return (
        sa.update(Source)
        .where(Source.id.in_(pick.scalar_subquery()))  # type: ignore[union-attr]
        .values(lease_owner=owner, lease_until=now + sa.bindparam("lease", lease, sa.Interval))
        .returning(Source.name)
        .execution_options(synchronize_session=False)
    )


def claim_due(
    s: Session,
    owner: str,
    names: list[str] | None,
    lease: timedelta,
    limit: int,
    *,
    due_only: bool = True,
    at: datetime | None = None,
    type_: str | None = None,
    exclude: list[str] | None = None,
) -> list[str]:
    """Claim up to `limit` of the named sources (PostgreSQL): due now (`due_only`), not
    disabled, and not leased by a live claim; returns the names this worker now holds.
    "Now" is the database's clock, or `at` when a pass is run at a chosen time
    (`run-once --now … --force`, tests). `names=None` claims any source (of `type_`,
    when given) but those in `exclude`.

    `FOR UPDATE SKIP LOCKED` lets concurrent workers take disjoint batches without
    waiting on each other; the lease (the database's clock) keeps the claim after this
    transaction commits, and expires by itself if the worker dies.
    """
    stmt = claim_statement(
        owner, names, lease, limit, due_only=due_only, at=at, type_=type_, exclude=exclude
    )
    res = s.execute(stmt)
    return [name for (name,) in res.all()]


def release(s: Session, owner: str, names: list[str]) -> None:
    """End this worker's leases on the named sources (their next due time is stored)."""
    if not names:
        return
    s.execute(
        sa.update(Source)
        .where(_named(names), Source.lease_owner == owner)  # type: ignore[arg-type]
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def next_due_in(s: Session, names: list[str] | None) -> timedelta | None:
    """How long until one of the named sources can be claimed (PostgreSQL, by the
    database's clock; zero when one is due now); None when none is enabled."""
    now = now_sql()
    ready = sa.func.greatest(
        sa.func.coalesce(Source.next_due_at, now), sa.func.coalesce(Source.lease_until, now)
    )
    wait = s.execute(
        sa.select(sa.func.min(ready) - now).where(_named(names), Source.disabled == False)  # noqa: E712
    ).scalar()
    if wait is None:
        return None
    return max(wait, timedelta(0))  # type: ignore[no-any-return]


def leased(s: Session, owner: str | None = None) -> dict[str, str]:
    """Sources under a lease now: name -> the worker holding it (tests, status)."""
    q = sa.select(Source.name, Source.lease_owner).where(
        Source.lease_owner.is_not(None),  # type: ignore[union-attr]
        Source.lease_until >= now_sql(),  # type: ignore[operator]
    )
    if owner is not None:
        q = q.where(Source.lease_owner == owner)  # type: ignore[arg-type]
    return {n: o for n, o in s.execute(q).all()}


def seed_polled(
    s: Session,
    validators: list[tuple[str, str | None, str | None]],
    polled_at: datetime,
    next_due_at: datetime,
) -> None:
    """As if each named source had been polled once at `polled_at` and answered with
    these validators (name, etag, last_modified): benchmarks prime 100,000 sources this
    way instead of a first pass that reads every feed."""
    if not validators:
        return
    t = Source.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.update(t)
        .where(t.c.name == sa.bindparam("b_name"))
        .values(
            etag=sa.bindparam("b_etag"),
            last_modified=sa.bindparam("b_lm"),
            last_poll_at=polled_at,
            last_ok_at=polled_at,
            first_pass_at=polled_at,
            next_due_at=next_due_at,
            polls=t.c.polls + 1,
        )
    )
    rows = [{"b_name": n, "b_etag": e, "b_lm": lm} for n, e, lm in validators]
    s.connection().execute(stmt, rows)

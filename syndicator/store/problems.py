"""Problems: one open row per (owner, location, kind) until it is fixed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from syndicator.sources.base import ProblemData
from syndicator.store.models import Problem


def record(s: Session, owner: str, p: ProblemData, now: datetime) -> Problem:
    row = s.exec(
        select(Problem).where(
            Problem.source == owner,
            Problem.location == p.location,
            Problem.kind == p.kind,
            Problem.resolved_at.is_(None),  # type: ignore[union-attr]
        )
    ).first()
    if row is None:
        row = Problem(
            source=owner,
            location=p.location,
            kind=p.kind,
            line=p.line,
            message=p.message,
            severity=p.severity,
            first_seen_at=now,
            last_seen_at=now,
        )
    else:
        row.message, row.line, row.severity, row.last_seen_at = p.message, p.line, p.severity, now
    s.add(row)
    return row


def resolve(
    s: Session, owner: str, location: str, now: datetime, *, keep: set[str] | None = None
) -> int:
    """Close the open problems of one file or URL, except kinds in `keep`."""
    rows = s.exec(
        select(Problem).where(
            Problem.source == owner,
            Problem.location == location,
            Problem.resolved_at.is_(None),  # type: ignore[union-attr]
        )
    ).all()
    n = 0
    for row in rows:
        if keep and row.kind in keep:
            continue
        row.resolved_at = now
        s.add(row)
        n += 1
    return n


def open_problems(
    s: Session, owner: str | None = None, severity: str | None = None
) -> list[Problem]:
    q = select(Problem).where(Problem.resolved_at.is_(None))  # type: ignore[union-attr]
    if owner:
        q = q.where(Problem.source == owner)
    if severity:
        q = q.where(Problem.severity == severity)
    return list(s.exec(q.order_by(Problem.source, Problem.location)).all())  # type: ignore[arg-type]

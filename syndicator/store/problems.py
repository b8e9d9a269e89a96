"""Problems: one open row per (owner, location, kind) until it is fixed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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


def with_open(s: Session, owners: list[str]) -> set[str]:
    """Which of these sources have any open problem (one query per call)."""
    if not owners:
        return set()
    q = (
        sa.select(Problem.source)
        .where(
            Problem.source.in_(owners),  # type: ignore[attr-defined]
            Problem.resolved_at.is_(None),  # type: ignore[union-attr]
        )
        .distinct()
    )
    return {name for (name,) in s.execute(q).all()}


def open_kinds(s: Session, owner: str, location: str, *, exclude_severity: str) -> set[str]:
    """The kinds of the open problems of one file or URL, but those of one severity."""
    return set(
        s.exec(
            select(Problem.kind).where(
                Problem.source == owner,
                Problem.location == location,
                Problem.severity != exclude_severity,
                Problem.resolved_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
    )


def open_problems(
    s: Session, owner: str | None = None, severity: str | None = None
) -> list[Problem]:
    q = select(Problem).where(Problem.resolved_at.is_(None))  # type: ignore[union-attr]
    if owner:
        q = q.where(Problem.source == owner)
    if severity:
        q = q.where(Problem.severity == severity)
    return list(s.exec(q.order_by(Problem.source, Problem.location)).all())  # type: ignore[arg-type]


# ---- grouping: "include x.html dropped in 106 posts" is one line, not 106 ----------------

ACTION = ("error", "warning")  # a person must act; "notice" needs no action
_ORDER = {"error": 0, "warning": 1, "notice": 2}
_DIGITS = re.compile(r"\d+")


def needs_action(severity: str) -> bool:
    return severity in ACTION


def pattern(message: str, location: str) -> str:
    """A message with what differs from file to file taken out: the file's own name and
    numbers (line numbers, counts), so repeats of one kind of problem group together."""
    if location:
        message = message.replace(location, "<file>")
    return _DIGITS.sub("#", message)


@dataclass
class ProblemGroup:
    """Open problems of one source, severity, kind and message pattern."""

    severity: str
    source: str
    kind: str
    message: str  # the first problem's message
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # {location, line}, 2 at most
    since: str | None = None  # the oldest member's first sight (ISO), when rows carry it

    @property
    def where(self) -> str:
        return ", ".join(
            f"{e['location']}:{e['line']}" if e.get("line") else str(e["location"])
            for e in self.examples
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "source": self.source,
            "kind": self.kind,
            "message": self.message,
            "count": self.count,
            "examples": list(self.examples),
            "since": self.since,
        }


def group(rows: Iterable[Mapping[str, Any]]) -> list[ProblemGroup]:
    """Rows with source, location, line, kind, severity and message (problem_dict's shape),
    grouped: errors first, then warnings, then notices; the biggest group first."""
    groups: dict[tuple[str, str, str, str], ProblemGroup] = {}
    for r in rows:
        source = str(r.get("source") or "")
        key = (r["severity"], source, r["kind"], pattern(r["message"], r["location"]))
        g = groups.get(key)
        if g is None:
            g = groups[key] = ProblemGroup(r["severity"], source, r["kind"], r["message"])
        g.count += 1
        since = r.get("since")
        if since and (g.since is None or since < g.since):
            g.since = since
        if len(g.examples) < 2:
            g.examples.append({"location": r["location"], "line": r.get("line")})
    return sorted(groups.values(), key=lambda g: (_ORDER.get(g.severity, 0), -g.count))


def group_line(g: ProblemGroup) -> str:
    """One line for a person: the message, and where (how many files, one or two named)."""
    if g.count == 1:
        return f"{g.where}: {g.kind}: {g.message}"
    more = "" if g.count <= len(g.examples) else ", …"
    return f"{g.kind}: {g.message} — in {g.count} places (e.g. {g.where}{more})"


def open_count_by_severity(s: Session) -> list[tuple[str, int]]:
    """How many problems are open at each severity (one GROUP BY)."""
    rows = s.exec(
        select(Problem.severity, sa.func.count())
        .where(Problem.resolved_at.is_(None))  # type: ignore[union-attr]
        .group_by(Problem.severity)
    ).all()
    return [(sev, int(n)) for sev, n in rows]


def open_rows(
    s: Session, limit: int | None = None, *, action: bool | None = None
) -> tuple[list[Problem], int]:
    """Open problems in display order and their count; `action=True` only those a person
    must act on (errors, warnings), `action=False` only notices, None every one."""
    open_ = Problem.resolved_at.is_(None)  # type: ignore[union-attr]
    if action is not None:
        acting = Problem.severity.in_(ACTION)  # type: ignore[attr-defined]
        open_ = sa.and_(open_, acting if action else sa.not_(acting))
    total = s.exec(select(sa.func.count()).select_from(Problem).where(open_)).one()
    q = (
        select(Problem)
        .where(open_)
        .order_by(Problem.severity, Problem.source, Problem.location, Problem.id)  # type: ignore[arg-type]
    )
    if limit is not None:
        q = q.limit(limit)
    return list(s.exec(q).all()), int(total)


def change_stamp(s: Session) -> tuple[Any, ...]:
    q = sa.select(
        sa.func.max(Problem.last_seen_at), sa.func.max(Problem.resolved_at), sa.func.count()
    )
    return tuple(s.execute(q).one())

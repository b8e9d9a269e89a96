"""The store's own faults (database down, disk full, folder not writable) as one line.

A pass or a command that cannot reach or write its database can't do anything useful;
the person reading cron mail needs what failed, where and what to do, not a traceback.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.exc

_HINT = "(set [database] url)"


class StoreUnavailable(Exception):
    """The store's place can't be made (its folder is missing and can't be created)."""


def safe_url(url: str) -> str:
    """The database URL as it may be shown: never with its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: show only its scheme
        return url.split("://", 1)[0] + "://…"


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    low = text.lower()
    for needle, short in (
        ("connection refused", "connection refused"),
        ("timeout expired", "connection timed out"),
        ("timed out", "connection timed out"),
        ("password authentication failed", "password authentication failed"),
        ("no password supplied", "no password supplied"),
        ("name or service not known", "host name not found"),
        ("could not translate host name", "host name not found"),
        ("does not exist", text.split("FATAL:")[-1].strip() if "FATAL:" in text else text),
        ("database or disk is full", "database or disk is full"),
        ("disk i/o error", "disk I/O error"),
        ("readonly database", "the database is read-only"),
        ("unable to open database file", "unable to open the database file"),
    ):
        if needle in low:
            return short
    return text[:200]


def describe(exc: BaseException, url: str | None) -> str | None:
    """One clear line for a database or storage fault, or None when `exc` is not one."""
    where = safe_url(url) if url else "the database"
    sqlite = bool(url) and str(url).startswith("sqlite")
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return None
    reason = _reason(exc)
    if sqlite:
        if reason in ("database or disk is full", "disk I/O error"):
            what = "is the disk full or the folder read-only? free space, then run again"
            return f"cannot write the database {where}: {reason} — {what} {_HINT}"
        if reason == "the database is read-only":
            what = "make the file and its folder writable for this user"
            return f"cannot write the database {where}: {reason} — {what} {_HINT}"
        what = "check that its folder exists and is writable"
        return f"cannot open the database {where}: {reason} — {what} {_HINT}"
    return f"database {where} is unreachable: {reason} — is PostgreSQL running? {_HINT}"

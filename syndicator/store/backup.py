"""A consistent copy of the SQLite store while other processes write to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from syndicator.store.db import normalize_url


class BackupError(Exception):
    pass


def backup_sqlite(url: str, dest: Path) -> int:
    """Copy with SQLite's online backup API; returns the copy's size in bytes."""
    url = normalize_url(url)
    if not url.startswith("sqlite:///"):
        raise BackupError(
            "backup copies SQLite stores only; for PostgreSQL use pg_dump (see docs/operations.md)"
        )
    src_path = Path(url.removeprefix("sqlite:///"))
    if not src_path.exists():
        raise BackupError(f"no database at {src_path}; run a pass or `syndicator db upgrade` first")
    dest = dest.expanduser().resolve()
    if dest == src_path.resolve():
        raise BackupError("the backup path is the database itself; choose another path")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            # Small steps so a writer is never blocked for long.
            src.backup(dst, pages=256, sleep=0.005)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    tmp.replace(dest)
    return dest.stat().st_size

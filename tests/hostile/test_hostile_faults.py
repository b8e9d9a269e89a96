"""The machine's own faults: an unreachable database, an unwritable or full store.

Each must be one clear line (what, where, what to do) and exit 1, never a traceback,
and never a password.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.hostile.conftest import run_cli, site_config


def _config(tmp_path: Path, site: Path, url: str) -> Path:
    return site_config(tmp_path, site, db_url=url)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def _one_clear_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "sqlalchemy" not in r.stderr.lower()
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_unreachable_postgres_is_one_line_without_password(tmp_path: Path, site: Path) -> None:
    port = _closed_port()
    url = f"postgresql://syn:hunter2secret@127.0.0.1:{port}/x"
    cfg = _config(tmp_path, site, url)
    for args in (["run-once"], ["status"], ["deliveries"]):
        line = _one_clear_line(run_cli(cfg, *args))
        assert "unreachable" in line and f"127.0.0.1:{port}/x" in line
        assert "hunter2secret" not in line and "syn:***@" in line
        assert "[database] url" in line and "PostgreSQL running" in line


def test_sqlite_in_a_folder_that_cannot_exist(tmp_path: Path, site: Path) -> None:
    # The store's folder is a regular file: no process, root or not, can create it.
    blocker = tmp_path / "notadir"
    blocker.write_text("x")
    cfg = _config(tmp_path, site, f"sqlite:///{blocker}/store.db")
    for args in (["run-once"], ["status"]):
        line = _one_clear_line(run_cli(cfg, *args))
        assert str(blocker) in line and "[database] url" in line


def _full_disk() -> None:
    # A file-size ceiling makes writes past 4 KiB fail as on a full disk (EFBIG; SQLite
    # says "disk I/O error"). Root ignores file modes and tests can't mount a tiny
    # tmpfs, so this is how "disk full" is made here.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def _run_on_full_disk(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"],
        cwd=cfg.parent, capture_output=True, text=True, timeout=60, preexec_fn=_full_disk,
    )  # fmt: skip


def test_disk_full_on_a_new_store_is_one_line(tmp_path: Path, site: Path) -> None:
    cfg = _config(tmp_path, site, "sqlite:///store.db")
    line = _one_clear_line(_run_on_full_disk(cfg))
    assert "store.db" in line and "disk full" in line and "cannot write" in line, line


def test_disk_full_on_a_working_store_is_one_line(tmp_path: Path, site: Path) -> None:
    cfg = _config(tmp_path, site, "sqlite:///store.db")
    assert run_cli(cfg, "run-once").returncode in (0, 1)
    first = next((site / "_posts" / "podcast").glob("*.md"))
    new = first.with_name("2026-11-30-42-a-new-one.md")
    new.write_text(first.read_text().replace("title:", "title: New", 1))
    line = _one_clear_line(_run_on_full_disk(cfg))
    assert "store.db" in line and "disk full" in line, line

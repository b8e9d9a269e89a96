"""Running syndicator as a subprocess for daemon and crash tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def write_config(path: Path, site: Path, hook_url: str, **extra: str) -> Path:
    lease = extra.get("lease", "3s")
    path.write_text(f"""
[podcast]
title = "Shipping It"
timezone = "UTC"

[database]
url = "sqlite:///store.db"

[[sources]]
name = "episodes"
type = "jekyll"
verify_audio = false
path = "{site}"
every = "{extra.get("every", "1h")}"
episode_url = "{{site.url}}/podcast/{{slug}}"
enclosure_url = "{{site.mp3_url_path}}{{number}}.mp3"
guid = "{{site.url}}/podcast/{{slug}}"

[announce]
window = "14d"
lease = "{lease}"
retry_base = "1s"

[[channels]]
name = "hook"
type = "apprise"
url = "{hook_url}"
timeout = "{extra.get("timeout", "3s")}"

[daemon]
heartbeat = "0.3s"
leader_lease = "{extra.get("leader_lease", "2s")}"
jitter = "0s"
{extra.get("more", "")}
""")
    return path


def start(cfg: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    e = dict(os.environ)
    e.update(env or {})
    e.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "--log-format", "json",
         "--log-level", "info", *args],
        cwd=cfg.parent, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def cli(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def status(cfg: Path) -> dict[str, Any]:
    return json.loads(cli(cfg, "status", "--json").stdout)  # type: ignore[no-any-return]


def deliveries(cfg: Path) -> list[dict[str, Any]]:
    return json.loads(cli(cfg, "deliveries", "--json").stdout)  # type: ignore[no-any-return]


def wait(pred: Callable[[], bool], timeout: float = 20.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return pred()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def post(site: Path, number: int, title: str, date: str, slug: str | None = None) -> Path:
    """Write an episode post the way a person saves one (temp file, then rename)."""
    slug = slug or title.lower().replace(" ", "-")
    day = date[:10]
    path = site / "_posts" / "podcast" / f"{day}-{number}-{slug}.md"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"""---
title: "{title}"
date: {date}
category: "podcast"
guest: "Guest {number}"
guest_twitter: "guest{number}"
mp3_bytes: "1000"
mp3_duration: "12:00"
tags: ["python"]
description: A test episode.
---

Body of episode {number}.
""")
    tmp.rename(path)
    return path

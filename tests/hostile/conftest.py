"""The hostile corpus: bad, huge and malicious input, run under a memory and time ceiling.

Every test in this folder gets a per-test time limit and runs with the process's address
space capped, so a regression (a bomb that expands again, a loop that no longer stops)
fails the test instead of hanging CI or swapping the machine. Commands run as
subprocesses through `run_cli`, which applies the same ceiling to the child.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Headroom over what the test process already maps: enough for real work, far below what
# any of the bombs in this corpus would reach if a limit regressed.
MEMORY_HEADROOM = 1536 * 1024 * 1024
CHILD_MEMORY = 2048 * 1024 * 1024
TIME_LIMIT = 90  # seconds per test


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(TIME_LIMIT))


@pytest.fixture(autouse=True)
def memory_ceiling() -> Iterator[int]:
    """Cap this process's address space for the test, and restore it afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _mapped_bytes() + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield ceiling
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def run_cli(
    config: Path,
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`syndicator --config CONFIG ARGS…` in a child capped at CHILD_MEMORY and `timeout`."""
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(config), *args],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_child,
        env={**os.environ, **(env or {})},
    )


def popen_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A long-running `syndicator` (the daemon) under the same memory ceiling."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndicator.cli", "--config", str(config), *args],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_child,
        env={**os.environ, **(env or {})},
    )


def site_config(
    tmp_path: Path,
    site: Path,
    *,
    db_url: str = "sqlite:///s.db",
    source: str = "",
    extra: str = "",
) -> Path:
    """A syndicator.toml reading the Jekyll site `site` as source "episodes".

    `source` adds keys to that source; `extra` adds whole tables after it.
    """
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(
        f"""
[podcast]
title = "Shipping It"
link = "https://shipping-it.example"
feed_url = "https://shipping-it.example/podcast/feed.xml"
description = "A show."
timezone = "UTC"

[database]
url = "{db_url}"

[[sources]]
name = "episodes"
type = "jekyll"
path = "{site}"
episode_url = "{{site.url}}/podcast/{{slug}}"
enclosure_url = "{{site.mp3_url_path}}{{number}}.mp3"
guid = "{{site.url}}/podcast/{{slug}}"
verify_audio = false
{source}
{extra}
""",
        encoding="utf-8",
    )
    return cfg

"""The feed tests' server: a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    from tests.feedserver import FeedServer
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from feedserver import FeedServer  # type: ignore[no-redef]


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server

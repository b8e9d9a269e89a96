"""The corpus's own guard: the ceilings really apply, so a regressed bomb fails fast."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import MEMORY_HEADROOM


def test_memory_ceiling_stops_a_runaway_allocation(memory_ceiling: int) -> None:
    with pytest.raises(MemoryError):
        bytearray(MEMORY_HEADROOM * 2)


def test_every_test_here_has_a_time_limit(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None and marker.args[0] <= 120

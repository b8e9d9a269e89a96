"""TIDs: the record keys frozen on Bluesky delivery rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syndicator.channels.tids import ALPHABET, is_valid_tid, make_tid, parse_tid


def _decode(tid: str) -> int:
    value = 0
    for c in tid:
        value = value * 32 + ALPHABET.index(c)
    return value


def test_layout_is_53_bits_of_microseconds_then_10_bits_of_clock() -> None:
    dt = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)
    tid = make_tid(dt, 1023)
    micros = int(dt.timestamp()) * 1_000_000 + 123456
    assert len(tid) == 13
    assert _decode(tid) == (micros << 10) | 1023
    assert _decode(tid) < 2**63  # top bit clear
    assert is_valid_tid(tid)


def test_epoch_and_known_value() -> None:
    assert make_tid(datetime(1970, 1, 1, tzinfo=UTC), 0) == "2222222222222"
    # 1 microsecond, clock 0 -> value 1024 = 32 * 32 -> "...22" then "3" "2" "2"
    assert make_tid(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC), 0) == "2222222222322"


def test_same_input_same_tid_and_sorted_by_time() -> None:
    base = datetime(2023, 1, 1, tzinfo=UTC)
    assert make_tid(base, 7) == make_tid(base, 7)
    tids = [make_tid(base + timedelta(microseconds=i * 997), i % 1024) for i in range(200)]
    assert tids == sorted(tids)
    assert len(set(tids)) == 200


def test_naive_is_utc_and_other_zones_convert() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    aware = naive.replace(tzinfo=UTC)
    plus2 = aware.astimezone(timezone(timedelta(hours=2)))
    assert make_tid(naive, 3) == make_tid(aware, 3) == make_tid(plus2, 3)


def test_parse_roundtrip() -> None:
    dt = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_tid(make_tid(dt, 512)) == (dt, 512)


@pytest.mark.parametrize(
    "bad",
    ["", "3jzfcijpj2z2", "3jzfcijpj2z2aa", "3JZFCIJPJ2Z2A", "3jzfcijpj2z21", "kjzfcijpj2z2a",
     "cjzfcijpj2z2a", 12345, None],
)  # fmt: skip
def test_invalid(bad: object) -> None:
    assert not is_valid_tid(bad)


def test_valid_real_world_tid() -> None:
    assert is_valid_tid("3jzfcijpj2z2a")


@pytest.mark.parametrize(
    ("dt", "clock"),
    [(datetime(1969, 12, 31, tzinfo=UTC), 0), (datetime(2024, 1, 1, tzinfo=UTC), 1024),
     (datetime(2024, 1, 1, tzinfo=UTC), -1)],
)  # fmt: skip
def test_out_of_range(dt: datetime, clock: int) -> None:
    with pytest.raises(ValueError):
        make_tid(dt, clock)

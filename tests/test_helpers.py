"""The shared helpers, each with exactly one implementation: durations (timeutil),
back-off (backoff), HTML to text (textutil). Retry-After has its own tests beside
retry_after's callers."""

from __future__ import annotations

import math

import pytest

from syndicator.backoff import backoff_seconds
from syndicator.textutil import html_to_text, text_excerpt
from syndicator.timeutil import clock_seconds, parse_clock, parse_duration


@pytest.mark.parametrize(
    ("text", "fractional", "seconds"),
    [
        ("1:02:03", False, 3723),
        ("62:03", False, 3723),
        ("3723", False, 3723),
        (" 5 ", False, 5),
        ("1:02:03.5", True, 3723.5),
        ("3723.5", True, 3723.5),
        ("0:00:00", True, 0),
    ],
)
def test_clock_seconds_reads_clock_times(text: str, fractional: bool, seconds: float) -> None:
    assert clock_seconds(text, fractional=fractional) == seconds


@pytest.mark.parametrize(
    ("text", "fractional"),
    [
        ("1:02:03.5", False),  # a fraction only where asked for
        ("1:2:3:4", True),  # more than hours
        ("", True),
        ("-5", True),
        ("nan", True),
        ("1:-1", True),
        ("ten", False),
        ("1h", False),
    ],
)
def test_clock_seconds_refuses_what_is_no_clock_time(text: str, fractional: bool) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        clock_seconds(text, fractional=fractional)


def test_parse_clock_is_clock_seconds_in_whole_seconds() -> None:
    assert parse_clock("1:43:06") == 6186
    assert isinstance(parse_clock("1:43:06"), int)
    huge = "9" * 40  # exact however large: callers bound it, not this parser
    assert parse_clock(huge) == int(huge)
    assert parse_duration("1h30m").total_seconds() == 5400


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_seconds(60, n, 1000) for n in (0, 1, 2, 3, 4, 5, 6)] == [
        60, 60, 120, 240, 480, 960, 1000
    ]  # fmt: skip


def test_backoff_retry_after_only_lengthens_the_wait() -> None:
    assert backoff_seconds(60, 2, 1000, retry_after=30) == 120
    assert backoff_seconds(60, 2, 1000, retry_after=5000) == 5000  # past the cap, as asked


def test_backoff_max_doublings_stops_early() -> None:
    assert backoff_seconds(1, 40, 10**9, max_doublings=16) == 2**16
    assert backoff_seconds(1, 40, 10**9) == 10**9


def test_backoff_never_overflows_however_many_failures() -> None:
    assert backoff_seconds(60, 10**9, 3600) == 3600
    assert backoff_seconds(0, 10**9, 3600) == 0
    assert math.isfinite(backoff_seconds(1e-300, 5000, 1e300))


def test_html_to_text_makes_one_line() -> None:
    value = "<p>One &amp; two</p><p>three<br>four</p><script>alert(1)</script>"
    assert html_to_text(value) == "One & two three four"


def test_html_to_text_lines_keeps_breaks_and_spacing() -> None:
    value = "<p>One &amp; two</p><p>three<br />four  five</p><script>x()</script>"
    assert html_to_text(value, lines=True) == "One & two\n\nthree\nfour  five"
    assert html_to_text("AT&amp;T &lt;b&gt;", lines=True) == "AT&T <b>"


def test_text_excerpt_keeps_within_bytes() -> None:
    cut = text_excerpt("word " * 2000)
    assert len(cut.encode()) <= 4000 and cut.endswith("…")


def test_grapheme_length_fast_path_counts_what_the_grapheme_library_counts() -> None:
    import random

    import emoji
    import grapheme

    from syndicator.channels.threads import threads_count
    from syndicator.textutil import grapheme_length

    rng = random.Random(14)
    ascii_chars = [chr(c) for c in range(128)]
    other = ["é", "e\u0301", "🎙️", "👩‍💻", "🇫🇷", "日本", "\r\n", "\u200d", "1\ufe0f\u20e3"]
    texts = ["", "plain", "line\r\nnext", "\r", "\n\r", "a\rb"]
    for _ in range(3000):
        pool = ascii_chars if rng.random() < 0.7 else ascii_chars + other
        texts.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 40))))
    for text in texts:
        assert grapheme_length(text) == grapheme.length(text), repr(text)
        slow = sum(
            len(g.encode("utf-8")) if emoji.emoji_count(g) else 1 for g in grapheme.graphemes(text)
        )
        assert threads_count(text) == slow, repr(text)

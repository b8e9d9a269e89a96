"""Per-network length rules and word-boundary shortening (real twitter-text, real grapheme)."""

from __future__ import annotations

import grapheme
import pytest

from syndicator.announce import fit

FAMILY = "👩‍👩‍👧‍👦"  # 7 code points, one grapheme
FLAG = "🇧🇷"
E_ACUTE = "e\u0301"  # decomposed: 2 code points, one grapheme


def test_default_limits() -> None:
    assert fit.default_limit("twitter") == 280
    assert fit.default_limit("mastodon") == 500
    assert fit.default_limit("bluesky") == 300
    assert fit.default_limit("apprise") == 2000
    with pytest.raises(ValueError, match="unknown network"):
        fit.default_limit("myspace")


def test_twitter_weights() -> None:
    assert fit.count("hello", "twitter") == 5
    assert fit.count("日本語", "twitter") == 6
    assert fit.count("한국어", "twitter") == 6
    assert fit.count("😀", "twitter") == 2
    assert fit.count(FAMILY, "twitter") == 2
    assert fit.count("…", "twitter") == 2
    url = "https://example.com/" + "a" * 200
    assert fit.count(url, "twitter") == 23
    assert fit.count(f"see {url} now", "twitter") == 4 + 23 + 4


def test_mastodon_rules() -> None:
    assert fit.count("@filipe@fosstodon.org", "mastodon") == len("@filipe")
    assert fit.count("hi @filipe@fosstodon.org!", "mastodon") == len("hi @filipe!")
    assert fit.count("@local", "mastodon") == 6
    url = "https://example.com/" + "a" * 200
    assert fit.count(url, "mastodon") == 23
    assert fit.count(f"({url}).", "mastodon") == 23 + 3  # punctuation is not the URL's
    # a mention inside a URL is part of the URL, not a mention
    assert fit.count("https://fosstodon.org/@filipe", "mastodon") == 23
    # graphemes, not code points
    assert fit.count(FAMILY + E_ACUTE, "mastodon") == 2
    # an e-mail address is not a mention
    assert fit.count("me@example.com", "mastodon") == len("me@example.com")


def test_bluesky_counts_graphemes() -> None:
    text = f"{FAMILY} {FLAG} caf{E_ACUTE} 👨🏽‍💻"
    assert fit.count(text, "bluesky") == 10
    assert len(text) > 20
    url = "https://example.com/" + "a" * 100
    assert fit.count(url, "bluesky") == len(url)  # links count in full


def test_apprise_counts_characters() -> None:
    assert fit.count("abc " + FAMILY, "apprise") == 4 + len(FAMILY)


def test_word_cuts_end_at_word_boundaries() -> None:
    text = "Meteor Cloud, Is a Full Service"
    cuts = fit.word_cuts(text)
    assert [cuts[i] for i in range(len(cuts))] == [
        "Meteor…",
        "Meteor Cloud…",
        "Meteor Cloud, Is…",
        "Meteor Cloud, Is a…",
        "Meteor Cloud, Is a Full…",
    ]
    empty = fit.word_cuts("one two", allow_empty=True)
    assert [empty[i] for i in range(len(empty))] == ["", "one…"]
    assert len(fit.word_cuts("single")) == 0


def test_word_cuts_keep_urls_and_handles_whole() -> None:
    text = "see https://example.com/a-b and @user@host.example then more words"
    cuts = [fit.word_cuts(text)[i] for i in range(len(fit.word_cuts(text)))]
    assert "see https://example.com/a-b …" in cuts
    assert "see https://example.com/a-b and @user@host.example …" in cuts
    for c in cuts:
        if "https" in c:
            assert "https://example.com/a-b" in c


def test_grapheme_cuts_never_split_clusters() -> None:
    word = (FAMILY + E_ACUTE + FLAG) * 3
    cuts = fit.grapheme_cuts(word + " tail")
    assert len(cuts) == grapheme.length(word) - 1
    for i in range(len(cuts)):
        kept = cuts[i].removesuffix("…")
        assert word.startswith(kept)
        assert grapheme.length(kept) == i + 1
        assert list(grapheme.graphemes(kept)) == list(grapheme.graphemes(word))[: i + 1]
    assert len(fit.grapheme_cuts("https://example.com/very-long")) == 0
    assert len(fit.grapheme_cuts("@someone")) == 0


def test_longest_binary_search() -> None:
    calls: list[int] = []

    def fits(i: int) -> bool:
        calls.append(i)
        return i <= 700

    assert fit.longest(1000, fits) == 700
    assert len(calls) <= 12
    assert fit.longest(10, lambda i: False) is None
    assert fit.longest(0, lambda i: True) is None
    assert fit.longest(5, lambda i: True) == 4

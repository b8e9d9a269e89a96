"""Rate-limit headers and "could it have been received?" for transport failures."""

from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest
import requests
from fakes import FakeWebhook, refused_url

from syndicator.channels._net import never_sent, retry_after, same_text, transport_error
from syndicator.channels.base import TransientError, UnknownOutcome
from syndicator.retry_after import MAX_RETRY_AFTER

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": formatdate(NOW + 90, usegmt=True)}, 90.0),
        ({"x-rate-limit-reset": str(int(NOW + 120))}, 120.0),  # X: epoch seconds
        ({"X-RateLimit-Reset": "2023-11-14T22:15:20.000Z"}, 120.0),  # Mastodon: ISO time
        ({"ratelimit-reset": str(int(NOW + 5))}, 5.0),  # Bluesky
        ({"x-rate-limit-reset": str(int(NOW - 50))}, 0.0),  # already passed
        ({"Retry-After": "soon"}, None),
        ({}, None),
        # absurd values: ignored, or clamped to a day
        ({"Retry-After": "1e400"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "NaN"}, None),
        ({"Retry-After": "9" * 40}, MAX_RETRY_AFTER),
        ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, MAX_RETRY_AFTER),
        ({"Retry-After": "1e400", "x-rate-limit-reset": "1e400"}, None),
        ({"x-rate-limit-reset": "9" * 30}, MAX_RETRY_AFTER),
        ({"X-RateLimit-Reset": "9999-12-31T23:59:59Z"}, MAX_RETRY_AFTER),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers, now=NOW) == expected


def test_refused_never_sent_and_timeout_maybe_sent() -> None:
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(refused_url(), timeout=1)
    assert never_sent(refused.value)
    assert isinstance(transport_error(refused.value, "posting"), TransientError)
    with pytest.raises(httpx.ConnectError) as refused2:
        httpx.post(refused_url(), timeout=1)
    assert never_sent(refused2.value)
    with FakeWebhook() as hook:
        hook.hang_next(seconds=2)
        with pytest.raises(requests.ReadTimeout) as slow:
            requests.post(hook.url + "/x", timeout=0.3)
        err = transport_error(slow.value, "posting")
        assert isinstance(err, UnknownOutcome) and "timed out waiting" in err.message
        hook.drop_next()
        with pytest.raises(httpx.RemoteProtocolError) as dropped:
            httpx.post(hook.url + "/x", timeout=1)
        assert not never_sent(dropped.value)


def test_same_text_ignores_link_rewrites_escaping_and_mention_domains() -> None:
    frozen = "Ep 9 with @ann@example.social: Tom & Jerry https://example.com/9?a=1&b=2"
    assert same_text(frozen, "Ep 9 with @ann: Tom &amp; Jerry https://t.co/AbC123")
    assert not same_text(frozen, "Ep 10 with @ann: Tom &amp; Jerry https://t.co/AbC123")
    assert same_text("A long announcement that X cut short " * 3, "A long announcement that X …")

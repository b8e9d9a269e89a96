"""feeds/safety.py: XML bombs, external entities and bodies naming local files are refused."""

from __future__ import annotations

import codecs
import io
import time

import pytest
from feedtools import only_problem, poll_one

from syndicator.sources.feeds.parse import parse_feed
from syndicator.sources.feeds.safety import ENTITY_REFUSAL, declares_entities

try:
    from tests.feedserver import (
        FeedServer,
        billion_laughs_xml,
        xxe_xml,
    )
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from feedserver import (  # type: ignore[no-redef]
        FeedServer,
        billion_laughs_xml,
        xxe_xml,
    )


def test_body_naming_a_local_file_is_not_opened(srv: FeedServer) -> None:
    srv.add_feed("/path", b"/etc/passwd")
    res = poll_one(srv.url("/path"))
    assert res.status == "error"
    assert "root:" not in repr(res)


def test_xml_bomb_refused_fast(srv: FeedServer) -> None:
    srv.add_feed("/bomb", billion_laughs_xml())
    t = time.monotonic()
    res = poll_one(srv.url("/bomb"))
    assert time.monotonic() - t < 2
    assert res.status == "error" and res.episodes == []
    p = only_problem(res)
    assert p.kind == "xml-entities" and ENTITY_REFUSAL in p.message
    assert "lollol" not in repr(res)


def test_xxe_refused_and_file_never_read(srv: FeedServer) -> None:
    srv.add_feed("/xxe", xxe_xml("/etc/passwd"))
    res = poll_one(srv.url("/xxe"))
    assert res.status == "error" and only_problem(res).kind == "xml-entities"
    assert "root:" not in repr(res)


def test_xxe_libraries_do_not_resolve_either() -> None:
    # defence in depth: were the pre-check bypassed, neither parser reads the file
    import feedparser

    from syndicator.sources.feeds.podcast import podcast_ns_items as _podcast_ns_items

    body = xxe_xml("/etc/passwd").replace(
        b"<rss ", b'<rss xmlns:podcast="https://podcastindex.org/namespace/1.0" '
    )
    d = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    assert "root:" not in repr(d)
    items, error = _podcast_ns_items(body)
    assert items == [] and error and "root:" not in repr(items)
    assert not parse_feed(body, "http://h/f").ok


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'<?xml version="1.0"?><rss/>', False),
        (b"<!DOCTYPE html><html></html>", False),
        (
            b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS'
            b' 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss/>',
            False,
        ),
        (b"<!DOCTYPE r [<!ELEMENT r ANY>]><r/>", False),
        (b'<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>', True),
        (b'<?xml version="1.0"?>\n<!-- hi --><?pi x?>\n<!doctype r [<!entity a "b">]><r/>', True),
        (b'<!DOCTYPE r [<!ATTLIST r x "]>"><!ENTITY % p SYSTEM "file:///etc/passwd">]><r/>', True),
        (b'<!DOCTYPE r SYSTEM "x[" [<!ENTITY a "b">]><r/>', True),
        (codecs.BOM_UTF8 + b'<!DOCTYPE r [<!ENTITY a "b">]><r/>', True),
        ('<!DOCTYPE r [<!ENTITY a "b">]><r/>'.encode("utf-16"), True),
        ('<!DOCTYPE r [<!ENTITY a "b">]><r/>'.encode("utf-16-be"), True),
        (b"<rss><!-- <!ENTITY in a comment, after the root --></rss>", False),
    ],
)
def test_declares_entities(body: bytes, refused: bool) -> None:
    assert declares_entities(body) is refused

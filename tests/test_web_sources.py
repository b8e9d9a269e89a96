"""The admin page's sources: search and paging done by the database, each show's artwork."""

from __future__ import annotations

from pathlib import Path

from test_web_support import client, engine_for, running, web_settings, write

from syndicator.sourcelist import import_opml
from syndicator.sources.base import ShowData
from syndicator.store import shows
from syndicator.timeutil import utcnow
from tests.test_opml import write_big_opml


def test_sources_page_searches_and_pages_with_artwork(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    import_opml(engine, settings, write_big_opml(tmp_path / "n.opml", 120))
    with write(engine) as s:
        show = ShowData(title="Owls at Night", image="https://cdn.example/owl.jpg",
                        author="DJ Owl", locked=True)  # fmt: skip
        shows.upsert(s, "show-7-friends", show, "https://feeds7.example/show/7.xml", utcnow())
        evil = ShowData(title="<script>alert(1)</script>", image="javascript:alert(1)")
        shows.upsert(s, "show-8-friends", evil, "https://feeds8.example/show/8.xml", utcnow())
    with running(settings) as server, client(server) as c:
        page1 = c.get("/sources")
        assert page1.status_code == 200
        assert "120 sources" in page1.text and "page 1 of 3" in page1.text
        assert page1.text.count("/episodes?source=") == 50
        page3 = c.get("/sources", params={"page": 3})
        assert page3.text.count("/episodes?source=") == 20 and 'rel="prev"' in page3.text
        found = c.get("/sources", params={"q": "owls"})
        assert "1 source" in found.text and "show-7-friends" in found.text
        assert '<img class="artwork" src="https://cdn.example/owl.jpg"' in found.text
        assert "DJ Owl" in found.text and ">locked<" in found.text
        by_url = c.get("/sources", params={"q": "feeds8.example/show/8.xml"})
        assert "&lt;script&gt;" in by_url.text and "<script>alert" not in by_url.text
        assert "javascript:alert" not in by_url.text  # no artwork from a non-http(s) URL
        home = c.get("/")
        assert "120 sources" in home.text and 'href="/sources">all 120' in home.text
        assert home.text.count("/episodes?source=") == 20  # a page, not every source
        none = c.get("/sources", params={"q": "nothing-like-this"})
        assert "0 sources" in none.text and "sources import FILE.opml" in none.text

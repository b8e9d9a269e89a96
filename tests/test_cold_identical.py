"""A cold pass stores what it stored before it was made faster (issue 14).

The fast paths (batched delivery inserts, the mojibake check run only near non-ASCII
characters, ...) must not change one stored value. `tests/golden/cold_pass.json` is what a
whole `run_once` stored for these feeds before that work (written by this file's
`__main__` with the code of commit 678715a); the test runs the same pass with today's code
and compares every column of every episode, delivery and history event, on each engine
(PostgreSQL's sequences skip the ids a rolled-back insert took, so each has its file).

    python tests/test_cold_identical.py --write [--pg postgresql://postgres@127.0.0.1/postgres]
    (only when a stored value is meant to change)
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"  # cold_pass.<engine>.json: ids are the engine's own (sequences)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# Unstable by design: a record key is a TID from the clock of the process that planned it.
UNSTABLE = {"deliveries": {"record_key"}}

# Mojibake, correct accents, C1 controls, emoji and curly quotes: the repairs must hold.
_TEXT = [
    "Filipe N√©vola and S√∏ren on caf√© culture",
    "CafÃ© au lait â€” the sequel",
    "Já chegou: ação, coração, “quotes” and ’apostrophes’ — fine as they are",
    "Ñandú, Zoë, Ærø: Ünïcödé that is correct",
    "Emoji 👩🏽‍💻 and a headless one üìÑ",
    "C1 controls \x85 and \x96 from cp1252",
    "Кириллица и 日本語のテキスト",
]


def _mojibake_feed() -> bytes:
    items = "".join(
        f"<item><title>{t}</title><guid>moji-{i}</guid>"
        f"<pubDate>Wed, {20 + i} Nov 2026 09:00:00 GMT</pubDate>"
        f"<description><![CDATA[<p>{t}</p><p>{_TEXT[(i + 1) % len(_TEXT)]}</p>]]></description>"
        f'<enclosure url="https://moji.example/{i}.mp3" length="{1000 + i}" type="audio/mpeg"/>'
        "</item>"
        for i, t in enumerate(_TEXT)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Mojibake FM</title><link>https://moji.example/</link>{items}</channel></rss>"
    ).encode()


def feeds() -> dict[str, bytes]:
    from feedserver import make_feed_xml

    out = {p.stem: p.read_bytes() for p in sorted((HERE / "feeds").glob("*.xml"))}
    out["moji"] = _mojibake_feed()
    for seed in (1, 2):  # some items inside the announce window, most back catalogue
        out[f"gen{seed}"] = make_feed_xml(
            25, seed=seed, title=f"Gen {seed}", start=NOW - timedelta(days=60),
            base_url=f"https://gen{seed}.example.com",
        )  # fmt: skip
    return out


def run_and_dump(tmp_path: Path, db_url: str) -> dict[str, list[dict[str, Any]]]:
    """A cold pass over `feeds()` served from 127.0.0.1, then every row it stored."""
    import sqlalchemy as sa
    from feedserver import FeedServer

    from syndicator import config
    from syndicator.pipeline import run_once
    from syndicator.store.db import upgrade

    with FeedServer() as srv:
        for name, body in feeds().items():
            srv.add_feed(f"/{name}.xml", body)
        settings = config.from_dict(
            {
                "podcast": {"title": "T", "link": "https://show.example",
                            "feed_url": "https://show.example/feed.xml", "timezone": "UTC"},
                "database": {"url": db_url},
                "announce": {"window": "14d"},
                # one request at a time: the feeds are stored in one order, so ids match
                "fetch": {"max_connections": 1, "max_per_host": 1},
                "channels": [{"name": "x", "type": "twitter", "dry_run": True}],
                "sources": [{"name": n, "type": "feed", "url": srv.url(f"/{n}.xml")}
                            for n in feeds()],
            },
            tmp_path,
        )  # fmt: skip
        run_once(settings, now=NOW)
        base = srv.url("")
    out: dict[str, list[dict[str, Any]]] = {}
    with upgrade(db_url).connect() as conn:
        for table, order in (
            ("episodes", "guid"),
            ("deliveries", "key"),
            ("episode_events", "episode_id, event"),
        ):
            rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).mappings()
            skip = UNSTABLE.get(table, set())
            out[table] = [
                _served_from(base, {k: _plain(v) for k, v in r.items() if k not in skip})
                for r in rows
            ]
    return out


def _served_from(base: str, row: dict[str, Any]) -> dict[str, Any]:
    """The test server's port out of a row: relative links (tests/feeds/hostile_urls.xml)
    are made absolute against it. Such a row's content hash covers the port, so it is
    left out for that row only."""
    text = json.dumps(row, default=str, ensure_ascii=False)
    if base not in text:
        return row
    row = json.loads(text.replace(base, "http://feeds.test/"))
    row.pop("content_hash", None)
    return row


def _plain(v: Any) -> Any:
    """One spelling per value on both engines: JSON text parsed, times as UTC ISO. The
    pass's clock starts at NOW and moves on while it runs: a time in its first hour is
    "the pass's time", whatever the machine's speed."""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] in " T":
        try:
            v = datetime.fromisoformat(v)  # SQLite keeps times as text
        except ValueError:
            return v
    if isinstance(v, datetime):
        v = (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
        return "pass time" if NOW <= v < NOW + timedelta(hours=1) else v.isoformat()
    return v


def _golden(db_url: str) -> Path:
    engine = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    return GOLDEN / f"cold_pass.{engine}.json"


def test_a_cold_pass_stores_what_it_stored_before(tmp_path: Path, db_url: str) -> None:
    expected = json.loads(_golden(db_url).read_text())
    got = json.loads(json.dumps(run_and_dump(tmp_path, db_url), default=str))
    assert [len(got[t]) for t in expected] == [len(expected[t]) for t in expected]
    assert len(got["episodes"]) > 50 and len(got["deliveries"]) > 50
    for table, rows in expected.items():
        for want, have in zip(rows, got[table], strict=True):
            assert have == want, f"{table}: {want.get('guid') or want.get('key')}"


def test_the_mojibake_check_near_non_ascii_answers_as_ftfy_does() -> None:
    """`_looks_bad` tries ftfy's badness regex only near non-ASCII characters: on random
    mixes of ASCII and the characters mojibake is made of, it says what `is_bad` says."""
    import random

    from ftfy.badness import MOJIBAKE_CATEGORIES, is_bad

    from syndicator.sources.text import _looks_bad

    odd = "".join(MOJIBAKE_CATEGORIES.values()).replace("-", "") + (
        "ŒœØÙà√≈‚Äâóêвўβā°×²³ÂÃÎÐ\xa0\u2028é日本👩"
    )
    plain = "abcxyzABC .,?!'\"-\t\n0123"
    rnd = random.Random(14)
    seen = {True: 0, False: 0}
    for _ in range(20_000):
        density = rnd.choice((0.02, 0.1, 0.4, 0.9))
        text = "".join(
            rnd.choice(odd) if rnd.random() < density else rnd.choice(plain)
            for _ in range(rnd.randint(1, 80))
        )
        bad = is_bad(text)
        assert _looks_bad(text) == bad, repr(text)
        seen[bad] += 1
    assert min(seen.values()) > 1000  # both answers were exercised


def test_fix_text_skips_ftfy_only_where_ftfy_changes_nothing() -> None:
    """Every non-ASCII line of the generated feeds and the mojibake samples: the same
    result as running ftfy on every line."""
    import ftfy
    from feedserver import make_feed_xml

    from syndicator.sources import text as text_mod

    lines = [*_TEXT, *(t[::-1] for t in _TEXT)]
    for seed in range(3):
        lines += make_feed_xml(30, seed=seed).decode().splitlines()
    for line in (x for x in lines if not x.isascii()):
        assert text_mod.fix_text(line) == text_mod.repair_after_ftfy(
            ftfy.fix_text(line, text_mod._FTFY)
        ), line


if __name__ == "__main__":
    import tempfile
    import uuid

    import sqlalchemy as sa

    sys.path.insert(0, str(HERE))
    if "--write" not in sys.argv:
        raise SystemExit(__doc__)
    admin_url = sys.argv[sys.argv.index("--pg") + 1] if "--pg" in sys.argv else None
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/golden.db"
        if admin_url:
            admin, name = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT"), uuid.uuid4()
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "golden_{name.hex[:10]}"'))
            url = f"{admin_url.rsplit('/', 1)[0]}/golden_{name.hex[:10]}"
        try:
            dumped = run_and_dump(Path(d), url)
        finally:
            if admin_url:
                from syndicator.store.db import dispose_all

                dispose_all()
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE "golden_{name.hex[:10]}" WITH (FORCE)'))
    out = _golden(url)
    GOLDEN.mkdir(exist_ok=True)
    out.write_text(json.dumps(dumped, default=str, indent=1, ensure_ascii=False) + "\n")
    print({t: len(r) for t, r in dumped.items()}, "->", out)

"""Compare candidate fast feed parsers with feedparser on what syndicator reads.

    .venv/bin/pip install fastfeedparser feedparser-rs   # the candidates (not dependencies)
    .venv/bin/python bench/compare_parsers.py [--podcastparser DIR] [--items 100] [--feeds 50]

Every body goes through syndicator's own `parse_feed` twice: once reading with feedparser
(the reference) and once with the candidate, so the comparison is on the fields syndicator
keeps (the episodes it would store and the problems it would report), not on each
parser's raw dictionary. A feed counts as "same" when both readings give equal episodes and
equal problem kinds; "differs" when both read it but disagree; "fails" when the candidate
raises or reads nothing where feedparser read episodes.

Corpus: gPodder podcastparser's test feeds (tests/data/*.rss of github.com/gpodder/
podcastparser, given with --podcastparser), the feeds in tests/feeds/*.xml, the hostile
bodies of tests/feedserver.py, and generated podcast feeds (tests/feedserver.make_feed_xml).
Speed: the time for `--feeds` generated feeds of `--items` items, parse only (one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedserver import billion_laughs_xml, html_page, make_feed_xml, xxe_xml  # noqa: E402

from syndicator.sources.feeds.parse import ParsedFeed, feedparser_read, parse_feed  # noqa: E402

Reader = Callable[[bytes, dict[str, str]], Any]


def _fastfeedparser(body: bytes, headers: dict[str, str]) -> Any:
    import fastfeedparser

    return fastfeedparser.parse(body)


def _feedparser_rs(body: bytes, headers: dict[str, str]) -> Any:
    import feedparser_rs

    return feedparser_rs.parse(body)


CANDIDATES: dict[str, Reader] = {"feedparser-rs": _feedparser_rs, "fastfeedparser": _fastfeedparser}


def corpus(pp_dir: Path | None) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    if pp_dir is not None:
        out += [(f"podcastparser/{p.name}", p.read_bytes()) for p in sorted(pp_dir.glob("*.rss"))]
    fixtures = sorted((ROOT / "tests" / "feeds").glob("*.xml"))
    out += [(f"tests/feeds/{p.name}", p.read_bytes()) for p in fixtures]
    out += [
        ("generated/podcast-20", make_feed_xml(20)),
        ("generated/plain-20", make_feed_xml(20, persons=False, chapters=False, transcripts=False)),
        ("hostile/billion-laughs", billion_laughs_xml()),
        ("hostile/xxe", xxe_xml()),
        ("hostile/html-page", html_page().encode()),
        ("hostile/truncated", make_feed_xml(5)[:-400]),
        ("hostile/empty", b""),
        ("hostile/json", b'{"version": "https://jsonfeed.org/version/1"}'),
    ]
    return out


def _key(r: ParsedFeed) -> tuple[Any, ...]:
    return (r.ok, r.episodes, sorted(p.kind for p in r.problems))


def _first_difference(a: ParsedFeed, b: ParsedFeed) -> str:
    if a.ok != b.ok:
        return f"ok {a.ok} vs {b.ok}"
    if len(a.episodes) != len(b.episodes):
        return f"{len(a.episodes)} vs {len(b.episodes)} episodes"
    for ea, eb in zip(a.episodes, b.episodes, strict=True):
        for name in ea.__dataclass_fields__:
            va, vb = getattr(ea, name), getattr(eb, name)
            if va != vb:
                return f"{name}: {str(va)[:40]!r} vs {str(vb)[:40]!r}"
    return f"problems {sorted(p.kind for p in a.problems)} vs {sorted(p.kind for p in b.problems)}"


def compare(items: list[tuple[str, bytes]], verbose: bool) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for name, reader in CANDIDATES.items():
        counts = {"same": 0, "differs": 0, "fails": 0}
        fields: dict[str, int] = {}
        for label, body in items:
            ref = parse_feed(body, "https://example.org/feed.xml", reader=feedparser_read)
            try:
                got = parse_feed(body, "https://example.org/feed.xml", reader=reader)
            except Exception as exc:  # a candidate may raise where feedparser does not
                counts["fails"] += 1
                if verbose:
                    print(f"  {name} {label}: raised {type(exc).__name__}: {exc}")
                continue
            if _key(ref) == _key(got):
                counts["same"] += 1
                continue
            bucket = "fails" if ref.episodes and not got.episodes else "differs"
            counts[bucket] += 1
            why = _first_difference(ref, got)
            fields[why.split(":")[0]] = fields.get(why.split(":")[0], 0) + 1
            if verbose:
                print(f"  {name} {label}: {bucket}: {why}")
        table[name] = counts
        print(f"{name}: {counts}; first differing field, by count: {fields}")
    return table


def speed(feeds: int, n_items: int) -> None:
    bodies = [make_feed_xml(n_items, seed=i) for i in range(feeds)]
    mb = sum(map(len, bodies)) / 1e6
    readers: dict[str, Reader] = {"feedparser": feedparser_read, **CANDIDATES}
    for name, reader in readers.items():
        t = time.perf_counter()
        for b in bodies:
            reader(b, {})
        raw = time.perf_counter() - t
        t = time.perf_counter()
        for b in bodies:
            parse_feed(b, "https://example.org/feed.xml", reader=reader)
        full = time.perf_counter() - t
        print(
            f"{name}: {feeds} feeds x {n_items} items ({mb:.1f} MB): reader alone {raw:.2f} s "
            f"({mb / raw:.1f} MB/s); syndicator's whole parse_feed {full:.2f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--podcastparser", type=Path, default=None, help="podcastparser tests/data")
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    items = corpus(args.podcastparser)
    print(f"correctness on {len(items)} bodies (episodes and problem kinds vs feedparser):")
    compare(items, args.verbose)
    speed(args.feeds, args.items)


if __name__ == "__main__":
    main()

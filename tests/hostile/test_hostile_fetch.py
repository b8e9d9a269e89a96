"""Hostile remote feeds: decompression bombs in every Content-Encoding, served on 127.0.0.1.

Each bomb is a few kilobytes to a few hundred on the wire and 2 GiB decoded, more than the
memory ceiling of this test: if the byte cap stopped counting decoded bytes for one
encoding, the test would die of MemoryError instead of seeing a "too-large" problem.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syndicator.config import FeedSourceConfig, FetchConfig
from syndicator.sources.feeds.decode import accept_encoding
from syndicator.sources.feeds.poll import PollRequest, poll_feeds_sync
from syndicator.sources.feeds.safety import IPAddress
from tests.feedserver import FeedServer, Route, make_feed_xml
from tests.hostile.conftest import run_cli

ZEROS = bytes(16 * 1024 * 1024)
COPIES = 128  # 128 x 16 MiB = 2 GiB decoded
DECODED = len(ZEROS) * COPIES
CAP = 1024 * 1024


def _raw_deflate_zeros() -> bytes:
    """Raw deflate of DECODED zero bytes, built from one byte-aligned segment repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = c.compress(ZEROS) + c.flush(zlib.Z_FULL_FLUSH)  # no back-reference across it
    return segment * COPIES + b"\x03\x00"  # an empty final block


def _checksums() -> tuple[int, int]:
    crc, adler = 0, 1
    for _ in range(COPIES):
        crc = zlib.crc32(ZEROS, crc)
        adler = zlib.adler32(ZEROS, adler)
    return crc, adler


def _gzip(raw: bytes, crc: int, size: int) -> bytes:
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", crc, size)


def _zstd_zeros() -> bytes:
    import zstandard

    c = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join(c.compress(ZEROS) for _ in range(COPIES)) + c.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[str, bytes]]:
    raw = _raw_deflate_zeros()
    crc, adler = _checksums()
    gz = _gzip(raw, crc, DECODED & 0xFFFFFFFF)
    zst = _zstd_zeros()
    gz_of_gz = _gzip_of(gz)
    return {
        "/gzip": ("gzip", gz),
        "/deflate": ("deflate", b"\x78\xda" + raw + struct.pack(">I", adler)),
        "/raw-deflate": ("deflate", raw),
        "/gzip-gzip": ("gzip, gzip", gz_of_gz),
        "/zstd": ("zstd", zst),
        "/zstd-gzip": ("zstd, gzip", _gzip_of(zst)),
        "/x-gzip-chunked": ("x-gzip", gz),
    }


def _gzip_of(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def _source(url: str, name: str) -> FeedSourceConfig:
    return FeedSourceConfig(
        type="feed", name=name, url=url, timeout=timedelta(seconds=20), max_bytes=CAP
    )


def test_bombs_in_every_encoding_stop_at_the_cap(
    srv: FeedServer, bombs: dict[str, tuple[str, bytes]]
) -> None:
    for path, (encoding, body) in bombs.items():
        assert len(body) < DECODED // 500, path  # small on the wire...
        srv.add(
            path,
            Route(
                body=body,
                headers={"Content-Encoding": encoding},
                chunked=path.endswith("chunked"),
            ),
        )
    srv.add_feed("/good", make_feed_xml(3))
    paths = [*bombs, "/good"]
    reqs = [PollRequest(_source(srv.url(p), p.strip("/")), srv.url(p)) for p in paths]
    results = poll_feeds_sync(reqs, FetchConfig(), parse_in="loop")
    by_path = dict(zip(paths, results, strict=True))
    assert by_path["/good"].status == "ok" and len(by_path["/good"].episodes) == 3
    for path in bombs:
        res = by_path[path]
        assert res.status == "error", path
        [problem] = res.problems
        assert problem.kind == "too-large", (path, problem.message)
        assert "decoded" in problem.message and "max_bytes" in problem.message
    # every request said which encodings the client can bound
    assert {r.headers.get("accept-encoding") for r in srv.requests()} == {accept_encoding()}
    assert "br" not in accept_encoding()


def test_an_encoding_not_asked_for_is_a_problem_not_a_guess(srv: FeedServer) -> None:
    # Brotli cannot be decoded within a bound with the `brotli` binding, so it is not asked
    # for; a server that sends it anyway gets a clear problem, and the other feed is read.
    srv.add("/br", Route(body=b"\x1b" * 5000, headers={"Content-Encoding": "br"}))
    srv.add(
        "/stacked",
        Route(body=_gzip_of(b"x"), headers={"Content-Encoding": "gzip, " * 6 + "gzip"}),
    )
    srv.add_feed("/good", make_feed_xml(2))
    paths = ["/br", "/stacked", "/good"]
    reqs = [PollRequest(_source(srv.url(p), p.strip("/")), srv.url(p)) for p in paths]
    br, stacked, good = poll_feeds_sync(reqs, FetchConfig(), parse_in="loop")
    assert good.status == "ok"
    for res in (br, stacked):
        [problem] = res.problems
        assert problem.kind == "encoding", problem.message
        assert "Content-Encoding" in problem.message
    assert "'br'" in br.problems[0].message


# ---- redirects into the private network ---------------------------------------------------
# Tests only have 127.0.0.1, so the resolver at fetch.py's boundary says "127.0.0.1" is a
# public host and "localhost" a loopback one; every request still goes to 127.0.0.1.

PUBLIC = ipaddress.ip_address("93.184.215.14")


async def _resolver(host: str, port: int) -> list[IPAddress]:
    return [PUBLIC] if host == "127.0.0.1" else [ipaddress.ip_address("127.0.0.1")]


def _poll_redirect(srv: FeedServer, start_host: str, fetch: FetchConfig, **src_kw: object):  # type: ignore[no-untyped-def]
    srv.add_feed("/internal", make_feed_xml(2))
    srv.add_redirect("/feed", srv.url("/internal", host="localhost"), status=301)
    url = srv.url("/feed", host=start_host)
    source = FeedSourceConfig(type="feed", name="s", url=url, **src_kw)  # type: ignore[arg-type]
    [res] = poll_feeds_sync([PollRequest(source, url)], fetch, parse_in="loop", resolver=_resolver)
    return res


def test_a_public_feed_cannot_redirect_into_the_private_network(srv: FeedServer) -> None:
    res = _poll_redirect(srv, "127.0.0.1", FetchConfig())
    assert res.status == "error"
    [problem] = res.problems
    assert problem.kind == "redirect"
    assert "private, loopback or link-local" in problem.message
    assert "allow_private_redirects" in problem.message
    assert res.new_url is None  # the source is not moved there either
    assert srv.count("/feed") == 1 and srv.count("/internal") == 0  # never requested


def test_private_redirects_allowed_per_source_or_globally(srv: FeedServer) -> None:
    res = _poll_redirect(srv, "127.0.0.1", FetchConfig(), allow_private_redirects=True)
    assert res.status == "ok" and len(res.episodes) == 2
    res = _poll_redirect(srv, "127.0.0.1", FetchConfig(allow_private_redirects=True))
    assert res.status == "ok"
    # a source's own `false` wins over the global `true`
    res = _poll_redirect(
        srv, "127.0.0.1", FetchConfig(allow_private_redirects=True), allow_private_redirects=False
    )
    assert res.status == "error" and res.problems[0].kind == "redirect"


def test_a_private_feed_may_redirect_within_the_private_network(srv: FeedServer) -> None:
    res = _poll_redirect(srv, "localhost", FetchConfig())
    assert res.status == "ok" and len(res.episodes) == 2


# ---- a whole pass through the CLI ---------------------------------------------------------


def test_one_pass_survives_bombs_and_absurd_retry_after(
    tmp_path: Path, srv: FeedServer, bombs: dict[str, tuple[str, bytes]]
) -> None:
    """Bombs and absurd Retry-After values in one `run-once`: each is one problem for its
    source, the good feed is stored, and a second pass still runs."""
    encoding, body = bombs["/zstd"]
    srv.add("/zstd", Route(body=body, headers={"Content-Encoding": encoding}))
    encoding, body = bombs["/gzip-gzip"]
    srv.add("/gzip-gzip", Route(body=body, headers={"Content-Encoding": encoding}))
    srv.add_status("/inf", 429, retry_after="1e400")
    srv.add_status("/far", 503, retry_after="Fri, 31 Dec 9999 23:59:59 GMT")
    srv.add_status("/huge", 429, retry_after="9" * 40)
    srv.add_feed("/good", make_feed_xml(3))
    names = ["zstd", "gzip-gzip", "inf", "far", "huge", "good"]
    sources = "".join(
        f'[[sources]]\nname = "{n}"\ntype = "feed"\nurl = "{srv.url("/" + n)}"\n'
        f'timeout = "20s"\nmax_bytes = {CAP}\n'
        for n in names
    )
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(
        '[podcast]\ntitle = "Show"\nlink = "https://show.example"\ntimezone = "UTC"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n{sources}'
    )
    done = run_cli(cfg, "run-once", "-v", timeout=80)
    assert "Traceback" not in done.stderr, done.stderr
    status = json.loads(run_cli(cfg, "status", "--json").stdout)
    by_name = {s["name"]: s for s in status["sources"]}
    assert by_name["good"]["ok"] and by_name["good"]["episodes"] == 3
    kinds = {(p["location"], p["kind"]) for p in status["problems"]}
    assert (srv.url("/zstd"), "too-large") in kinds
    assert (srv.url("/gzip-gzip"), "too-large") in kinds
    now = datetime.fromisoformat(status["now"].replace("Z", "+00:00"))
    for name in ("inf", "far", "huge"):
        src = by_name[name]
        assert not src["ok"] and src["consecutive_errors"] == 1, src
        due = datetime.fromisoformat(src["next_due"].replace("Z", "+00:00"))
        assert due <= now + timedelta(days=1, minutes=1), (name, due)  # clamped to a day
    again = run_cli(cfg, "run-once", "--force", "-v", timeout=80)
    assert "Traceback" not in again.stderr, again.stderr


def test_a_redirect_target_that_does_not_resolve_is_not_requested(srv: FeedServer) -> None:
    async def failing(host: str, port: int) -> list[IPAddress]:
        if host == "127.0.0.1":
            return [PUBLIC]
        raise OSError("Name or service not known")

    srv.add_redirect("/feed", srv.url("/internal", host="localhost"))
    url = srv.url("/feed")
    source = FeedSourceConfig(type="feed", name="s", url=url)
    [res] = poll_feeds_sync([PollRequest(source, url)], FetchConfig(), resolver=failing)
    [problem] = res.problems
    assert problem.kind == "connect" and "could not resolve localhost" in problem.message
    assert srv.count("/internal") == 0


def test_an_error_page_in_an_odd_encoding_still_reports_its_status(srv: FeedServer) -> None:
    srv.add("/gone-br", Route(status=404, body=b"\x1b" * 100, headers={"Content-Encoding": "br"}))
    bomb = {"Content-Encoding": "gzip", "Retry-After": "60"}
    srv.add("/busy-bomb", Route(status=503, body=_gzip_of(bytes(50_000_000)), headers=bomb))
    paths = ["/gone-br", "/busy-bomb"]
    reqs = [PollRequest(_source(srv.url(p), p.strip("/")), srv.url(p)) for p in paths]
    gone, busy = poll_feeds_sync(reqs, FetchConfig(), parse_in="loop")
    assert gone.http_status == 404 and gone.problems[0].kind != "encoding"
    assert busy.http_status == 503 and busy.retry_after == 60

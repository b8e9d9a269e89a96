"""Content-Encoding decoding with a bound on the decoded size, for remote feeds.

httpx's own decoders hand back everything one network chunk expands to: a few hundred
kilobytes of zstd (or of gzip inside gzip) become gigabytes in one call. Here every layer
yields its output in pieces of at most CHUNK bytes (zlib's `max_length`, zstandard's
`write_size`) and stops once it has produced more than its limit, so the memory a body
can take is the cap plus a chunk, whatever the compression ratio.

Only encodings that can be bounded are asked for (`accept_encoding()`): gzip and deflate
and zstd. Brotli is not asked for: the `brotli` binding's
`process()` returns all output of its input at once, so it cannot be bounded the same way.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Protocol

import zstandard

CHUNK = 64 * 1024
MAX_LAYERS = 4  # "gzip, gzip" is legal; a dozen stacked encodings is an attack
ZSTD_MAX_WINDOW = 8 * 1024 * 1024  # RFC 8878 §3.1.1.1.2: HTTP decoders need at most 8 MB
_IDENTITY = {"", "identity", "none"}


class TooLarge(Exception):
    """The decoded body grew past the limit."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding this client did not ask for and cannot decode within a bound."""


class BadEncoding(Exception):
    """The compressed body is corrupt."""


def accept_encoding() -> str:
    """The Accept-Encoding header value: only what `BoundedDecoder` can bound."""
    return "gzip, deflate, zstd"


class _Layer(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), CHUNK at a time."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = data
        while buf and not self._d.eof:
            try:
                out = self._d.decompress(buf, CHUNK)
            except zlib.error as exc:
                if self._raw_fallback and not self._started:
                    # "deflate" is often sent without the zlib header (as httpx also allows)
                    self._raw_fallback = False
                    self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise BadEncoding(str(exc)) from exc
            self._started = True
            buf = self._d.unconsumed_tail
            if out:
                yield out
            if not buf and len(out) == CHUNK:
                yield from self._drain()  # output may still be pending inside zlib

    def _drain(self) -> Iterator[bytes]:
        while not self._d.eof:
            out = self._d.decompress(self._d.unconsumed_tail, CHUNK)
            if out:
                yield out
            if len(out) < CHUNK and not self._d.unconsumed_tail:
                return

    def finish(self) -> Iterator[bytes]:
        yield from self._drain()


class _Sink:
    """Where zstandard's stream writer puts its output; full past `room` bytes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.room = 0

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        self.size += len(data)
        if self.size > self.room:
            raise TooLarge
        return len(data)


class _Zstd:
    """zstd through a stream writer that emits CHUNK bytes at a time and stops past `limit`."""

    def __init__(self, limit: int) -> None:
        self._sink = _Sink()
        self._sink.room = limit
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._w = dctx.stream_writer(self._sink, write_size=CHUNK, write_return_read=True)

    def _take(self) -> Iterator[bytes]:
        chunks, self._sink.chunks = self._sink.chunks, []
        yield from chunks

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            self._w.write(data)
        except zstandard.ZstdError as exc:
            raise BadEncoding(str(exc)) from exc
        yield from self._take()

    def finish(self) -> Iterator[bytes]:
        try:
            self._w.flush()
        except zstandard.ZstdError as exc:
            raise BadEncoding(str(exc)) from exc
        yield from self._take()


def _layer(name: str, limit: int) -> _Layer:
    if name in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if name == "zstd" and zstandard is not None:
        return _Zstd(limit)
    raise UnsupportedEncoding(
        f"the server sent Content-Encoding {name!r}, which syndicator did not ask for "
        f"(it sends Accept-Encoding: {accept_encoding()}) and cannot decode within the size cap"
    )


class BoundedDecoder:
    """Decodes a body sent with `content_encoding`; raises TooLarge past `limit` bytes.

    Every layer (the last one yields the body; earlier ones yield the next layer's input)
    is held to `limit`, so neither the body nor an intermediate stage can outgrow it.
    """

    def __init__(self, content_encoding: str, limit: int) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",")]
        names = [n for n in names if n not in _IDENTITY]
        if len(names) > MAX_LAYERS:
            raise UnsupportedEncoding(
                f"the server stacked {len(names)} Content-Encodings ({content_encoding!r}); "
                f"at most {MAX_LAYERS} are decoded"
            )
        self.limit = limit
        # applied in the order listed, so undone in reverse
        self._layers = [_layer(n, limit) for n in reversed(names)]
        self._produced = [0] * len(self._layers)

    def _push(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._layers):
            yield data
            return
        for out in self._layers[i].feed(data):
            yield from self._pass_on(i, out)

    def _pass_on(self, i: int, out: bytes) -> Iterator[bytes]:
        self._produced[i] += len(out)
        if self._produced[i] > self.limit:
            raise TooLarge
        yield from self._push(i + 1, out)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces (each at most CHUNK bytes) that `data` gives."""
        yield from self._push(0, data)

    def finish(self) -> Iterator[bytes]:
        """What is left once the raw body has ended."""
        for i, layer in enumerate(self._layers):
            for out in layer.finish():
                yield from self._pass_on(i, out)

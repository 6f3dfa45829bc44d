"""Request bodies a client compressed, as its ``Content-Encoding`` header says: gzip,
deflate and zstd (Codex sends its larger ``responses`` bodies as zstd, as the OpenAI API
accepts them).

Decoding is bounded: a body that would decode past ``limit`` bytes stops there (so a few
kilobytes that expand to gigabytes cost no more than ``limit``), and zstd frames may not ask
for a window over 8 MiB, the limit RFC 9659 sets for the zstd content coding.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from typing import Any

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

SUPPORTED = ("gzip", "deflate", "zstd")
MAX_LAYERS = 2
_ZSTD_WINDOW_LOG_MAX = 23  # 8 MiB


class UnsupportedCoding(ValueError):
    """A coding this server does not decode, or more layers than MAX_LAYERS."""


class CorruptBody(ValueError):
    """The body is not what its coding says (broken, cut short, or with bytes after it)."""

    def __init__(self, coding: str) -> None:
        super().__init__(f"The request body could not be decompressed as {coding}.")
        self.coding = coding


class TooLarge(ValueError):
    """The body would decode past the limit."""


def codings_of(header: bytes) -> list[str]:
    """The codings applied, in the order they were applied (``identity`` left out).

    Raises UnsupportedCoding for one that is not decoded here, before the body is read."""
    codings = []
    for part in header.decode("latin-1").split(","):
        coding = part.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding == "x-gzip":  # RFC 9110: a recipient treats it as gzip
            coding = "gzip"
        if coding not in SUPPORTED:
            raise UnsupportedCoding(
                f"The request body's Content-Encoding {coding[:40]!r} is not supported here; "
                "send it uncompressed, or as gzip, deflate or zstd."
            )
        codings.append(coding)
    if len(codings) > MAX_LAYERS:
        raise UnsupportedCoding(
            f"The request body has {len(codings)} content codings; at most {MAX_LAYERS} "
            "are decoded here."
        )
    return codings


def decode(body: bytes, codings: list[str], limit: int) -> bytes:
    """``body`` with ``codings`` (from codings_of) undone, last applied first."""
    for coding in reversed(codings):
        body = _DECODERS[coding](body, limit)
    return body


def _frames(body: bytes, limit: int, coding: str, new_decoder: Callable[[], Any]) -> bytes:
    """Decode one frame (gzip: member) after another until the body is used up.

    Each decoder call may return ``limit + 1`` bytes at most: reaching that means too large;
    returning less without reaching the frame's end means the body was cut short."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while rest:
        decoder = new_decoder()
        try:
            part = decoder.decompress(rest, limit + 1 - size)
        except (zlib.error, zstd.ZstdError):
            raise CorruptBody(coding) from None
        size += len(part)
        if size > limit:
            raise TooLarge()
        if not decoder.eof:
            raise CorruptBody(coding)
        parts.append(part)
        rest = decoder.unused_data
    return b"".join(parts)


def _gzip(body: bytes, limit: int) -> bytes:
    # Several gzip members in a row are one body (RFC 1952).
    return _frames(body, limit, "gzip", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))


def _deflate(body: bytes, limit: int) -> bytes:
    # HTTP's deflate is the zlib format (RFC 9110); some clients send raw deflate instead.
    try:
        wrapped = _single(body, limit, zlib.MAX_WBITS)
    except CorruptBody:
        return _single(body, limit, -zlib.MAX_WBITS)
    return wrapped


def _single(body: bytes, limit: int, wbits: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    try:
        data = decoder.decompress(body, limit + 1)
    except zlib.error:
        raise CorruptBody("deflate") from None
    if len(data) > limit:
        raise TooLarge()
    if not decoder.eof or decoder.unused_data:
        raise CorruptBody("deflate")
    return data


def _zstd(body: bytes, limit: int) -> bytes:
    options: dict[int, int] = {zstd.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG_MAX}
    return _frames(body, limit, "zstd", lambda: zstd.ZstdDecompressor(options=options))


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "deflate": _deflate,
    "zstd": _zstd,
}

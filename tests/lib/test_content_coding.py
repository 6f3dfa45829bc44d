"""Compressed request bodies: every supported coding decodes, in layers too; anything else is
one of three clear refusals, and a small body that expands past the limit stops at it."""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lib.content_coding import (
    MAX_LAYERS,
    CorruptBody,
    TooLarge,
    UnsupportedCoding,
    codings_of,
    decode,
)

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

LIMIT = 1 << 20


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": zstd.compress,
}


def encoded(data: bytes, codings: list[str]) -> bytes:
    for coding in codings:
        data = ENCODERS[coding](data)
    return data


@given(
    data=st.binary(max_size=4096),
    codings=st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=MAX_LAYERS),
)
def test_what_was_encoded_decodes_to_itself(data, codings):
    header = ", ".join(codings).encode()
    assert decode(encoded(data, codings), codings_of(header), LIMIT) == data


def test_the_header_reads_as_rfc_9110_says():
    assert codings_of(b"identity") == []
    assert codings_of(b"") == []
    assert codings_of(b" GZIP ,zstd") == ["gzip", "zstd"]
    assert codings_of(b"x-gzip") == ["gzip"]
    assert codings_of(b"identity, deflate") == ["deflate"]


@pytest.mark.parametrize("header", [b"br", b"compress", b"gzip, br", b"zstd,zstd,zstd", b"\xff"])
def test_a_coding_not_decoded_here_is_refused_by_name(header):
    with pytest.raises(UnsupportedCoding) as refused:
        codings_of(header)
    assert "gzip, deflate or zstd" in str(refused.value) or "at most" in str(refused.value)


def test_raw_deflate_is_taken_too():
    assert decode(raw_deflate(b'{"a": 1}'), ["deflate"], LIMIT) == b'{"a": 1}'


def test_several_gzip_members_and_zstd_frames_are_one_body():
    assert decode(gzip.compress(b"ab") + gzip.compress(b"cd"), ["gzip"], LIMIT) == b"abcd"
    assert decode(zstd.compress(b"ab") + zstd.compress(b"cd"), ["zstd"], LIMIT) == b"abcd"


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_a_cut_short_or_padded_body_is_corrupt(coding):
    whole = ENCODERS[coding](b'{"model": "m", "input": "' + b"x" * 2000 + b'"}')
    for broken in (whole[: len(whole) // 2], whole[:-1], whole + b"junk", b"not compressed"):
        with pytest.raises(CorruptBody) as error:
            decode(broken, [coding], LIMIT)
        assert coding in str(error.value)


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_a_small_body_that_expands_past_the_limit_stops_there(coding):
    bomb = ENCODERS[coding](b"\0" * (64 << 20))  # 64 MiB of zeros
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge):
        decode(bomb, [coding], LIMIT)
    exactly = ENCODERS[coding](b"\0" * LIMIT)
    assert len(decode(exactly, [coding], LIMIT)) == LIMIT


def test_a_zstd_frame_asking_for_a_window_over_8_mib_is_refused():
    options: dict[int, int] = {
        zstd.CompressionParameter.window_log: 24,
        zstd.CompressionParameter.compression_level: 3,
    }
    compressor = zstd.ZstdCompressor(options=options)
    # Written as a stream, so the frame declares its window rather than its size.
    wide = compressor.compress(b"x" * 100, zstd.ZstdCompressor.CONTINUE)
    wide += compressor.flush(zstd.ZstdCompressor.FLUSH_FRAME)
    with pytest.raises(CorruptBody):
        decode(wide, ["zstd"], LIMIT)


@given(
    body=st.binary(max_size=2048),
    codings=st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=MAX_LAYERS),
)
@example(body=b"\x1f\x8b", codings=["gzip"])
@example(body=b"\x28\xb5\x2f\xfd", codings=["zstd"])
@example(body=b"\x78\x9c", codings=["deflate"])
def test_any_bytes_decode_or_are_refused_clearly(body, codings):
    try:
        out = decode(body, codings, 4096)
    except (CorruptBody, TooLarge):
        return
    assert len(out) <= 4096


@given(header=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(header=b"gzip,,identity , zstd")
@example(header=b"\x00" * 200)
def test_any_header_reads_as_supported_codings_or_is_refused_by_name(header):
    try:
        codings = codings_of(header)
    except UnsupportedCoding as refused:
        assert len(str(refused)) < 300  # never the whole header back
        return
    assert len(codings) <= MAX_LAYERS and set(codings) <= {"gzip", "deflate", "zstd"}

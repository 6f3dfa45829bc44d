"""A key planted in any form a reader decodes back never survives the scrubber, in one piece
or in a stream cut anywhere; text without it passes unchanged."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from hypothesis import given
from hypothesis import strategies as st

from lib.scrub import MAX_HELD, Scrubber, StreamScrubber

KEYS = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=80)
# Text around the key, as providers write it: any characters, line breaks, escapes, masks.
AROUND = st.text(max_size=200) | st.sampled_from(
    ["", "\n\n", 'data: {"error": {"message": "', '"}}\n\n', "50% of ", "\\n", "***", "..."]
)


def encode(key: str, forms: list[int]) -> str:
    """The key with each character written in one of the forms a reader decodes back."""
    out = []
    for ch, form in zip(key, forms + [0] * len(key), strict=False):
        if form == 1:
            out.append(f"\\u{ord(ch):04x}")
        elif form == 2:
            out.append(f"\\u{ord(ch):04X}")
        elif form == 3:
            out.append(f"%{ord(ch):02X}")
        elif form == 4 and ch == "/":
            out.append("\\/")
        else:
            out.append(ch)
    return "".join(out)


def decoded(content: bytes) -> bytes:
    """What a JSON parser or a URL reader would turn ``content`` back into."""
    content = re.sub(
        rb"\\u([0-9a-fA-F]{4})",
        lambda m: chr(int(m.group(1), 16)).encode("utf-8", "surrogatepass"),
        content,
    ).replace(b"\\/", b"/")
    return unquote_to_bytes(content)


def masked(key: str) -> str:
    return f"{key[:3]}{'*' * 12}{key[-4:]}"


@given(
    key=KEYS,
    before=AROUND,
    after=AROUND,
    forms=st.lists(st.integers(0, 4), max_size=80),
    mask=st.booleans(),
)
def test_a_key_in_any_form_never_survives(key, before, after, forms, mask):
    planted = before + encode(key, forms) + (" " + masked(key) if mask else "") + after
    out = Scrubber(key).clean(planted.encode("utf-8", "surrogatepass"))
    assert key.encode() not in out
    assert key.encode() not in decoded(out)
    assert ("*" * 12 + key[-4:]).encode() not in out


@given(key=KEYS, text=AROUND)
def test_text_without_the_key_passes_unchanged(key, text):
    raw = text.encode("utf-8", "surrogatepass")
    if key.encode() in decoded(raw) or key[-4:] in text:
        return
    assert Scrubber(key).clean(raw) == raw


@given(
    key=KEYS,
    lines=st.lists(AROUND, max_size=6),
    forms=st.lists(st.integers(0, 4), max_size=80),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_a_key_split_across_chunks_anywhere_never_survives(key, lines, forms, cuts):
    event = 'data: {"error": {"message": "bad key ' + encode(key, forms) + '"}}\n\n'
    stream = ("\n".join(lines) + event + "\n".join(lines)).encode("utf-8", "surrogatepass")
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    scrubber = StreamScrubber(Scrubber(key))
    out = b"".join(scrubber.feed(chunk) for chunk in chunks) + scrubber.finish()
    assert key.encode() not in decoded(out)
    assert out.count(b"\n") == stream.count(b"\n")  # every line still there, in order


def test_a_stream_is_let_through_up_to_its_last_line_break():
    scrubber = StreamScrubber(Scrubber("sk-abcdefgh1234"))
    assert scrubber.feed(b'data: {"a": 1}\n\ndata: {"b"') == b'data: {"a": 1}\n\n'
    assert scrubber.feed(b": 2}\n\n") == b'data: {"b": 2}\n\n'
    assert scrubber.finish() == b""


def test_one_very_long_line_is_not_held_whole():
    scrubber = StreamScrubber(Scrubber("sk-abcdefgh1234"))
    out = scrubber.feed(b"x" * (MAX_HELD + 10))
    assert 0 < len(out) < MAX_HELD + 10
    assert out + scrubber.finish() == b"x" * (MAX_HELD + 10)


def test_a_json_body_with_the_key_escaped_reads_back_without_it():
    key = "sk-live-CANARY-0123456789"
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}})
    escaped = body.replace("sk-live", "\\u0073\\u006B-live")
    out = Scrubber(key).clean(escaped.encode())
    assert key not in json.loads(out)["error"]["message"]


def test_short_or_missing_secrets_change_nothing():
    assert Scrubber("").clean(b"abc") == b"abc"
    assert Scrubber(None).clean_text("abc") == "abc"
    assert Scrubber("short").clean(b"short") == b"short"
    assert not Scrubber("short")

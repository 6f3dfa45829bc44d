"""Stream readers: what is forwarded and what usage is read must not depend on how the
provider's stream happens to be cut into chunks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.wire import ADAPTERS, StreamReader
from providers.registry import WireFormat


def openai_stream(words: list[str], newline: str, null_usage: bool = False) -> tuple[bytes, bytes]:
    """(the stream as sent, the stream a client that did not ask for usage should see).
    With ``null_usage`` every chunk says ``"usage": null``, as OpenAI's do once usage is
    asked for."""
    extra = {"usage": None} if null_usage else {}
    events = [{"choices": [{"delta": {"content": word}}], **extra} for word in words]
    usage = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": len(words)}}
    blank = newline * 2
    seen = b"".join(f"data: {json.dumps(e)}{blank}".encode() for e in events)
    done = f"data: [DONE]{blank}".encode()
    return seen + f"data: {json.dumps(usage)}{blank}".encode() + done, seen + done


def anthropic_stream(words: list[str], newline: str) -> bytes:
    blank = newline * 2
    events = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9}}}),
        *(
            ("content_block_delta", {"type": "content_block_delta", "delta": {"text": w}})
            for w in words
        ),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": len(words)}}),
    ]
    return b"".join(
        f"event: {name}{newline}data: {json.dumps(data)}{blank}".encode() for name, data in events
    )


def google_stream(words: list[str], newline: str) -> bytes:
    blank = newline * 2
    return b"".join(
        "data: {}{}".format(
            json.dumps(
                {
                    "candidates": [{"content": {"parts": [{"text": word}]}}],
                    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": i + 1},
                }
            ),
            blank,
        ).encode()
        for i, word in enumerate(words)
    )


def read(reader: StreamReader, stream: bytes, cuts: list[int]) -> bytes:
    out, start = [], 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        out.append(reader.feed(stream[start:cut]))
        start = cut
    out.append(reader.finish())
    return b"".join(out)


WORDS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8)
NEWLINES = st.sampled_from(["\n", "\r\n"])
CUTS = st.lists(st.integers(min_value=0, max_value=4000), max_size=30)


@given(WORDS, NEWLINES, CUTS, st.booleans(), st.booleans())
def test_openai_streams_read_the_same_however_they_are_cut(
    words, newline, cuts, wants_usage, null_usage
):
    stream, without_usage = openai_stream(words, newline, null_usage)
    reader = ADAPTERS[WireFormat.OPENAI].stream_reader(wants_usage)
    forwarded = read(reader, stream, cuts)
    assert forwarded == (stream if wants_usage else without_usage)
    usage = reader.usage()
    assert (usage.input_tokens, usage.output_tokens) == (12, len(words))


@given(NEWLINES, st.booleans())
def test_each_whole_event_is_passed_on_at_once(newline, wants_usage):
    """Chunk by chunk, whatever the line endings: nothing waits for the end of the stream."""
    stream, _ = openai_stream(["one", "two"], newline)
    first_event = stream[: stream.index((newline * 2).encode()) + 2 * len(newline)]
    reader = ADAPTERS[WireFormat.OPENAI].stream_reader(wants_usage)
    assert reader.feed(first_event) == first_event


@pytest.mark.parametrize(
    "wire, stream_of, prompt_tokens",
    [(WireFormat.ANTHROPIC, anthropic_stream, 9), (WireFormat.GOOGLE, google_stream, 7)],
)
@given(words=WORDS, newline=NEWLINES, cuts=CUTS)
def test_streams_pass_unchanged_and_read_the_same_however_they_are_cut(
    wire, stream_of, prompt_tokens, words, newline, cuts
):
    """Anthropic's usage comes from two events; Google's from the last running total."""
    stream = stream_of(words, newline)
    reader = ADAPTERS[wire].stream_reader(True)
    assert read(reader, stream, cuts) == stream
    usage = reader.usage()
    assert (usage.input_tokens, usage.output_tokens) == (prompt_tokens, len(words))


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=8))
def test_no_credential_parameter_survives_in_a_forwarded_query(pairs):
    """However a query spells its parameters, what is passed on holds none that the provider
    would read as a credential, and every other parameter, as it came and in its order."""
    from urllib.parse import parse_qsl, quote_plus

    from gateway.app import _query_to_forward
    from lib.query import CREDENTIAL_PARAMETERS

    parts = [f"{quote_plus(name)}={quote_plus(value)}" for name, value in pairs]
    forwarded = _query_to_forward("&".join(parts).encode("latin-1"))
    names = [name.lower() for name, _ in parse_qsl(forwarded, keep_blank_values=True)]
    assert not set(names) & CREDENTIAL_PARAMETERS
    expected = [
        p for p, (n, _) in zip(parts, pairs, strict=True) if n.lower() not in CREDENTIAL_PARAMETERS
    ]
    assert forwarded == "&".join(p for p in expected if p)


@pytest.mark.parametrize(
    "wire, method, rest, endpoint, model",
    [
        (WireFormat.OPENAI, "GET", "/models", "models", None),
        (WireFormat.OPENAI, "GET", "/models/fake-gpt/", "models.retrieve", "fake-gpt"),
        (WireFormat.OPENAI, "GET", "/models/openai/gpt-4o", "models.retrieve", "openai/gpt-4o"),
        (WireFormat.OPENAI, "GET", "/models/", "models", None),
        (WireFormat.OPENAI, "POST", "/models/fake-gpt", None, None),
        (WireFormat.OPENAI, "POST", "/responses/input_tokens", "responses.input_tokens", None),
        (WireFormat.OPENAI, "POST", "/completions", "completions", None),
        (WireFormat.ANTHROPIC, "GET", "/models/claude-x", "models.retrieve", "claude-x"),
        (WireFormat.ANTHROPIC, "POST", "/messages/count_tokens/", "messages.count_tokens", None),
        (WireFormat.GOOGLE, "GET", "/models/gemini-x", "models.get", "gemini-x"),
        (WireFormat.GOOGLE, "GET", "/models/gemini-x:generateContent", None, None),
        (WireFormat.GOOGLE, "GET", "/models/a/b", None, None),
        (WireFormat.GOOGLE, "POST", "/models/gemini-x:countTokens", "countTokens", "gemini-x"),
        (WireFormat.GOOGLE, "POST", "/models/gemini-x:embedContent", None, None),
    ],
)
def test_each_format_names_its_endpoints_and_the_model_a_path_holds(
    wire, method, rest, endpoint, model
):
    match = ADAPTERS[wire].match(method, rest)
    if endpoint is None:
        assert match is None
        return
    assert match is not None
    assert (match.endpoint.name, match.model, match.streaming_by_path) == (endpoint, model, False)
    counting = endpoint in ("responses.input_tokens", "messages.count_tokens", "countTokens")
    assert match.endpoint.metered is not counting  # token counts are free: recorded, not priced


@pytest.mark.parametrize("path", ["/chat/completions", "/completions"])
def test_an_openai_stream_asks_for_usage_even_when_the_client_did_not(path):
    adapter = ADAPTERS[WireFormat.OPENAI]
    match = adapter.match("POST", path)
    assert match is not None
    body = {"model": "m", "stream": True, "stream_options": {"other": 1}}
    sent, wants_usage = adapter.prepare_body(match, body)
    assert sent == {**body, "stream_options": {"other": 1, "include_usage": True}}
    assert wants_usage is False
    asked = {**body, "stream_options": {"include_usage": True}}
    assert adapter.prepare_body(match, asked) == (None, True)
    assert adapter.prepare_body(match, {"model": "m"}) == (None, True)

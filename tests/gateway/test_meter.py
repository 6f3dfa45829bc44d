"""The meter is right for every client and upstream: a stream whose last event reached the
client is a success whatever the client does next; a stream answered as one JSON body is
metered and sent as the stream asked for; no usage the client did not ask for; Gemini's JSON
array streams; only an allow-list of the upstream's headers comes back."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.app import application

from .conftest import plant_upstream, run, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v2/aibridge"
CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "meter me"}]}
MESSAGE = {
    "model": "claude-fake",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
# (path, body, auth header, the final event's marker, an early event's marker)
STREAMS = {
    "chat": (
        "/openai/v1/chat/completions",
        {**CHAT, "stream": True},
        "bearer",
        b"[DONE]",
        b'"role"',
    ),
    "responses": (
        "/openai/v1/responses",
        {"model": "fake-gpt", "input": "meter me", "stream": True},
        "bearer",
        b"response.completed",
        b"response.created",
    ),
    "messages": (
        "/anthropic/v1/messages",
        {**MESSAGE, "stream": True},
        "x-api-key",
        b"message_stop",
        b"message_start",
    ),
    "gemini": (
        "/google/v1beta/models/gemini-fake:streamGenerateContent?alt=sse",
        CONTENTS,
        "x-goog-api-key",
        b'"finishReason"',
        b'"candidates"',
    ),
}


def auth(kind: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if kind == "bearer" else {kind: token}


def read_until(base: str, path: str, body: Any, headers: dict[str, str], marker: bytes) -> bytes:
    """Read a stream until ``marker`` arrives, then close the connection, as the openai SDK,
    LiteLLM's and Codex do after the final event."""
    seen = b""
    with (
        httpx.Client(timeout=15) as client,
        client.stream("POST", f"{base}{BASE}{path}", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            seen += chunk
            if marker in seen:
                break
    return seen


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_client_that_leaves_right_after_the_final_event_made_a_successful_call(
    gateway_server, deployment, name
):
    """The upstream still has its body to end (the fake waits between writes): the call is
    a 200 with its tokens, not a 499."""
    path, body, kind, final, _ = STREAMS[name]
    headers = {**auth(kind, deployment.token.secret), "x-fake-chunk-delay": "0.3"}
    seen = read_until(gateway_server, path, body, headers, final)
    assert final in seen
    [row] = wait_for_usage(1)
    assert (row.status, row.error_kind, row.streamed) == (200, "", True)
    assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost_usd > 0


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_client_that_leaves_before_the_final_event_is_a_499(gateway_server, deployment, name):
    path, body, kind, _, early = STREAMS[name]
    headers = {**auth(kind, deployment.token.secret), "x-fake-chunk-delay": "0.3"}
    read_until(gateway_server, path, body, headers, early)
    [row] = wait_for_usage(1, timeout=15)
    assert (row.status, row.error_kind) == (499, "client_disconnected")


def test_the_usage_tab_counts_no_finished_stream_as_failed(
    gateway_server, deployment, staff_client
):
    for path, body, kind, final, _ in STREAMS.values():
        headers = {**auth(kind, deployment.token.secret), "x-fake-chunk-delay": "0.2"}
        read_until(gateway_server, path, body, headers, final)
    wait_for_usage(len(STREAMS))
    totals = staff_client.get("/admin/usage/").context["totals"]
    assert (totals["calls"], totals["failed"]) == (len(STREAMS), 0)
    failed = staff_client.get("/admin/usage/?outcome=failed").context["totals"]
    assert failed["calls"] == 0


# -- a stream request answered as one JSON body ------------------------------------------------


def test_a_chat_stream_answered_as_json_is_metered_and_sent_as_a_stream(gateway_server, deployment):
    from openai import OpenAI

    client = OpenAI(
        api_key=deployment.token.secret, base_url=f"{gateway_server}{BASE}/openai/v1", max_retries=0
    )
    json_stream = {"x-fake-json-stream": "1"}
    chunks = list(
        client.chat.completions.create(
            model="fake-gpt",
            messages=[{"role": "user", "content": "meter me"}],
            stream=True,
            extra_headers=json_stream,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: meter me"
    with client.responses.stream(
        model="fake-gpt", input="meter me", extra_headers=json_stream
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "You said: meter me"
    rows = wait_for_usage(2)
    for row in rows:
        assert (row.status, row.streamed, row.error_kind) == (200, True, "")
        assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost_usd > 0


def test_a_messages_stream_answered_as_json_is_read_by_the_anthropic_sdk(
    gateway_server, deployment
):
    from anthropic import Anthropic

    client = Anthropic(
        api_key=deployment.token.secret, base_url=f"{gateway_server}{BASE}/anthropic", max_retries=0
    )
    with client.messages.stream(**MESSAGE, extra_headers={"x-fake-json-stream": "1"}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("You said: hi") and final.usage.output_tokens > 0
    [row] = wait_for_usage(1)
    assert (row.status, row.streamed) == (200, True) and row.cost_usd > 0


def test_a_gemini_stream_answered_as_json_is_one_event(gateway_server, deployment):
    response = httpx.post(
        f"{gateway_server}{BASE}/google/v1beta/models/gemini-fake:streamGenerateContent?alt=sse",
        json=CONTENTS,
        headers={"x-goog-api-key": deployment.token.secret, "x-fake-json-stream": "1"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    [event] = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert json.loads(event[5:])["candidates"][0]["content"]["parts"][0]["text"]
    [row] = wait_for_usage(1)
    assert row.streamed and row.input_tokens > 0 and row.cost_usd > 0


def test_an_answer_without_usage_costs_what_is_unknown_never_zero(deployment, monkeypatch):
    """A stream request answered as JSON without a usage block, and a stream without one:
    the row's cost is unknown (shown apart), not a price of 0."""
    answer = {
        "id": "x",
        "object": "chat.completion",
        "model": "fake-gpt",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    events = [
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    calls = [
        ([(b"content-type", b"application/json")], [json.dumps(answer).encode()]),
        ([(b"content-type", b"text/event-stream")], events),
    ]
    for headers, chunks in calls:
        plant_upstream(monkeypatch, 200, headers, chunks)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.post(
                    f"{BASE}/openai/v1/chat/completions",
                    json={**CHAT, "stream": True},
                    headers={"Authorization": f"Bearer {deployment.token.secret}"},
                )

        response = run(call)
        assert response.status_code == 200 and "data: [DONE]" in response.text
    rows = list(deployment.usage())
    assert [(r.status, r.streamed, r.cost_usd) for r in rows] == [(200, True, None)] * 2


# -- usage the client did not ask for ----------------------------------------------------------


def test_a_usage_on_a_content_chunk_is_taken_off_unless_the_client_asked(
    gateway_server, deployment
):
    headers = {"Authorization": f"Bearer {deployment.token.secret}", "x-fake-usage-on-content": "1"}
    url = f"{gateway_server}{BASE}/openai/v1/chat/completions"
    plain = httpx.post(url, json={**CHAT, "stream": True}, headers=headers)
    asked = httpx.post(
        url,
        json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        headers=headers,
    )
    events = [
        json.loads(line[5:]) for line in plain.text.splitlines() if line.startswith("data: {")
    ]
    # (None on every chunk, as OpenAI sends it to a client that asked: the SDKs read None)
    assert events and all(event.get("usage") is None for event in events)
    assert all(event["choices"] for event in events)  # every chunk with choices is still there
    assert '"usage"' in asked.text
    rows = wait_for_usage(2)
    assert rows[0].output_tokens == rows[1].output_tokens > 0  # metered either way


# -- Gemini's JSON array streams ---------------------------------------------------------------


def test_gemini_streams_without_alt_sse_are_one_json_array_as_google_sends(
    gateway_server, deployment
):
    url = f"{gateway_server}{BASE}/google/v1beta/models/gemini-fake:streamGenerateContent"
    headers = {"x-goog-api-key": deployment.token.secret, "x-fake-chunk-delay": "0.05"}
    pieces: list[bytes] = []
    with httpx.stream("POST", url, json=CONTENTS, headers=headers, timeout=15) as response:
        assert response.headers["content-type"].startswith("application/json")
        pieces = list(response.iter_raw())
    whole = b"".join(pieces)
    assert len(pieces) > 1  # written element by element, as it came
    chunks = json.loads(whole)
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "You said: hello there"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    [received] = deployment.fake.calls()
    assert "alt=sse" in received.query  # upstream, events: metered
    [row] = wait_for_usage(1)
    assert (row.status, row.streamed) == (200, True) and row.output_tokens > 0


# -- headers an upstream adds ------------------------------------------------------------------


def test_only_the_allowed_headers_of_an_upstream_come_back(gateway_server, deployment):
    """Behind a proxy such as LiteLLM's: its account, spend and internal URL stay here;
    request ids, retry advice and rate limits go back."""
    added = {
        "llm_provider-openai-organization": "org-central",
        "llm_provider-openai-project": "proj_central",
        "x-litellm-model-api-base": "http://10.0.0.7:8000/v1",
        "x-litellm-key-spend": "12.5",
        "x-litellm-response-cost": "0.001",
        "x-ratelimit-remaining-requests": "99",
        "retry-after-ms": "20",
        "x-powered-by": "proxy",
    }
    response = httpx.post(
        f"{gateway_server}{BASE}/openai/v1/chat/completions",
        json=CHAT,
        headers={
            "Authorization": f"Bearer {deployment.token.secret}",
            "x-fake-headers": json.dumps(added),
        },
    )
    assert response.status_code == 200
    back = {name for name in response.headers if name in added}
    assert back == {"x-ratelimit-remaining-requests", "retry-after-ms"}
    assert "openai-organization" not in response.headers  # the central key's account
    assert response.headers["x-request-id"]


FIRST_EVENTS = {
    "chat": STREAMS["chat"][:3],
    "messages": STREAMS["messages"][:3],
    "gemini-sse": STREAMS["gemini"][:3],
    "gemini-array": (
        "/google/v1beta/models/gemini-fake:streamGenerateContent",
        CONTENTS,
        "x-goog-api-key",
    ),
}


@pytest.mark.parametrize("name", list(FIRST_EVENTS))
def test_a_streams_first_event_reaches_the_client_before_the_upstream_sends_its_second(
    gateway_server, deployment, name
):
    """The upstream writes its head, then its first event, then waits a second before the
    next: the caller has the first event (a whole data line, or the array's first element)
    long before that second."""
    import time

    from bench.gateway_bench import holds_an_event

    path, body, kind = FIRST_EVENTS[name]
    headers = {**auth(kind, deployment.token.secret), "x-fake-chunk-delay": "1.0"}
    seen, first = b"", None
    started = time.perf_counter()
    with (
        httpx.Client(timeout=15) as client,
        client.stream(
            "POST", f"{gateway_server}{BASE}{path}", json=body, headers=headers
        ) as response,
    ):
        for chunk in response.iter_raw():
            seen += chunk
            if holds_an_event(seen):
                first = time.perf_counter() - started
                break
    assert first is not None and first < 0.6, first

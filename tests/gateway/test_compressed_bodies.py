"""Request bodies a client compressed (Codex sends its larger ``responses`` bodies as zstd):
decoded before the gateway reads the model, forwarded plain, and refused in the caller's
format when they cannot be decoded. Over real HTTP, asserting on what the provider got."""

from __future__ import annotations

import gzip
import json
import os
import sys
import zlib

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import application

from .conftest import run, wait_for_usage

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

pytestmark = pytest.mark.django_db(transaction=True)

ENCODE = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstd.compress}
BASE = "/api/v2/aibridge"


def post(server, deployment, path, body: bytes, coding: str, auth: str = "bearer"):
    token = deployment.token.secret
    headers = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "anthropic": {"x-api-key": token, "anthropic-version": "2023-06-01"},
        "google": {"x-goog-api-key": token},
    }[auth]
    return httpx.post(
        f"{server}{BASE}{path}",
        content=body,
        headers={**headers, "content-type": "application/json", "content-encoding": coding},
        timeout=30,
    )


@pytest.mark.parametrize("coding", sorted(ENCODE))
def test_a_compressed_body_reaches_the_provider_plain(gateway_server, deployment, coding):
    body = {"model": "fake-gpt", "input": "hello there"}
    response = post(
        gateway_server,
        deployment,
        "/openai/v1/responses",
        ENCODE[coding](json.dumps(body).encode()),
        coding,
    )
    assert response.status_code == 200, response.text
    (received,) = deployment.fake.calls("/responses")
    assert received.json == body
    assert "content-encoding" not in received.headers
    assert int(received.headers["content-length"]) == len(received.body)
    (row,) = wait_for_usage(1)
    assert row.model_identifier == "fake-gpt" and row.status == 200 and row.input_tokens > 0


def test_a_compressed_stream_is_still_metered(gateway_server, deployment):
    """The gateway adds stream_options.include_usage to the decoded body: it read it."""
    body = {"model": "fake-gpt", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    response = post(
        gateway_server,
        deployment,
        "/openai/v1/chat/completions",
        zstd.compress(json.dumps(body).encode()),
        "zstd",
    )
    assert response.status_code == 200 and "data: [DONE]" in response.text
    assert '"prompt_tokens"' not in response.text  # the client did not ask for usage
    (received,) = deployment.fake.calls("/chat/completions")
    assert received.json["stream_options"] == {"include_usage": True}
    (row,) = wait_for_usage(1)
    assert row.streamed and row.output_tokens > 0


def test_every_format_takes_layers_and_large_bodies(gateway_server, deployment):
    """Two layers (gzip, then zstd), and bodies over 64 KiB compressed, which are decoded
    off the event loop."""
    noise = os.urandom(100_000).hex()  # does not compress below 64 KiB
    message = {
        "model": "claude-fake",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": noise}],
    }
    layered = zstd.compress(gzip.compress(json.dumps(message).encode()))
    assert len(layered) > 64 * 1024
    anthropic = post(
        gateway_server, deployment, "/anthropic/v1/messages", layered, "gzip, zstd", "anthropic"
    )
    assert anthropic.status_code == 200, anthropic.text
    content = {"contents": [{"role": "user", "parts": [{"text": noise}]}]}
    google = post(
        gateway_server,
        deployment,
        "/google/v1beta/models/gemini-fake:generateContent",
        gzip.compress(json.dumps(content).encode()),
        "x-gzip",
        "google",
    )
    assert google.status_code == 200, google.text
    received = deployment.fake.calls()
    assert [r.json for r in received] == [message, content]
    assert all("content-encoding" not in r.headers for r in received)
    assert len(wait_for_usage(2)) == 2


def test_what_cannot_be_decoded_is_refused_in_the_callers_format(gateway_server, deployment):
    plain = json.dumps({"model": "fake-gpt", "input": "hi"}).encode()
    brotli = post(gateway_server, deployment, "/openai/v1/responses", b"\x8b\x02\x80", "br")
    assert brotli.status_code == 415
    error = brotli.json()["error"]
    assert error["code"] == "unsupported_content_encoding"
    assert error["type"] == "invalid_request_error" and "'br'" in error["message"]

    cut = post(
        gateway_server,
        deployment,
        "/anthropic/v1/messages",
        zstd.compress(plain)[:-3],
        "zstd",
        "anthropic",
    )
    assert cut.status_code == 400 and cut.json()["type"] == "error"
    assert cut.json()["error"]["message"] == "The request body could not be decompressed as zstd."

    # 64 MiB of spaces in ~2 KiB: stopped at the 32 MiB limit, not decoded whole.
    bomb = zstd.compress(plain[:-1] + b" " * (64 << 20) + b"}")
    assert len(bomb) < 10_000
    large = post(
        gateway_server,
        deployment,
        "/google/v1/models/gemini-fake:generateContent",
        bomb,
        "zstd",
        "google",
    )
    assert large.status_code == 413
    assert large.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "once decompressed" in large.json()["error"]["message"]

    assert deployment.fake.calls() == []


def test_an_identity_coding_changes_nothing(gateway_server, deployment):
    body = json.dumps({"model": "fake-gpt", "input": "hi"}).encode()
    response = post(gateway_server, deployment, "/openai/v1/responses", body, "identity")
    assert response.status_code == 200
    (received,) = deployment.fake.calls("/responses")
    assert received.body == body


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    coding=st.sampled_from(["gzip", "x-gzip", "deflate", "zstd", "br", "gzip, zstd", "identity"])
    | st.text(st.characters(exclude_characters="\r\n\x00"), max_size=20),
    body=st.binary(max_size=300),
    compress_as=st.sampled_from([None, *sorted(ENCODE)]),
)
def test_whatever_body_and_coding_a_client_sends_is_answered_without_a_server_error(
    deployment, coding, body, compress_as
):
    """Any coding header over any bytes (compressed as said, as something else, or not at
    all): an answer or a refusal in the caller's format, never a failure of the gateway's."""
    sent = ENCODE[compress_as](body) if compress_as else body
    headers = {
        "authorization": f"Bearer {deployment.token.secret}",
        "content-type": "application/json",
        "content-encoding": coding.encode("utf-8", "surrogatepass"),
    }

    async def call_gateway():
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/openai/v1/responses", content=sent, headers=headers
            )

    response = run(call_gateway)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"]["message"]


@pytest.mark.postgres
def test_two_people_sending_compressed_bodies_at_once_each_reach_the_provider_whole(
    deployment, other_developer, django_db_blocker
):
    """Many compressed calls at once from two people through two worker processes, half of
    them large enough to be decoded in threads: each body reaches the provider as its sender
    wrote it (none mixed with another's, none cut), and each call is billed to its sender."""
    import asyncio
    from datetime import timedelta

    from tests.servers import served_app
    from tokens.services import token_create

    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    tokens = {"dev": deployment.token.secret, "other": other.secret}
    sent: dict[str, dict] = {}
    for name in tokens:
        for i in range(24):
            size = 70_000 if i % 2 else 200  # over 64 KiB once compressed: a thread decodes it
            text = f"{name}-{i} " + os.urandom(size).hex()
            sent[f"{name}-{i}"] = {"model": "fake-gpt", "input": text}

    async def call_all(base: str) -> list[tuple[str, int]]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=60)) as c:

            async def one(caller: str) -> tuple[str, int]:
                coding = "zstd" if caller.endswith(("0", "2", "4", "6", "8")) else "gzip"
                response = await c.post(
                    f"{base}{BASE}/openai/v1/responses",
                    content=ENCODE[coding](json.dumps(sent[caller]).encode()),
                    headers={
                        "Authorization": f"Bearer {tokens[caller.split('-')[0]]}",
                        "content-type": "application/json",
                        "content-encoding": coding,
                        "x-caller": caller,
                    },
                )
                return caller, response.status_code

            return await asyncio.gather(*(one(caller) for caller in sent))

    with django_db_blocker.unblock(), served_app(workers=2) as base:
        results = asyncio.run(call_all(base))

    assert all(status == 200 for _, status in results), results
    received = deployment.fake.calls("/responses")
    assert len(received) == len(sent)
    for request in received:
        assert request.json == sent[request.headers["x-caller"]]
        assert "content-encoding" not in request.headers
    rows = wait_for_usage(len(sent))
    per_user = {r.username: 0 for r in rows}
    for row in rows:
        per_user[row.username] += 1
    assert per_user == {deployment.developer.username: 24, other_developer.username: 24}

"""What the gateway keeps from the provider and from the caller: the headers that must not
cross, and bodies over the limit refused before they are read whole. One test per behaviour
a change could break unnoticed."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from typing import Any

import httpx
import pytest

from gateway.app import application
from tokens import token_format

from .conftest import CENTRAL, run

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
CHAT_PATH = "/api/v2/aibridge/openai/v1/chat/completions"


def call(headers: dict[str, str], body: Any = CHAT, path: str = CHAT_PATH) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(path, headers=headers, json=body)

    return run(main)


def test_the_gateway_compares_the_token_hash_in_constant_time(deployment, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = token_format.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_format.hmac, "compare_digest", spy)
    secret = deployment.token.secret
    assert call({"Authorization": f"Bearer {secret}"}).status_code == 200
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    assert call({"Authorization": f"Bearer {wrong}"}).status_code == 401
    stored = deployment.token.token.secret_hash.encode()
    assert compared == [
        (token_format.hash_token(secret).encode(), stored),
        (token_format.hash_token(wrong).encode(), stored),
    ]


def test_a_callers_openai_organization_and_project_never_reach_a_central_key_call(deployment):
    billing = {"OpenAI-Organization": "org-caller", "OpenAI-Project": "proj_caller"}
    token = deployment.token.secret
    assert call({"Authorization": f"Bearer {token}", **billing}).status_code == 200
    own = {"X-Coder-AI-Governance-Token": token, "Authorization": "Bearer sk-own-key-12345678"}
    assert call({**own, **billing}).status_code == 200
    central, personal = deployment.fake.calls("/chat/completions")
    assert central.headers["authorization"] == f"Bearer {CENTRAL['openai']}"
    assert "openai-organization" not in central.headers
    assert "openai-project" not in central.headers
    # With their own key the account is the caller's to choose.
    assert personal.headers["openai-organization"] == "org-caller"
    assert personal.headers["openai-project"] == "proj_caller"


def test_forwarding_headers_never_reach_the_provider(deployment):
    forwarding = {
        "Forwarded": "for=10.1.2.3;proto=https",
        "X-Forwarded-For": "10.1.2.3",
        "X-Forwarded-Host": "internal.example",
        "X-Forwarded-Proto": "https",
        "X-Real-IP": "10.1.2.3",
    }
    response = call({"Authorization": f"Bearer {deployment.token.secret}", **forwarding})
    assert response.status_code == 200
    [received] = deployment.fake.calls("/chat/completions")
    assert not {name.lower() for name in forwarding} & set(received.headers)
    assert "10.1.2.3" not in repr(received.headers)


def test_a_providers_set_cookie_never_reaches_the_caller(deployment):
    answers = {"set-cookie": "upstream_session=abc; Path=/; HttpOnly"}
    response = call(
        {
            "Authorization": f"Bearer {deployment.token.secret}",
            "x-fake-headers": json.dumps(answers),
        }
    )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "upstream_session" not in repr(response.headers)
    assert response.cookies.get("upstream_session") is None


class Body:
    """A receive() that hands out ``chunks`` and counts what was read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read = list(chunks), 0

    async def __call__(self) -> dict[str, Any]:
        if not self.chunks:
            return {"type": "http.disconnect"}
        chunk = self.chunks.pop(0)
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}


def asgi_call(token: str, body: Body, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """The gateway app called as a server calls it; returns what it sent."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": CHAT_PATH,
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode()), *headers],
    }
    run(lambda: application(scope, body, send))
    return sent


def status_of(sent: list[dict[str, Any]]) -> int:
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body_is_read(
    deployment, settings
):
    settings.AI_GATEWAY_MAX_BODY_BYTES = 1000
    body = Body([b"x" * 600, b"x" * 600])
    sent = asgi_call(deployment.token.secret, body, [(b"content-length", b"1200")])
    assert status_of(sent) == 413 and body.read == 0
    assert deployment.fake.calls() == []


@pytest.mark.parametrize("chunks", [[1001], [500, 501], [999, 1, 1]], ids=["only", "last", "more"])
def test_a_body_without_a_length_whose_chunk_passes_the_limit_is_refused(
    deployment, settings, chunks
):
    settings.AI_GATEWAY_MAX_BODY_BYTES = 1000
    sent = asgi_call(deployment.token.secret, Body([b"x" * size for size in chunks]), [])
    assert status_of(sent) == 413
    assert deployment.fake.calls() == []


def test_decompression_stops_at_the_limit_with_bounded_memory(deployment, settings):
    """A gzip body of 130 KiB that would expand to 128 MiB, under a 1 MiB limit: a 413, and
    the call never holds more than a few times the limit (the decoder stops at it)."""
    settings.AI_GATEWAY_MAX_BODY_BYTES = 1 << 20
    bomb = gzip.compress(b'{"model": "fake-gpt", "pad": "' + b" " * (128 << 20))
    assert len(bomb) < 400_000
    tracemalloc.start()
    try:
        sent = asgi_call(deployment.token.secret, Body([bomb]), [(b"content-encoding", b"gzip")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status_of(sent) == 413
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MiB"
    assert deployment.fake.calls() == []

"""The calls the usual coding agents make, as they make them (paths, query, headers, body
codings), set up as the README says, over real HTTP: each must reach the provider with only
the deployment's key, and be metered."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys

import httpx
import pytest

from tests import servers

from .conftest import CENTRAL, wait_for_usage

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

pytestmark = pytest.mark.django_db(transaction=True)


def test_claude_code(gateway_server, deployment):
    """ANTHROPIC_BASE_URL=.../anthropic and ANTHROPIC_AUTH_TOKEN (sent as a bearer token);
    its betas in the query and in anthropic-beta."""
    base = f"{gateway_server}/api/v2/aibridge/anthropic"
    headers = {
        "Authorization": f"Bearer {deployment.token.secret}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "User-Agent": "claude-cli/2.1.0 (external, cli)",
    }
    message = {
        "model": "claude-fake",
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "fix the bug"}]}],
    }
    streamed = httpx.post(f"{base}/v1/messages?beta=true", json=message, headers=headers)
    assert streamed.status_code == 200 and "message_stop" in streamed.text
    count = {k: message[k] for k in ("model", "system", "messages")}
    counted = httpx.post(f"{base}/v1/messages/count_tokens?beta=true", json=count, headers=headers)
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0

    for received in deployment.fake.calls():
        assert received.query == "beta=true"
        assert received.headers["x-api-key"] == CENTRAL["anthropic"]
        assert "authorization" not in received.headers  # the platform token stays here
        assert received.headers["anthropic-beta"] == headers["anthropic-beta"]
    rows = wait_for_usage(2)
    assert [r.endpoint for r in rows] == ["messages", "messages.count_tokens"]
    assert rows[0].output_tokens > 0 and rows[0].user_agent.startswith("claude-cli/")


def test_codex(gateway_server, deployment):
    """OPENAI_BASE_URL=.../openai/v1 (or a config.toml provider with wire_api = "responses"):
    streamed responses with zstd bodies, and remote compaction."""
    base = f"{gateway_server}/api/v2/aibridge/openai/v1"
    headers = {
        "Authorization": f"Bearer {deployment.token.secret}",
        "originator": "codex_cli_rs",
        "session_id": "0199-session",
        "User-Agent": "codex_cli_rs/0.162.1 (Linux; x86_64)",
        "content-type": "application/json",
    }
    turn = {
        "model": "fake-gpt",
        "instructions": "You are Codex.",
        "input": [{"type": "message", "role": "user", "content": "run the tests"}],
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }
    compressed = {**headers, "content-encoding": "zstd"}
    body = zstd.compress(json.dumps(turn).encode())
    streamed = httpx.post(f"{base}/responses", content=body, headers=compressed)
    assert streamed.status_code == 200 and "response.completed" in streamed.text
    compact = {k: turn[k] for k in ("model", "instructions", "input")}
    body = zstd.compress(json.dumps(compact).encode())
    compacted = httpx.post(f"{base}/responses/compact", content=body, headers=compressed)
    assert compacted.status_code == 200 and compacted.json()["output"][0]["type"] == "compaction"

    sent = deployment.fake.calls()
    assert [r.json for r in sent] == [turn, compact]
    for received in sent:
        assert received.headers["authorization"] == f"Bearer {CENTRAL['openai']}"
        assert received.headers["originator"] == "codex_cli_rs"
        assert "content-encoding" not in received.headers
    rows = wait_for_usage(2)
    assert [r.endpoint for r in rows] == ["responses", "responses.compact"]
    assert all(r.input_tokens > 0 and r.output_tokens > 0 and r.cost_usd > 0 for r in rows)


def test_gemini_cli(gateway_server, deployment):
    """GOOGLE_GEMINI_BASE_URL=.../google and GEMINI_API_KEY: v1beta paths, SSE streams."""
    base = f"{gateway_server}/api/v2/aibridge/google/v1beta/models/gemini-fake"
    headers = {
        "x-goog-api-key": deployment.token.secret,
        "x-goog-api-client": "google-genai-sdk/1.30.0 gl-node/v22",
        "User-Agent": "GeminiCLI/0.9.0 (linux; x64)",
    }
    content = {"contents": [{"role": "user", "parts": [{"text": "explain this repo"}]}]}
    streamed = httpx.post(f"{base}:streamGenerateContent?alt=sse", json=content, headers=headers)
    assert streamed.status_code == 200 and streamed.text.startswith("data:")
    counted = httpx.post(f"{base}:countTokens", json=content, headers=headers)
    assert counted.status_code == 200 and counted.json()["totalTokens"] > 0

    for received in deployment.fake.calls():
        assert received.headers["x-goog-api-key"] == CENTRAL["google"]
        assert received.path.startswith("/v1beta/models/gemini-fake:")
    rows = wait_for_usage(2)
    assert [r.endpoint for r in rows] == ["streamGenerateContent", "countTokens"]
    assert rows[0].streamed and rows[0].output_tokens > 0


def websocket_handshake(base: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A WebSocket opening handshake, as Codex sends one: the status and body answered."""
    host, port = base.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {key}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_codex_opening_a_websocket_is_told_to_use_http(deployment, django_db_blocker):
    """Codex tries a WebSocket to ``responses`` before HTTP, and falls back on a 426. Any
    path gets that answer in the caller's format (pages too, where Django would fail on a
    WebSocket with a 500 and a traceback); the server logs no error; the HTTP call works."""
    token = deployment.token.secret
    with django_db_blocker.unblock(), servers.served_app(workers=1) as base:
        refusals = {
            path: websocket_handshake(base, path, headers)
            for path, headers in [
                ("/api/v2/aibridge/openai/v1/responses", {"Authorization": f"Bearer {token}"}),
                ("/api/v2/aibridge/anthropic/v1/messages", {"x-api-key": token}),
                ("/settings/", {}),
            ]
        }
        after = httpx.post(
            f"{base}/api/v2/aibridge/openai/v1/responses",
            json={"model": "fake-gpt", "input": "hi", "stream": True},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    for path, (status, body) in refusals.items():
        assert status == 426, (path, status, body)
        error = json.loads(body)["error"]
        assert error["code"] == "websocket_not_supported" and "over HTTP" in error["message"]
    anthropic = json.loads(refusals["/api/v2/aibridge/anthropic/v1/messages"][1])
    assert anthropic["type"] == "error"
    assert after.status_code == 200 and "response.completed" in after.text
    assert "ERROR" not in servers.last_output and "Traceback" not in servers.last_output
    assert [r.path for r in deployment.fake.calls()] == ["/v1/responses"]

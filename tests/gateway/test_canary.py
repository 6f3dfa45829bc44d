"""Plant canary keys and a canary token, make every kind of gateway call, and look for them
in every response, error body, usage row and log line."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import application
from gateway.models import UsageRecord
from providers.models import Provider
from tests.servers import served_app

from .conftest import CENTRAL, plant_upstream, run

pytestmark = pytest.mark.django_db(transaction=True)

USER_KEY = "sk-user-CANARY-gateway-31415926"
BYOK_KEY = "sk-byok-CANARY-gateway-27182818"
SECRETS_TAIL = 4


def battery(base: str, token: str) -> list[tuple[str, dict, dict]]:
    """(path, headers, body) of calls that succeed, stream, fail and are refused."""
    chat = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
    message = {
        "model": "claude-fake",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x"}],
    }
    bearer = {"Authorization": f"Bearer {token}"}
    anthropic = {"x-api-key": token}
    return [
        ("/openai/v1/chat/completions", bearer, chat),
        ("/openai/v1/chat/completions", bearer, {**chat, "stream": True}),
        ("/openai/v1/chat/completions", {**bearer, "x-fake-echo-key": "1"}, chat),
        ("/openai/v1/chat/completions", {**bearer, "x-fake-status": "500"}, chat),
        ("/openai/v1/chat/completions", {**bearer, "x-fake-reset": "1"}, chat),
        ("/openai/v1/chat/completions", bearer, {**chat, "model": "nope"}),
        ("/openai/v1/chat/completions", {"Authorization": f"Bearer {token}x"}, chat),
        (
            "/openai/v1/chat/completions",
            {
                "X-Coder-AI-Governance-Token": token,
                "Authorization": f"Bearer {BYOK_KEY}",
                "x-fake-echo-key": "1",
            },
            chat,
        ),
        ("/anthropic/v1/messages", anthropic, message),
        ("/anthropic/v1/messages", {**anthropic, "x-fake-echo-key": "1"}, message),
        ("/anthropic/v1/messages", {**anthropic, "x-fake-reset": "1"}, {**message, "stream": True}),
        ("/anthropic/v1/nothing", anthropic, message),
        (
            "/google/v1/models/gemini-fake:generateContent",
            {"x-goog-api-key": token, "x-fake-echo-key": "1"},
            {"contents": []},
        ),
        ("/google/v1/models", {"x-goog-api-key": token}, {}),
        ("/google/v1/models/gemini-fake", {"x-goog-api-key": token}, {}),
        ("/google/v1/models/gemini-nope", {"x-goog-api-key": token}, {}),
        (
            "/google/v1/models/gemini-fake:countTokens",
            {"x-goog-api-key": token, "x-fake-echo-key": "1"},
            {"contents": []},
        ),
        ("/openai/v1/responses/input_tokens", {**bearer, "x-fake-echo-key": "1"}, chat),
    ]


def run_battery(token: str, times: int = 1) -> list[str]:
    """The battery in-process, ``times`` over: each answer's status, headers and body."""
    outputs: list[str] = []

    async def calls():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            for _ in range(times):
                for path, headers, body in battery("", token):
                    method = "POST" if body else "GET"
                    response = await client.request(
                        method, f"/api/v2/aibridge{path}", headers=headers, json=body or None
                    )
                    outputs.append(f"{response.status_code} {response.headers} {response.text}")

    run(calls)
    return outputs


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, secret[:12]
        assert secret[8:] not in text
        assert "*" * 3 + secret[-SECRETS_TAIL:] not in text  # a masked echo of it


def test_no_key_or_token_in_any_gateway_answer_row_or_log(deployment, save_user_key, caplog):
    caplog.set_level(logging.DEBUG)
    save_user_key(deployment.developer, Provider.objects.get(type="anthropic"), USER_KEY)
    token = deployment.token.secret
    outputs = run_battery(token)
    statuses = [o.split(" ")[0] for o in outputs]
    assert {"200", "401", "404", "502"} <= set(statuses)
    outputs.append(repr(list(UsageRecord.objects.values())))
    outputs.append(caplog.text)
    secrets = [*CENTRAL.values(), USER_KEY, BYOK_KEY, token]
    for output in outputs:
        assert_no_secret(output, secrets)


def test_nothing_secret_reaches_a_served_gateways_logs(deployment, save_user_key):
    token = deployment.token.secret
    # A client that puts a key where Google's own clients may: in the URL.
    in_query: list[tuple[str, dict, dict]] = [
        (f"/google/v1/models?key={token}", {"x-goog-api-key": token}, {}),
        (f"/google/v1/models?alt=json&API_KEY={token}", {}, {}),
        (f"/openai/v1/models?access%5Ftoken={token}&x=1", {"Authorization": f"Bearer {token}"}, {}),
        # A platform token in a parameter of any name, as it is or inside another value.
        (f"/openai/v1/models?token={token}&y=2", {"Authorization": f"Bearer {token}"}, {}),
        (f"/openai/v1/models?auth=Bearer%20{token}", {"Authorization": f"Bearer {token}"}, {}),
    ]
    # At info level uvicorn writes an access line per request, query included.
    with served_app(workers=1, serve_args=("--log-level", "info"), LOG_LEVEL="DEBUG") as base:
        for path, headers, body in battery(base, token) + in_query:
            method = "GET" if "/models" in path and not body else "POST"
            httpx.request(
                method,
                f"{base}/api/v2/aibridge{path}",
                headers=headers,
                json=body or None,
                timeout=15,
            )
        import time

        time.sleep(0.5)
    # served_app terminated the server; its output holds every log line it wrote.
    from tests import servers

    logs = servers.last_output
    assert "INFO" in logs or "WARNING" in logs
    assert '"GET /api/v2/aibridge/google/v1/models?key=[hidden] HTTP/1.1" 200' in logs
    assert '?alt=json&API_KEY=[hidden] HTTP/1.1" 401' in logs
    assert '?access%5Ftoken=[hidden]&x=1 HTTP/1.1" 200' in logs
    assert '/models?token=[hidden]&y=2 HTTP/1.1" 200' in logs
    assert '/models?auth=[hidden] HTTP/1.1" 200' in logs
    assert_no_secret(logs, [*CENTRAL.values(), USER_KEY, BYOK_KEY, token])


ECHO_CALLS: dict[str, tuple[str, dict[str, Any], str]] = {  # path, body, the key's header
    "openai": (
        "/openai/v1/chat/completions",
        {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        "Authorization",
    ),
    "anthropic": (
        "/anthropic/v1/messages",
        {"model": "claude-fake", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        "x-api-key",
    ),
    "google": (
        "/google/v1beta/models/gemini-fake:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "x-goog-api-key",
    ),
}


def decoded_forms(text: str) -> str:
    """``text`` and what a JSON parser or URL reader would turn it back into."""
    import re
    from urllib.parse import unquote

    unescaped = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return f"{text}\n{unescaped}\n{unquote(unescaped)}"


@pytest.mark.parametrize("wire", list(ECHO_CALLS))
def test_a_key_the_provider_quotes_anywhere_reaches_neither_the_caller_nor_a_row(
    deployment, subtests, wire
):
    """An error, an error event inside a 200 stream (cut in the middle of the key), JSON
    escapes, response headers, the answer itself: scrubbed, for the central key and the
    caller's own alike."""
    for echo in ("1", "escaped", "stream", "header", "body"):
        for credential in ("central", "own"):
            with subtests.test(echo=echo, credential=credential):
                deployment.fake.clear()
                check_an_echo(deployment, wire, echo, credential)


def check_an_echo(deployment: Any, wire: str, echo: str, credential: str) -> None:
    token = deployment.token.secret
    path, body, own_header = ECHO_CALLS[wire]
    stream = echo == "stream"
    if stream and wire == "google":
        path = path.replace(":generateContent", ":streamGenerateContent")
    elif stream:
        body = {**body, "stream": True}
    headers: dict[str, str] = {"x-fake-echo-key": echo, "x-fake-chunk-delay": "0.05"}
    if credential == "own":
        own = f"{'Bearer ' if own_header == 'Authorization' else ''}{BYOK_KEY}"
        headers.update({"X-Coder-AI-Governance-Token": token, own_header: own})
        secret = BYOK_KEY
    else:
        headers[own_header] = f"{'Bearer ' if own_header == 'Authorization' else ''}{token}"
        secret = CENTRAL[wire]

    async def call():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(f"/api/v2/aibridge{path}", headers=headers, json=body)

    response = run(call)
    [received] = deployment.fake.calls()
    assert secret in received.headers.get(own_header.lower(), "")  # it was sent, and echoed
    seen = f"{response.status_code} {list(response.headers.items())} {response.text}"
    assert_no_secret(decoded_forms(seen), [secret])
    assert "www-authenticate" not in response.headers
    assert "x-upstream-debug" not in response.headers
    rows = repr(list(UsageRecord.objects.values()))
    assert_no_secret(decoded_forms(rows), [secret])
    if echo == "stream":
        assert response.status_code == 200 and "Incorrect API key provided: ********" in seen
    if echo in ("header", "body"):
        assert response.status_code == 200


def planted(key: str, forms: list[int]) -> str:
    """The key with each character plain, JSON-escaped (either case) or percent-encoded."""
    out = []
    for ch, form in zip(key, forms + [0] * len(key), strict=False):
        out.append([ch, f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}", f"%{ord(ch):02X}"][form % 4])
    return "".join(out)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(["error", "answer", "stream", "header"]),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    forms=st.lists(st.integers(0, 3), max_size=40),
    cut=st.integers(0, 400),
    credential=st.sampled_from(["central", "own"]),
)
def test_whatever_an_upstream_says_with_the_key_planted_in_it_the_caller_never_gets_the_key(
    deployment, monkeypatch, where, before, after, forms, cut, credential
):
    token = deployment.token.secret
    secret = CENTRAL["openai"] if credential == "central" else BYOK_KEY
    text = json.dumps(before)[1:-1] + planted(secret, forms) + json.dumps(after)[1:-1]
    message = ('{"error": {"message": "' + text + '"}}').encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req-1")]
    status, chunks = 200, [message]
    if where == "error":
        status = 401
    elif where == "stream":
        headers = [(b"content-type", b"text/event-stream")]
        event = b"data: " + message + b"\n\n"
        cut = min(cut, len(event))
        chunks = [b'data: {"choices": []}\n\n', event[:cut], event[cut:], b"data: [DONE]\n\n"]
    elif where == "header":
        chunks = [b'{"choices": []}']
        headers += [(b"x-request-id", text.encode()), (b"retry-after", text.encode())]

    plant_upstream(monkeypatch, status, headers, chunks)
    call_headers = {"Authorization": f"Bearer {token}"}
    if credential == "own":
        call_headers = {"X-Coder-AI-Governance-Token": token, "Authorization": f"Bearer {secret}"}
    body = {"model": "fake-gpt", "messages": [], "stream": where == "stream"}

    async def call():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/openai/v1/chat/completions", headers=call_headers, json=body
            )

    response = run(call)
    seen = f"{response.status_code} {list(response.headers.items())} {response.text}"
    assert "********" in seen  # it was there, and it went through the gateway
    assert_no_secret(decoded_forms(seen), [secret])
    assert_no_secret(decoded_forms(repr(list(UsageRecord.objects.values()))), [secret])


def test_no_further_central_key_in_any_answer_row_log_audit_or_page(
    deployment, caplog, staff_client
):
    """Every provider with three central keys: one refused quoting itself, one
    rate-limited, one that works; the calls go through all of them."""
    from django.core.management import call_command

    from audit.models import AuditEntry
    from providers.services import provider_key_add

    caplog.set_level(logging.DEBUG)
    further: list[str] = []
    for provider in Provider.objects.all():
        for label, prefix in (("echoes", "sk-echo"), ("resting", "sk-fail-429-r9"), ("good", "sk")):
            key = f"{prefix}-CANARY-further-{provider.type}-{label}"
            provider_key_add(provider=provider, label=label, raw_key=key, actor=None)
            further.append(key)
    token = deployment.token.secret
    outputs = run_battery(token, times=3)  # round robin: each key first once
    assert AuditEntry.objects.filter(actor_label="gateway").exists()  # a key was refused
    outputs.append(repr(list(UsageRecord.objects.values())))
    outputs.append(repr(list(AuditEntry.objects.values())))
    outputs.append(staff_client.get("/admin/providers/").content.decode())
    listing = io.StringIO()
    call_command("provider_keys", "--json", stdout=listing)
    outputs.append(listing.getvalue())
    outputs.append(caplog.text)
    secrets = [*CENTRAL.values(), *further, token]
    for output in outputs:
        assert_no_secret(output, secrets)

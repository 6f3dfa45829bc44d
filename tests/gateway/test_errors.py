"""Every error answered in the caller's format, every fault of the provider mapped, and a
usage row for each call that got as far as a user."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.app import application
from providers.models import Provider
from tokens.models import ApiToken

from .conftest import run, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hello"}]}
MESSAGE = {"model": "claude-fake", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}


def openai(server, deployment, body=CHAT, headers=None, path="/chat/completions", **kw):
    return httpx.post(
        f"{server}/api/v2/aibridge/openai/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {deployment.token.secret}", **(headers or {})},
        timeout=15,
        **kw,
    )


def is_openai_error(response, status, code=None):
    error = response.json()["error"]
    matches_code = code is None or error["code"] == code
    return response.status_code == status and bool(error["message"]) and matches_code


def test_an_unknown_path_is_a_404_in_the_callers_format(gateway_server, deployment):
    token = deployment.token.secret
    base = f"{gateway_server}/api/v2/aibridge"
    o = httpx.get(f"{base}/openai/v1/embeddings", headers={"Authorization": f"Bearer {token}"})
    assert o.status_code == 404 and o.json()["error"]["type"] == "not_found_error"
    a = httpx.post(f"{base}/anthropic/v1/complete", headers={"x-api-key": token}, json={})
    assert a.status_code == 404 and a.json()["type"] == "error"
    assert a.json()["error"]["type"] == "not_found_error"
    g = httpx.get(f"{base}/google/v1/files", headers={"x-goog-api-key": token})
    assert g.status_code == 404 and g.json()["error"]["status"] == "NOT_FOUND"
    u = httpx.get(f"{base}/no-such-type/v1/models", headers={"x-goog-api-key": token})
    assert u.status_code == 404 and u.json()["error"]["code"] == 404  # Google's shape
    beta = httpx.get(f"{base}/openai/v1beta/models", headers={"Authorization": f"Bearer {token}"})
    assert beta.status_code == 404  # v1beta is Google's alone
    assert beta.json()["error"]["message"] == "No such AI Gateway endpoint."
    assert deployment.fake.calls() == []


@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.sampled_from(
        [
            "/api/v2/aibridge/openai/v1/chat/completions",
            "/api/v2/aibridge/anthropic/v1/messages/",
            "/api/v2/aibridge/google/v1/models/gemini-x:streamGenerateContent",
            "/api/v2/aibridge/aws-bedrock/v1/models",
            "/api/v2/aibridge/openrouter/v1/models/fake/router-model/",
            "/api/v2/aibridge/google/v1/models/gemini-x:countTokens",
            "/api/v2/aibridge/nope/v1/models",
            "/api/v2/aibridge/openai/v2/models",
            "/api/v2/aibridge/openai/v1beta/models",
            "/api/v2/aibridge/google/v1beta/models/gemini-x:generateContent",
        ]
    )
    | st.text(max_size=400).map(lambda tail: f"/api/v2/aibridge/openai/v1/{tail}"),
)
@example(method="POST", path="/api/v2/aibridge/openai/v1/chat/completions" + "/" * 300)
def test_a_remembered_route_is_the_route_found_afresh(method, path):
    """Paths are looked up once and remembered; what is remembered must be what a fresh
    lookup finds, refusals are never remembered, and a long path is never kept."""
    from gateway.app import Refused, _find_route, _remembered_route, _Route, _route_of

    def outcome(find):
        try:
            return find(method, path)
        except Refused as refused:
            return (refused.status, refused.code)

    before = _remembered_route.cache_info().currsize
    assert outcome(_route_of) == outcome(_route_of) == outcome(_find_route)
    kept = _remembered_route.cache_info().currsize - before
    found = isinstance(outcome(_find_route), _Route)
    assert kept <= (1 if found and len(path) <= 300 else 0)


def test_a_body_over_the_limit_is_a_413(gateway_server, deployment):
    big = b'{"model": "fake-gpt", "pad": "' + b"x" * (32 * 1024 * 1024 + 10) + b'"}'
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages",
        content=big,
        headers={"x-api-key": deployment.token.secret, "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_a_streamed_body_over_the_limit_is_a_413_without_reading_it_all(deployment, settings):
    settings.AI_GATEWAY_MAX_BODY_BYTES = 1000

    async def chunks():
        for _ in range(100):
            yield b"x" * 100

    async def call():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/google/v1/models/gemini-fake:generateContent",
                content=chunks(),
                headers={"x-goog-api-key": deployment.token.secret},
            )

    response = run(call)
    assert response.status_code == 413
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_past_the_bodies_a_worker_may_hold_a_call_is_a_503_and_memory_is_given_back(
    deployment, settings
):
    """A worker holds at most AI_GATEWAY_MAX_BUFFERED_BYTES of request bodies, all calls
    together: while one call's 6,000 bytes arrive slowly (5,000 so far), another's 6,000
    would pass the 10,000 allowed and is answered 503 in its format (the SDKs try again),
    without waiting. A call alone may hold more than that, and whatever a call ended with
    (an answer, a 413, bad JSON, a bad token, cancelled halfway), what it held is given
    back."""
    from gateway.app import worker

    settings.AI_GATEWAY_MAX_BUFFERED_BYTES = 10_000
    settings.AI_GATEWAY_MAX_BODY_BYTES = 20_000
    padded = json.dumps({**MESSAGE, "metadata": {"user_id": "p" * 5_900}}).encode()
    headers = {"x-api-key": deployment.token.secret, "anthropic-version": "2023-06-01"}
    path = "/api/v2/aibridge/anthropic/v1/messages"

    async def main():
        arrived, finish = asyncio.Event(), asyncio.Event()

        async def slowly():
            yield padded[:5_000]
            arrived.set()
            await finish.wait()
            yield padded[5_000:]

        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            first = asyncio.create_task(client.post(path, content=slowly(), headers=headers))
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.05)
            refused = await client.post(path, content=padded, headers=headers)
            # A compressed body is small as sent; what counts is what it holds decoded.
            zipped = {**headers, "content-encoding": "gzip"}
            unzipped = await client.post(path, content=gzip.compress(padded), headers=zipped)
            finish.set()
            answered = await first
            alone = await client.post(path, content=padded + b" " * 8_000, headers=headers)
            failing = [
                await client.post(path, content=b"x" * 25_000, headers=headers),  # 413
                await client.post(path, content=b"{not json", headers=headers),
                await client.post(path, content=padded, headers={"x-api-key": "llmcp_x_y"}),
            ]
            arrived.clear()
            finish.clear()
            halfway = asyncio.create_task(client.post(path, content=slowly(), headers=headers))
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.05)
            held_halfway = worker.bytes_held
            halfway.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await halfway
            await asyncio.sleep(0.05)
            return [refused, unzipped], answered, alone, failing, held_halfway, worker.bytes_held

    refused, answered, alone, failing, held_halfway, held_after = run(main)
    for response in refused:
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "overloaded_error"  # Anthropic's, retried
        assert "Try again in a moment" in response.json()["error"]["message"]
    assert answered.status_code == 200 and alone.status_code == 200
    assert [r.status_code for r in failing] == [413, 400, 401]
    assert held_halfway == 5_000 and held_after == 0


def test_bodies_sent_with_tokens_not_yet_checked_cannot_fill_a_workers_budget(
    deployment, settings, caplog, monkeypatch
):
    """The body is read before the one query, since the model is in it: so clients without
    a valid token could fill a worker's budget by sending bodies slowly, and every other
    caller would get 503s. Bodies still arriving on calls whose token is not checked yet may
    hold a quarter of it (2,500 of 10,000 bytes here) together; past that, a call's token is
    checked before more of its body is read. A bad token is a 401 at once, the rest of its
    body unread; a good one goes on, its bytes counted as checked, and is answered as
    usual."""
    from gateway import app
    from gateway.app import worker

    caplog.set_level(logging.WARNING)
    # The line is written at most once per 10 s: not skipped for an earlier test's.
    monkeypatch.setattr(app._early_check_log, "last", float("-inf"))
    settings.AI_GATEWAY_MAX_BUFFERED_BYTES = 10_000
    settings.AI_GATEWAY_MAX_BODY_BYTES = 20_000
    padded = json.dumps({**MESSAGE, "metadata": {"user_id": "p" * 5_900}}).encode()
    good = {"x-api-key": deployment.token.secret, "anthropic-version": "2023-06-01"}
    bad = {**good, "x-api-key": deployment.token.secret[:-6] + "AAAAAA"}  # well-formed
    path = "/api/v2/aibridge/anthropic/v1/messages"

    async def main():
        release = asyncio.Event()

        def slowly(first: int, sent: asyncio.Event, before: int = 0):
            async def body():
                if before:  # a first part that fits in the share, held unchecked
                    yield padded[:before]
                yield padded[before:first]
                sent.set()
                await release.wait()
                yield padded[first:]

            return body()

        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            # Within the share, checked by the one query as usual: while it waits for the
            # provider, its body is held as checked.
            small = json.dumps(MESSAGE).encode()

            async def in_two_parts():
                yield small[:50]
                yield small[50:]

            delayed = {**good, "x-fake-delay": "0.5"}
            waiting = asyncio.create_task(
                client.post(path, content=in_two_parts(), headers=delayed)
            )
            await asyncio.sleep(0.25)
            while_answered = (worker.bytes_held, worker.unchecked_bytes)
            assert (await waiting).status_code == 200
            holding = asyncio.Event()
            unchecked = asyncio.create_task(
                client.post(path, content=slowly(2_000, holding), headers=bad)
            )
            await asyncio.wait_for(holding.wait(), 10)
            held_unchecked = worker.unchecked_bytes
            # Past the share: answered before the rest of its body is sent.
            refused = await asyncio.wait_for(
                client.post(path, content=slowly(1_000, asyncio.Event()), headers=bad), 10
            )
            sent = asyncio.Event()
            checked = asyncio.create_task(
                client.post(path, content=slowly(1_400, sent, before=400), headers=good)
            )
            await asyncio.wait_for(sent.wait(), 10)
            await asyncio.sleep(0.05)
            while_checked = (worker.bytes_held, worker.unchecked_bytes)

            async def not_json():
                yield b"{" + b"x" * 999
                yield b"!"

            broken = await client.post(path, content=not_json(), headers=good)
            release.set()
            answers = await asyncio.gather(unchecked, checked)
            return while_answered, held_unchecked, refused, while_checked, broken, answers

    while_answered, held_unchecked, refused, while_checked, broken, answers = run(main)
    unchecked, checked = answers
    assert while_answered == (len(json.dumps(MESSAGE)), 0)
    assert held_unchecked == 2_000
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    # The good call's 1,400 bytes are held, none of them as unchecked any more.
    assert while_checked == (3_400, 2_000)
    assert checked.status_code == 200 and checked.json()["type"] == "message"
    assert unchecked.status_code == 401  # checked, as usual, once its body was read
    # Checked early, then not JSON: a 400 and, like any call refused before its lookup, no
    # usage row; the two calls answered have theirs.
    assert broken.status_code == 400
    assert [row.status for row in deployment.usage()] == [200, 200]
    assert worker.bytes_held == 0 and worker.unchecked_bytes == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("had their token checked before the rest" in line for line in warnings)
    assert deployment.token.secret not in caplog.text


def test_many_clients_at_once_over_http_bad_tokens_cannot_hold_the_budget(
    deployment, django_db_blocker
):
    """Through the real server: four clients with well-formed but unknown tokens start slow
    bodies at once. Their bodies may hold a quarter of the 10,000-byte budget together, so
    two are held and the other two are answered 401 while the rest of their bodies is never
    sent. Three people with good tokens then start slow bodies at once, past that share:
    their tokens are checked early and their calls answered 200, as is a whole body; the
    held unknown tokens get their 401 once their bodies end. Every good call has its row."""
    from tests.servers import served_app

    padded = json.dumps({**MESSAGE, "metadata": {"user_id": "p" * 1_500}}).encode()
    good = deployment.token.secret
    bad = good[:-6] + "AAAAAA"  # well-formed, unknown

    def head(token: str) -> bytes:
        return (
            b"POST /api/v2/aibridge/anthropic/v1/messages HTTP/1.1\r\nhost: gw\r\n"
            b"x-api-key: " + token.encode() + b"\r\nanthropic-version: 2023-06-01\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    async def start(port: int, token: str) -> tuple[Any, Any]:
        """A call whose body's first 1,000 bytes are sent, the rest not yet."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head(token) + chunk(padded[:1_000]))
        await writer.drain()
        return reader, writer

    async def answer(reader: Any, timeout: float) -> int | None:
        """The status of the answer, or None if none came within ``timeout``."""
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except TimeoutError:
            return None
        return int(line.split()[1])

    async def finish(connection: tuple[Any, Any]) -> int | None:
        reader, writer = connection
        writer.write(chunk(padded[1_000:]) + b"0\r\n\r\n")
        await writer.drain()
        status = await answer(reader, 10)
        writer.close()
        return status

    async def clients(base: str) -> tuple[list, list, list, int]:
        port = int(base.rsplit(":", 1)[1])
        unknown = await asyncio.gather(*(start(port, bad) for _ in range(4)))
        early = await asyncio.gather(*(answer(reader, 2) for reader, _ in unknown))
        held = [c for c, status in zip(unknown, early, strict=True) if status is None]
        people = await asyncio.gather(*(start(port, good) for _ in range(3)))
        await asyncio.sleep(0.2)  # each past the share: checked early, then held
        answered = await asyncio.gather(*(finish(c) for c in people))
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            whole = await client.post(
                "/api/v2/aibridge/anthropic/v1/messages",
                content=padded,
                headers={"x-api-key": good, "anthropic-version": "2023-06-01"},
            )
        late = await asyncio.gather(*(finish(c) for c in held))
        for _, writer in unknown:
            writer.close()
        return early, answered, late, whole.status_code

    with (
        django_db_blocker.unblock(),
        served_app(workers=1, AI_GATEWAY_MAX_BUFFERED_BYTES="10000") as base,
    ):
        early, answered, late, whole = asyncio.run(clients(base))
        rows = wait_for_usage(4)

    assert sorted(early, key=str) == [401, 401, None, None]
    assert answered == [200, 200, 200] and whole == 200
    assert late == [401, 401]
    assert [row.status for row in rows] == [200] * 4
    assert {row.username for row in rows} == {deployment.developer.username}


@pytest.mark.parametrize("case", ["garbage", "unknown", "revoked", "expired", "deactivated"])
def test_a_bad_token_is_a_401(gateway_server, deployment, case):
    token = deployment.token.secret
    if case == "garbage":
        token = "sk-not-a-platform-token"
    elif case == "unknown":
        token = token[:-6] + "AAAAAA"
    elif case == "revoked":
        ApiToken.objects.update(revoked_at=timezone.now())
    elif case == "expired":
        ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        User.objects.update(is_active=False)
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/openai/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert deployment.fake.calls() == []


def test_a_model_name_no_model_could_have_is_a_400_in_each_callers_format(
    gateway_server, deployment
):
    """A NUL character (which PostgreSQL cannot even compare), an over-long name or no name
    at all: a 400 that says which, in the caller's format, before any lookup."""
    base, token = f"{gateway_server}/api/v2/aibridge", deployment.token.secret
    nul = openai(gateway_server, deployment, {**CHAT, "model": "fake\x00gpt"})
    assert is_openai_error(nul, 400, "invalid_model")
    assert "NUL" in nul.json()["error"]["message"]
    long = openai(gateway_server, deployment, {**CHAT, "model": "m" * 256})
    assert is_openai_error(long, 400, "invalid_model")
    assert "longer than 255" in long.json()["error"]["message"]
    assert is_openai_error(
        openai(gateway_server, deployment, {"messages": []}), 400, "model_missing"
    )
    anthropic = httpx.post(
        f"{base}/anthropic/v1/messages",
        json={**MESSAGE, "model": "claude\x00fake"},
        headers={"x-api-key": token},
    )
    assert anthropic.status_code == 400
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    google = httpx.post(  # the model named in the path, as %00
        f"{base}/google/v1/models/gemini%00fake:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": token},
    )
    assert google.status_code == 400
    assert google.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert deployment.fake.calls() == []


@pytest.mark.parametrize(
    "model, said",
    [
        ("\u202egpt-5", "text-direction"),
        ("gpt-5\r\nx-injected: 1", "line break"),
        ("fake-gpt\u0085", "U+0085"),
        ("fake\u200bgpt", "U+200B"),
    ],
    ids=["bidi-override", "crlf", "next-line", "zero-width-space"],
)
def test_a_model_name_with_control_or_invisible_characters_is_refused_and_stored_nowhere(
    gateway_server, deployment, model, said
):
    """A caller-chosen name is shown on the Usage tab and in CSV: one that reads backwards or
    holds a line break is a 400 before the lookup, and no row or daily sum keeps it."""
    from gateway.models import UsageDay, UsageRecord

    response = openai(gateway_server, deployment, {**CHAT, "model": model})
    assert is_openai_error(response, 400, "invalid_model")
    assert said in response.json()["error"]["message"]
    google = httpx.post(  # named in the path (a colon in it names no endpoint: a 404)
        f"{gateway_server}/api/v2/aibridge/google/v1/models/{quote(model)}:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": deployment.token.secret},
    )
    assert google.status_code == (404 if ":" in model else 400)
    time.sleep(0.2)  # the server's usage writer would have written by now
    assert not UsageRecord.objects.filter(model_identifier=model).exists()
    assert not UsageDay.objects.filter(model_identifier=model).exists()
    assert deployment.fake.calls() == []


def test_a_user_agent_with_a_control_character_is_stored_printable(gateway_server, deployment):
    response = openai(gateway_server, deployment, headers={"user-agent": b"tool\x85/1.0"})
    assert response.status_code == 200
    (row,) = wait_for_usage(1)
    assert row.user_agent == "tool?/1.0"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(model=st.text(max_size=300) | st.sampled_from(["fake-gpt", "fake-gpt\x00", "\x00"]))
def test_whatever_model_name_is_typed_the_answer_is_never_a_server_error(
    gateway_server, deployment, model
):
    response = openai(gateway_server, deployment, {**CHAT, "model": model})
    assert response.status_code in (200, 400, 404), (model, response.status_code)
    if response.status_code != 200:
        assert response.json()["error"]["message"]
    if model and not model.isprintable():
        assert response.status_code == 400


@pytest.mark.parametrize("stream", [1, 0, "true", [True], {}, 1.0])
def test_a_stream_field_that_is_not_true_or_false_is_a_400_in_each_callers_format(
    gateway_server, deployment, stream
):
    """A lenient OpenAI-compatible server would stream on "stream": 1 while the gateway, going
    by JSON true, buffered the answer and asked for no usage: refused, as OpenAI and
    Anthropic refuse it."""
    chat = openai(gateway_server, deployment, {**CHAT, "stream": stream})
    assert is_openai_error(chat, 400, "invalid_stream")
    assert "stream field must be true or false" in chat.json()["error"]["message"]
    message = httpx.post(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages",
        json={**MESSAGE, "stream": stream},
        headers={"x-api-key": deployment.token.secret},
        timeout=15,
    )
    assert message.status_code == 400
    assert message.json()["type"] == "error" and message.json()["error"]["message"]
    assert deployment.fake.calls() == []


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
ODD_BODIES = [
    ("openai", "/chat/completions", {"model": "fake-gpt"}),
    ("openai", "/completions", {"model": "fake-gpt"}),
    ("openai", "/responses", {"model": "fake-gpt"}),
    ("openai", "/responses/input_tokens", {"model": "fake-gpt"}),
    ("openai", "/responses/compact", {"model": "fake-gpt"}),
    ("anthropic", "/messages", {"model": "claude-fake"}),
    ("anthropic", "/messages/count_tokens", {"model": "claude-fake"}),
    ("aws-bedrock", "/messages", {"model": "anthropic.claude-fake-v1:0"}),
    ("aws-bedrock", "/messages/count_tokens", {"model": "anthropic.claude-fake-v1:0"}),
    ("google", "/models/gemini-fake:generateContent", {}),
    ("google", "/models/gemini-fake:streamGenerateContent", {}),
    ("google", "/models/gemini-fake:countTokens", {}),
]
FIELDS = ["stream", "stream_options", "messages", "input", "contents", "max_tokens", "model"]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    call=st.sampled_from(ODD_BODIES),
    fields=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4),
)
@example(  # Bedrock's count read as an event stream: a 502 of the gateway's own
    call=("aws-bedrock", "/messages/count_tokens", {"model": "anthropic.claude-fake-v1:0"}),
    fields={"stream": True},
)
def test_whatever_a_body_holds_the_gateway_answers_it_without_a_server_error(
    deployment, call, fields
):
    """Bodies of any shape, in every format: the gateway answers (a 4xx of its own, or the
    provider's answer), never with a failure of its own."""
    provider_type, path, body = call
    token = deployment.token.secret
    headers = {"authorization": f"Bearer {token}", "x-api-key": token, "x-goog-api-key": token}

    async def call_gateway():
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                f"/api/v2/aibridge/{provider_type}/v1{path}",
                json={**body, **fields},
                headers=headers,
            )

    response = run(call_gateway)
    assert response.status_code < 500, (response.status_code, response.text[:300], fields)


@pytest.mark.parametrize(
    "change, code, words",
    [
        ("user-keys-only", "user_api_key_required", "Settings → API Keys"),
        ("disabled", "provider_disabled", "not available"),
    ],
)
def test_a_model_the_caller_may_not_use_is_a_403_with_the_reason(
    gateway_server, deployment, change, code, words
):
    body = CHAT
    if change == "user-keys-only":
        Provider.objects.filter(type="openai").update(
            central_key_enabled=False, central_key_fallback=False
        )
    elif change == "disabled":
        Provider.objects.filter(type="openai").update(enabled=False)
    else:
        body = {**CHAT, **change}
    response = openai(gateway_server, deployment, body)
    assert is_openai_error(response, 403, code)
    assert words in response.json()["error"]["message"]
    assert deployment.fake.calls() == []
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind, row.cost_usd) == (403, "not_allowed", None)


def test_upstream_errors_pass_through_with_their_status_and_body(gateway_server, deployment):
    response = openai(gateway_server, deployment, headers={"x-fake-status": "429"})
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "The fake provider answers 429 as asked."
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind) == (429, "upstream_error")


def test_a_bedrock_token_count_that_cannot_be_read_is_a_502_in_anthropics_format(
    gateway_server, deployment
):
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/aws-bedrock/v1/messages/count_tokens",
        json={**MESSAGE, "model": "anthropic.claude-fake-v1:0"},
        headers={"x-api-key": deployment.token.secret, "x-fake-garble": "1"},
        timeout=15,
    )
    assert response.status_code == 502
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["message"] == "AWS Bedrock sent an answer that could not be read."
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind, row.endpoint) == (
        502,
        "garbled_response",
        "messages.count_tokens",
    )


def test_a_provider_past_the_read_timeout_is_a_504(gateway_server, deployment):
    started = time.monotonic()
    response = openai(gateway_server, deployment, headers={"x-fake-delay": "3"})
    assert is_openai_error(response, 504, "upstream_timeout")
    assert time.monotonic() - started < 3
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind) == (504, "upstream_timeout")


def test_a_hanging_provider_is_a_504_in_anthropics_format(gateway_server, deployment):
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages",
        json=MESSAGE,
        headers={"x-api-key": deployment.token.secret, "x-fake-hang": "1"},
        timeout=15,
    )
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "api_error"


def test_a_reset_connection_is_a_502(gateway_server, deployment):
    response = openai(gateway_server, deployment, headers={"x-fake-reset": "1"})
    assert is_openai_error(response, 502, "upstream_unreachable")
    assert wait_for_usage(1)[0].error_kind == "upstream_unreachable"


def test_a_stream_broken_midway_ends_with_an_error_event_and_keeps_what_was_seen(
    gateway_server, deployment
):
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages",
        json={**MESSAGE, "stream": True},
        headers={"x-api-key": deployment.token.secret, "x-fake-reset": "1"},
        timeout=15,
    )
    assert response.status_code == 200  # the stream had started
    assert "event: message_start" in response.text
    tail = response.text.strip().split("\n\n")[-1]
    assert tail.startswith("event: error")
    assert json.loads(tail.split("data: ", 1)[1])["error"]["code"] == "stream_broken"
    row = wait_for_usage(1)[0]
    assert row.error_kind == "stream_broken" and row.input_tokens > 0


def test_a_stream_that_stalls_before_its_first_event_is_a_504(gateway_server, deployment):
    """Nothing was sent to the client yet: a plain error answer, not a 200 that breaks."""
    started = time.monotonic()
    response = openai(
        gateway_server, deployment, {**CHAT, "stream": True}, headers={"x-fake-stall": "1"}
    )
    assert is_openai_error(response, 504, "upstream_timeout")
    assert time.monotonic() - started < 5  # the read timeout here is 2 s
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind, row.streamed) == (504, "upstream_timeout", True)


def test_a_garbled_stream_is_passed_on_as_received(gateway_server, deployment):
    response = openai(
        gateway_server, deployment, {**CHAT, "stream": True}, headers={"x-fake-garble": "1"}
    )
    assert response.status_code == 200 and "data: {not json" in response.text
    row = wait_for_usage(1)[0]
    assert row.status == 200 and row.output_tokens == 5


def test_an_unreachable_provider_is_a_502(gateway_server, deployment):
    from tests.servers import free_port

    Provider.objects.filter(type="openai").update(base_url=f"http://127.0.0.1:{free_port()}/v1")
    response = openai(gateway_server, deployment)
    assert is_openai_error(response, 502, "upstream_unreachable")
    assert "could not be reached" in response.json()["error"]["message"]


def test_calls_go_through_the_proxy_in_the_environment(deployment, django_db_blocker):
    """The served app reads HTTP_PROXY: with the proxy down, the provider is never called
    and the caller is told where the call stopped."""
    from tests.servers import free_port, served_app

    with (
        django_db_blocker.unblock(),
        served_app(workers=1, HTTP_PROXY=f"http://u:proxy-canary@127.0.0.1:{free_port()}") as base,
    ):
        response = openai(base, deployment)
    assert is_openai_error(response, 502, "upstream_unreachable")
    message = response.json()["error"]["message"]
    assert "could not be reached through this server's outbound proxy" in message
    assert "proxy-canary" not in response.text
    assert deployment.fake.calls() == []
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind) == (502, "upstream_unreachable")


def test_a_metadata_address_is_refused_at_request_time(deployment, monkeypatch):
    """Saved before the rule existed, or a name that resolves there: never called."""
    from lib import http1

    async def resolves_to_metadata(host, port):
        return [(2, 1, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(http1, "getaddrinfo", resolves_to_metadata)
    for base_url in ("http://169.254.169.254/v1", "http://rebinding.example/v1"):
        Provider.objects.filter(type="openai").update(base_url=base_url)

        async def call():
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.post(
                    "/api/v2/aibridge/openai/v1/chat/completions",
                    json=CHAT,
                    headers={"Authorization": f"Bearer {deployment.token.secret}"},
                )

        response = run(call)
        assert response.status_code == 502, base_url
        assert "link-local or cloud metadata" in response.json()["error"]["message"]


def slow_stream(client, server, deployment, chunks: int, delay: float):
    """A streamed chat call the fake answers with ``chunks`` events ``delay`` s apart."""
    return client.stream(
        "POST",
        f"{server}/api/v2/aibridge/openai/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={
            "Authorization": f"Bearer {deployment.token.secret}",
            "x-fake-chunks": str(chunks),
            "x-fake-chunk-delay": str(delay),
        },
    )


def test_a_client_that_disconnects_mid_stream_closes_the_upstream_call(gateway_server, deployment):
    async def call():
        async with (
            httpx.AsyncClient(timeout=10) as client,
            slow_stream(client, gateway_server, deployment, 100, 0.05) as response,
        ):
            async for _ in response.aiter_raw():
                break
        await asyncio.sleep(1)

    asyncio.run(call())
    assert deployment.fake.disconnects == 1
    row = wait_for_usage(1)[0]
    assert row.error_kind == "client_disconnected" and row.latency_ms < 3000
    assert deployment.usage().count() == 1


def test_a_client_that_leaves_while_waiting_for_an_answer_closes_the_upstream_call(
    gateway_server, deployment
):
    """Not streamed: the provider is still "thinking" when the client gives up."""

    async def call():
        async with httpx.AsyncClient(timeout=0.6) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(
                    f"{gateway_server}/api/v2/aibridge/openai/v1/chat/completions",
                    json=CHAT,
                    headers={
                        "Authorization": f"Bearer {deployment.token.secret}",
                        "x-fake-delay": "10",
                    },
                )
        await asyncio.sleep(1)

    asyncio.run(call())
    assert deployment.fake.disconnects == 1
    row = wait_for_usage(1)[0]
    assert (row.status, row.error_kind) == (499, "client_disconnected")
    assert row.latency_ms < 3000


@pytest.mark.postgres
def test_many_streams_at_once_through_two_workers_only_the_leavers_are_stopped(
    deployment, django_db_blocker
):
    """The disconnect watch is shared by all the calls of a worker: with 24 streams at once
    through two worker processes, the 12 clients that leave after the first event stop their
    own calls (and upstream connections), and the 12 that stay get their whole stream."""
    from tests.servers import served_app

    async def call_all(base: str) -> list[tuple[bool, int, bytes]]:
        limits = httpx.Limits(max_connections=24)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:

            async def one(i: int) -> tuple[bool, int, bytes]:
                leaves = i % 2 == 0
                body = b""
                async with slow_stream(client, base, deployment, 40, 0.03) as response:
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if leaves:
                            break
                return leaves, response.status_code, body

            return await asyncio.gather(*(one(i) for i in range(24)))

    with django_db_blocker.unblock(), served_app(workers=2) as base:
        results = asyncio.run(call_all(base))
        rows = wait_for_usage(24)

    for leaves, status, body in results:
        assert status == 200
        assert leaves or body.rstrip().endswith(b"data: [DONE]")
    assert deployment.fake.disconnects == 12
    kinds = sorted((row.status, row.error_kind) for row in rows)
    assert kinds == [(200, "")] * 12 + [(499, "client_disconnected")] * 12
    assert all(row.latency_ms < 1000 for row in rows if row.status == 499)


def test_only_calls_that_last_get_a_disconnect_watcher():
    """Quick calls cost a dict entry, no task; one timer per event loop, and only while
    calls wait; a call that lasts is watched, and its client leaving cancels it."""
    import asyncio

    from gateway.app import DisconnectWatch, _watches

    class FakeCall:
        def __init__(self) -> None:
            self.left = asyncio.Event()

        async def receive(self) -> dict:
            await self.left.wait()
            return {"type": "http.disconnect"}

    async def scenario() -> None:
        watches = _watches.get()
        for _ in range(1000):  # quick calls
            DisconnectWatch(FakeCall()).end()  # type: ignore[arg-type]
        assert len(asyncio.all_tasks()) == 1  # only this test's own task
        assert not watches._waiting

        call = FakeCall()
        watch = DisconnectWatch(call)  # type: ignore[arg-type]
        stopped = False
        try:
            await asyncio.sleep(2 * DisconnectWatch.WATCH_AFTER + 0.05)
            assert watch._watcher is not None  # watched by now
            call.left.set()
            await asyncio.sleep(1)  # cancelled before this ends
        except asyncio.CancelledError:
            stopped = watch.stopped_the_call()
        finally:
            watch.end()
        assert stopped
        await asyncio.sleep(DisconnectWatch.WATCH_AFTER + 0.05)
        assert watches._timer is None  # nothing waits: no timer either

    asyncio.run(scenario())


@pytest.mark.parametrize("extensions", [{"websocket.http.response": {}}, {}])
def test_a_websocket_handshake_is_refused_in_the_callers_format_or_closed(extensions):
    """With the ASGI extension for an HTTP answer: 426 in the path's format (Google's here);
    without it, the handshake is closed (the server answers 403), never left hanging."""
    from gateway.app import refuse_websocket

    scope = {
        "type": "websocket",
        "path": "/api/v2/aibridge/google/v1beta/models/gemini-fake:streamGenerateContent",
        "headers": [(b"x-goog-api-key", b"whatever")],
        "extensions": extensions,
    }
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    asyncio.run(refuse_websocket(scope, receive, send))
    if not extensions:
        assert sent == [{"type": "websocket.close", "code": 1008}]
        return
    start, body = sent
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 426)
    error = json.loads(body["body"])["error"]
    assert (error["code"], error["status"]) == (426, "FAILED_PRECONDITION")


@pytest.mark.parametrize(
    "method, path",
    [
        ("HEAD", "/anthropic"),
        ("HEAD", "/anthropic/"),
        ("HEAD", "/openai/v1"),
        ("HEAD", "/google/v1beta"),
        ("GET", "/anthropic/api/hello"),
        ("HEAD", "/anthropic/api/hello"),
    ],
)
def test_a_clients_probe_of_the_base_url_is_answered_200_without_a_token(
    gateway_server, deployment, method, path
):
    """Claude Code sends HEAD to its base URL (and to /api/hello) before anything else, and
    takes a 404 for an unreachable endpoint."""
    response = httpx.request(method, f"{gateway_server}/api/v2/aibridge{path}", timeout=10)
    assert response.status_code == 200
    assert response.content == (b'{"status":"ok"}' if method == "GET" else b"")
    assert httpx.get(f"{gateway_server}/api/v2/aibridge/anthropic/v1").status_code == 404
    assert httpx.head(f"{gateway_server}/api/v2/aibridge/nope").status_code == 404
    assert deployment.fake.calls() == []

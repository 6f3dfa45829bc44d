"""A rolling restart: SIGTERM to `manage.py serve` while calls are in flight. Calls that finish
within the grace period finish; the rest are told, in their caller's format, and every call
keeps its usage row."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from gateway import lifecycle
from gateway.app import application
from gateway.models import UsageRecord
from tests import servers

from .conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_restart_cuts_only_what_outlasts_the_grace_period_and_loses_no_row(deployment):
    token = deployment.token.secret
    anthropic = {"x-api-key": token, "anthropic-version": "2023-06-01"}
    message = {
        "model": "claude-fake",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    chat = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
    streamed: list[bytes] = []
    first_chunk = threading.Event()
    answers: dict[str, httpx.Response] = {}

    def long_stream(base: str) -> None:  # 20 chunks, 0.3 s apart: outlasts a 1 s grace period
        headers = {**anthropic, "x-fake-chunks": "20", "x-fake-chunk-delay": "0.3"}
        with httpx.stream(
            "POST",
            f"{base}/api/v2/aibridge/anthropic/v1/messages",
            json={**message, "stream": True},
            headers=headers,
            timeout=30,
        ) as response:
            answers["stream"] = response
            for chunk in response.iter_bytes():
                streamed.append(chunk)
                first_chunk.set()

    def slow_answer(base: str, delay: str) -> None:
        answers[delay] = httpx.post(
            f"{base}/api/v2/aibridge/openai/v1/chat/completions",
            json=chat,
            headers={"Authorization": f"Bearer {token}", "x-fake-delay": delay},
            timeout=30,
        )

    with servers.served_app(workers=2, serve_args=("--graceful-timeout", "1")) as base:
        for _ in range(10):  # quick calls whose rows may still be queued at the signal
            quick = httpx.post(
                f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                json=chat,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert quick.status_code == 200
        threads = [
            threading.Thread(target=long_stream, args=(base,)),
            threading.Thread(target=slow_answer, args=(base, "0.5")),  # within the grace
            threading.Thread(target=slow_answer, args=(base, "10")),  # beyond it
        ]
        threads[0].start()
        assert first_chunk.wait(10)
        for thread in threads[1:]:
            thread.start()
        time.sleep(0.3)  # all three in flight
        stopping = time.monotonic()
    # served_app has sent SIGTERM and waited for the server to exit.
    stopped_after = time.monotonic() - stopping
    for thread in threads:
        thread.join(10)

    assert stopped_after < 8  # the grace period, not the 10 s answer
    assert answers["0.5"].status_code == 200  # finished within the grace period
    cut = answers["10"]
    assert cut.status_code == 503  # which the SDKs retry, on another replica
    assert cut.json()["error"]["code"] == "server_shutdown"
    assert "restarting" in cut.json()["error"]["message"]
    assert answers["stream"].status_code == 200
    text = b"".join(streamed).decode()
    assert "content_block_delta" in text
    assert text.rstrip().endswith("}")
    last_event = text.strip().split("\n\n")[-1]
    assert last_event.startswith("event: error") and "restarting" in last_event
    assert "Traceback" not in servers.last_output
    assert "Exception in ASGI application" not in servers.last_output

    rows = wait_for_usage(13)
    assert len(rows) == 13
    ok = [r for r in rows if r.error_kind == ""]
    assert len(ok) == 11 and {r.status for r in ok} == {200}
    cut_rows = {r.endpoint: r for r in rows if r.error_kind == "server_shutdown"}
    assert cut_rows["chat.completions"].status == 503
    stream_row = cut_rows["messages"]
    assert (stream_row.status, stream_row.streamed) == (200, True)
    assert stream_row.input_tokens > 0  # what the stream said before it was cut
    assert deployment.fake.disconnects == 2  # both upstream calls were closed


def test_shutdown_waits_for_the_calls_it_cancelled_to_queue_their_rows(deployment):
    """uvicorn cancels the calls still running and shuts the app down at once. A call whose
    answer takes a moment to write (a slow client) must still get its row into the last
    batch, not into a writer nobody closes."""
    body = b'{"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}'
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v2/aibridge/openai/v1/chat/completions",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {deployment.token.secret}".encode()),
            (b"x-fake-delay", b"10"),  # the provider "thinks" until the call is cut
        ],
    }
    sent: list[dict] = []

    async def main() -> None:
        delivered = False
        never = asyncio.Event()

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await never.wait()  # the client stays
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            await asyncio.sleep(0.2)  # a slow connection
            sent.append(message)

        call = asyncio.create_task(application(scope, receive, send))
        await asyncio.sleep(0.5)  # the call waits on the provider
        call.cancel()  # as uvicorn does when the grace period is up
        await lifecycle.shutdown()  # and then at once
        await call

    asyncio.run(main())
    assert sent[0]["status"] == 503
    [row] = UsageRecord.objects.all()
    assert (row.status, row.error_kind) == (503, "server_shutdown")


@pytest.mark.parametrize(
    "args, error",
    [
        (("--graceful-timeout", "-1"), "--graceful-timeout cannot be negative"),
        (("--graceful-timeout", "soon"), "argument --graceful-timeout: invalid int value"),
        (("--workers", "0"), "--workers must be at least 1"),
        (("--port", "70000"), "--port must be between 0 and 65535"),
    ],
)
def test_serve_refuses_bad_arguments_in_one_line(args, error):
    from tests.providers.test_hardening import run_command_line

    result = run_command_line("serve", *args)
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and error in lines[0], lines

"""The worker gives its CPU away after an answer only when that call was its only one: a
lone caller waiting on this CPU gets its answer sooner, and under load no call pays for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from gateway import app as gateway_app
from gateway.app import application, worker

from .conftest import run

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}


def yields_counted(monkeypatch) -> list[int]:
    counted: list[int] = []
    monkeypatch.setattr(gateway_app, "_sched_yield", lambda: counted.append(worker.calls_in_flight))
    return counted


def test_the_cpu_is_given_away_only_by_a_worker_with_one_call_in_flight(monkeypatch):
    counted = yields_counted(monkeypatch)
    for in_flight in (1, 2, 16):
        monkeypatch.setattr(gateway_app.worker, "calls_in_flight", in_flight)
        gateway_app._let_the_reader_run()
    assert counted == [1]


@pytest.mark.django_db(transaction=True)
def test_calls_are_counted_while_they_run_and_never_after(deployment, monkeypatch):
    counted = yields_counted(monkeypatch)

    async def calls():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:

            async def chat(token: str, stream: bool = False, delay: str = "0") -> int:
                response = await client.post(
                    "/api/v2/aibridge/openai/v1/chat/completions",
                    json={**CHAT, "stream": stream},
                    headers={"Authorization": f"Bearer {token}", "x-fake-delay": delay},
                )
                return response.status_code

            token = deployment.token.secret
            alone = [await chat(token), await chat(token, stream=True), await chat("bad")]
            together = await asyncio.gather(*(chat(token, delay="0.3") for _ in range(5)))
            return alone, together

    alone, together = run(calls)
    assert alone == [200, 200, 401] and together == [200] * 5
    assert worker.calls_in_flight == 0
    # Each lone answer yielded once (the refused call has no answer to hurry); of the five
    # at once, only a call that found itself alone could.
    assert counted[:2] == [1, 1]
    assert len(counted) < 2 + 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_calling_at_once_over_http_are_counted_and_only_a_lone_call_yields(
    deployment, other_developer, save_user_key, monkeypatch
):
    """The gateway served by uvicorn in this process (so its counter can be read), on
    PostgreSQL: 40 calls at once from a developer with a personal key and from someone on the
    central key, streamed and not, then one call alone. Every call gets its own person's
    credential, the count returns to zero, and only a call alone gave its CPU away."""
    from fakeprovider.server import serve_in_thread
    from providers.models import Provider
    from tokens.services import token_create

    from .conftest import CENTRAL

    counted = yields_counted(monkeypatch)
    provider = Provider.objects.get(type="openai")
    save_user_key(deployment.developer, provider, "sk-own-key-of-dev")
    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    tokens = {"dev": deployment.token.secret, "stranger": other.secret}
    expected_key = {"dev": "sk-own-key-of-dev", "stranger": CENTRAL["openai"]}

    async def calls(base: str) -> tuple[list[int], int]:
        async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=50)) as client:

            async def chat(name: str, i: int) -> int:
                response = await client.post(
                    f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                    json={**CHAT, "stream": i % 2 == 0},
                    headers={
                        "Authorization": f"Bearer {tokens[name]}",
                        "x-caller": f"{name}-{i}",
                        "x-fake-delay": "0.2",
                    },
                )
                return response.status_code

            together = await asyncio.gather(*(chat(name, i) for i in range(20) for name in tokens))
            before_alone = len(counted)
            assert await chat("dev", 99) == 200
            return together, before_alone

    with serve_in_thread(application) as base:
        together, before_alone = asyncio.run(calls(base))

    assert together == [200] * 40
    assert worker.calls_in_flight == 0
    received = deployment.fake.calls("/chat/completions")
    assert len(received) == 41
    for request in received:
        name = request.headers["x-caller"].split("-")[0]
        assert request.headers["authorization"] == f"Bearer {expected_key[name]}"
    assert set(counted) <= {1}  # never while other calls were in flight
    assert len(counted) == before_alone + 1  # the lone call yielded once

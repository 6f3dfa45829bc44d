"""The worker gives its CPU away after an answer only when that call was its only one: a
lone caller waiting on this CPU gets its answer sooner, and under load no call pays for it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway import app as gateway_app
from gateway.app import Call, application

from .conftest import run

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}


def yields_counted(monkeypatch) -> list[int]:
    counted: list[int] = []
    monkeypatch.setattr(gateway_app, "_sched_yield", lambda: counted.append(Call.in_flight))
    return counted


def test_the_cpu_is_given_away_only_by_a_worker_with_one_call_in_flight(monkeypatch):
    counted = yields_counted(monkeypatch)
    for in_flight in (1, 2, 16):
        monkeypatch.setattr(Call, "in_flight", in_flight)
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
    assert Call.in_flight == 0
    # Each lone answer yielded once (the refused call has no answer to hurry); of the five
    # at once, only a call that found itself alone could.
    assert counted[:2] == [1, 1]
    assert len(counted) < 2 + 5

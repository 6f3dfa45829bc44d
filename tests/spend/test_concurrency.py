"""Budgets and rate limits hold exactly across processes, with their counters in PostgreSQL
or in Redis: two servers of two workers each, eight callers at once, streaming and not, and
exactly as many calls succeed as the budget pays or the limit allows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from models_catalog.models import ModelConfig
from spend.models import NANO, Budget, BudgetCounter, BudgetHold, Scope, Unit
from spend.services import limit_set
from tests.gateway.conftest import wait_for_usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["postgres", "redis"])
def counters_in(request, settings) -> dict[str, str]:
    """Where the servers keep the counters: the database, or Redis (REDIS_URL); the
    environment the servers get."""
    if request.param == "postgres":
        return {}
    from tests.redis_server import machine_redis_url

    settings.REDIS_URL = machine_redis_url()
    return {"REDIS_URL": settings.REDIS_URL}


def counter(budget: Budget, env: dict[str, str]) -> tuple[int, int]:
    """(spent, reserved) of the budget's current counter, where the servers keep it."""
    if env:
        from spend.redis_counters import counters_now

        spent, reserved, _ = counters_now([budget], datetime.now(UTC)).get(budget.pk, (0, 0, 0))
        return spent, reserved
    found = BudgetCounter.objects.filter(budget_id=budget.pk).order_by("-period_start").first()
    assert found is not None
    return found.spent_nano, found.reserved_nano


def no_holds_left(env: dict[str, str]) -> bool:
    if env:
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
        names = [str(name) for key in client.keys("llmcp:*") for name in client.hkeys(key)]
        return not [name for name in names if name.startswith("h:")]
    return not BudgetHold.objects.exists()


CALLERS = 8
AFFORDABLE = 24
# Each call asks for at most 4 output tokens and the fake provider writes 4: with output at
# $2,500 per 1M and input free, its hold is its cost, $0.01, and the budget pays 24 exactly.
OUTPUT_TOKENS = 4
CHAT = "/api/v2/aibridge/openai/v1/chat/completions"


def test_a_hard_budget_pays_for_exactly_the_calls_it_allows_across_processes(
    deployment, django_db_blocker, counters_in
):
    from tests.servers import served_app

    ModelConfig.objects.filter(identifier="fake-gpt").update(
        input_price=0, output_price=2500, cache_read_price=0, cache_write_price=0
    )
    cost = Decimal(2500) * OUTPUT_TOKENS / 1_000_000
    budget = Budget.objects.create(
        scope=Scope.EVERYONE, limit_usd=cost * AFFORDABLE, period="month", hard=True
    )
    secret = deployment.token.secret

    async def caller(client: httpx.AsyncClient, base: str, n: int) -> list[int]:
        """Calls until the budget refuses one: what each call answered."""
        statuses: list[int] = []
        while not statuses or statuses[-1] == 200:
            body = {
                "model": "fake-gpt",
                "messages": [{"role": "user", "content": f"caller {n}"}],
                "max_completion_tokens": OUTPUT_TOKENS,
                "stream": len(statuses) % 2 == n % 2,
            }
            headers = {"Authorization": f"Bearer {secret}", "x-fake-chunks": str(OUTPUT_TOKENS)}
            answer = await client.post(base + CHAT, json=body, headers=headers)
            await answer.aread()
            statuses.append(answer.status_code)
        return statuses

    async def everyone(bases: list[str]) -> list[list[int]]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(caller(client, bases[n % 2], n) for n in range(CALLERS)))

    with django_db_blocker.unblock(), contextlib.ExitStack() as servers:
        bases = [servers.enter_context(served_app(workers=2, **counters_in)) for _ in range(2)]
        results = asyncio.run(everyone(bases))

    statuses = [status for one in results for status in one]
    assert statuses.count(200) == AFFORDABLE
    assert statuses.count(429) == CALLERS  # each caller's last call, and nothing else
    rows = wait_for_usage(AFFORDABLE + CALLERS)
    assert [row.cost_usd for row in rows if row.status == 200] == [cost] * AFFORDABLE
    assert counter(budget, counters_in) == (int(cost * AFFORDABLE * NANO), 0)
    assert no_holds_left(counters_in)


def _with_a_minute_to_spare() -> None:
    """Wait for the next calendar minute when this one has too little left for the test:
    a per-minute limit starts afresh with it."""
    left = 60 - datetime.now(UTC).second
    if left < 20:
        time.sleep(left + 0.1)


def test_a_requests_per_minute_limit_allows_exactly_its_calls_across_processes(
    deployment, django_db_blocker, counters_in
):
    from tests.servers import served_app

    _with_a_minute_to_spare()
    limit = limit_set(scope=Scope.EVERYONE, unit=Unit.REQUESTS, limit=AFFORDABLE, actor=None)
    secret = deployment.token.secret

    async def caller(client: httpx.AsyncClient, base: str, n: int) -> list[int]:
        statuses: list[int] = []
        while not statuses or statuses[-1] == 200:
            body = {
                "model": "fake-gpt",
                "messages": [{"role": "user", "content": f"caller {n}"}],
                "stream": len(statuses) % 2 == n % 2,
            }
            answer = await client.post(
                base + CHAT, json=body, headers={"Authorization": f"Bearer {secret}"}
            )
            await answer.aread()
            statuses.append(answer.status_code)
        return statuses

    async def everyone(bases: list[str]) -> list[list[int]]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(caller(client, bases[n % 2], n) for n in range(CALLERS)))

    with django_db_blocker.unblock(), contextlib.ExitStack() as servers:
        bases = [servers.enter_context(served_app(workers=2, **counters_in)) for _ in range(2)]
        results = asyncio.run(everyone(bases))

    statuses = [status for one in results for status in one]
    assert statuses.count(200) == AFFORDABLE  # not 2N, nor N per server
    assert statuses.count(429) == CALLERS
    rows = wait_for_usage(AFFORDABLE + CALLERS)
    assert [row.error_kind for row in rows].count("rate_limited") == CALLERS
    assert counter(limit, counters_in) == (AFFORDABLE, 0)


def test_a_cap_on_calls_at_once_holds_across_processes(deployment, django_db_blocker, counters_in):
    """Eight callers, each retrying what was refused until it has made four calls, on two
    servers of two workers each: the provider never has more than three calls at once."""
    from tests.servers import served_app

    cap, each = 3, 4
    limit = limit_set(scope=Scope.EVERYONE, unit=Unit.CALLS, limit=cap, actor=None)
    secret = deployment.token.secret
    deployment.fake.clear()

    async def caller(client: httpx.AsyncClient, base: str, n: int) -> int:
        refused = made = 0
        while made < each:
            body = {
                "model": "fake-gpt",
                "messages": [{"role": "user", "content": f"caller {n}"}],
                "stream": made % 2 == n % 2,
            }
            headers = {"Authorization": f"Bearer {secret}", "x-fake-delay": "0.15"}
            answer = await client.post(base + CHAT, json=body, headers=headers)
            await answer.aread()
            if answer.status_code == 429:
                assert answer.headers["retry-after"] == "1"
                refused += 1
                await asyncio.sleep(0.05)
                continue
            assert answer.status_code == 200
            made += 1
        return refused

    async def everyone(bases: list[str]) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(caller(client, bases[n % 2], n) for n in range(CALLERS)))

    with django_db_blocker.unblock(), contextlib.ExitStack() as servers:
        bases = [servers.enter_context(served_app(workers=2, **counters_in)) for _ in range(2)]
        refused = sum(asyncio.run(everyone(bases)))

    assert deployment.fake.most_in_flight == cap
    assert refused > 0
    wait_for_usage(CALLERS * each + refused)
    assert counter(limit, counters_in) == (0, 0)
    assert no_holds_left(counters_in)

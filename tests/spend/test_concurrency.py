"""Budgets and rate limits hold exactly across processes, with their counters in PostgreSQL
or in Redis: two servers of two workers each, eight callers at once, streaming and not, and
exactly as many calls succeed as the budget pays or the limit allows."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from models_catalog.models import ModelConfig
from spend.models import NANO, Budget, BudgetCounter, BudgetHold, Scope, Unit
from spend.services import limit_set
from tests.gateway.conftest import wait_for_usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


# Each test its own servers: shared by the module's tests, a server's late work from one
# test (rows, settlements) met the next test's calls once in CI.
@pytest.fixture(params=["postgres", "redis"])
def servers(
    request, django_db_setup, django_db_blocker
) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Two servers of two workers each, keeping the counters in the database or in Redis
    (REDIS_URL): the environment they got, and their addresses."""
    from tests.servers import served_app

    env = {}
    if request.param == "redis":
        from tests.redis_server import machine_redis_url

        env = {"REDIS_URL": machine_redis_url()}
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        yield env, [stack.enter_context(served_app(2, (), **env)) for _ in range(2)]


@pytest.fixture
def counters_in(servers, settings) -> dict[str, str]:
    """Where the servers keep the counters (emptied for the test); this process reads them
    there too."""
    env, _ = servers
    if env:
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        settings.REDIS_URL = env["REDIS_URL"]
    return env


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
AFFORDABLE = 16
# Each call asks for at most 4 output tokens and the fake provider writes 4: with output at
# $2,500 per 1M and input free, its hold is its cost, $0.01, and the budget pays 16 exactly.
OUTPUT_TOKENS = 4
CHAT = "/api/v2/aibridge/openai/v1/chat/completions"


def test_a_hard_budget_pays_for_exactly_the_calls_it_allows_across_processes(
    deployment, servers, counters_in
):
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

    results = asyncio.run(everyone(servers[1]))

    statuses = [status for one in results for status in one]
    assert statuses.count(200) == AFFORDABLE
    assert statuses.count(429) == CALLERS  # each caller's last call, and nothing else
    rows = wait_for_usage(AFFORDABLE + CALLERS)
    assert [row.cost_usd for row in rows if row.status == 200] == [cost] * AFFORDABLE
    assert counter(budget, counters_in) == (int(cost * AFFORDABLE * NANO), 0)
    assert no_holds_left(counters_in)


def test_a_requests_per_minute_limit_allows_exactly_its_calls_across_processes(
    deployment, servers, counters_in
):
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

    results = asyncio.run(everyone(servers[1]))

    statuses = [status for one in results for status in one]
    assert statuses.count(429) == CALLERS
    rows = wait_for_usage(len(statuses))
    # A call counts in the minute its row is dated, so the test may cross a minute's end:
    # no minute lets more than N through (not 2N, nor N per server), and a minute that
    # refused a call had let exactly N through.
    allowed = Counter(row.created_at.replace(second=0, microsecond=0) for row in rows
                      if row.status == 200)  # fmt: skip
    refused = {row.created_at.replace(second=0, microsecond=0) for row in rows
               if row.error_kind == "rate_limited"}  # fmt: skip
    assert len(refused) >= 1 and max(allowed.values()) <= AFFORDABLE
    assert [allowed[minute] for minute in refused] == [AFFORDABLE] * len(refused)
    if len(allowed) == 1:
        assert counter(limit, counters_in) == (AFFORDABLE, 0)


def test_a_cap_on_calls_at_once_holds_across_processes(deployment, servers, counters_in):
    """Eight callers, each retrying what was refused until it has made three calls, on two
    servers of two workers each: the provider never has more than three calls at once."""
    cap, each = 3, 3
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

    refused = sum(asyncio.run(everyone(servers[1])))

    assert deployment.fake.most_in_flight == cap
    assert refused > 0
    wait_for_usage(CALLERS * each + refused)
    assert counter(limit, counters_in) == (0, 0)
    assert no_holds_left(counters_in)

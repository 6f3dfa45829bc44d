"""Budgets and rate limits with their counters in Redis (REDIS_URL): the same refusals and
settling as in the database; a counter Redis lost starts from the usage rows; and while
Redis cannot be reached, budgets fail closed and rate limits open (as set), logged once per
interval with the calls that met it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from spend import redis_counters
from spend.models import NANO, Budget, Period, RateLimit, Scope, Unit
from spend.services import limit_set, standings
from tests.redis_server import machine_redis_url, private_redis
from tests.spend.test_gateway import call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_url(settings) -> str:
    settings.REDIS_URL = machine_redis_url()
    redis_counters._clients.clear()
    return settings.REDIS_URL


def budget(limit: str, user, hard: bool = True) -> Budget:
    return Budget.objects.create(
        scope=Scope.PERSON, user=user, limit_usd=Decimal(limit), period=Period.MONTH, hard=hard
    )


def spent(b: Budget) -> tuple[int, int, int]:
    return redis_counters.counters_now([b], datetime.now(UTC)).get(b.pk, (0, 0, 0))


def test_a_hard_budget_counts_in_redis_and_refuses_what_would_pass_it(redis_url, deployment):
    from spend.models import BudgetCounter

    b = budget("100", deployment.developer)
    assert call(deployment, "openai").status_code == 200
    assert call(deployment, "anthropic", stream=True).status_code == 200
    cost = sum(row.cost_usd for row in deployment.usage())
    assert spent(b) == (int(cost * NANO), 0, 0)
    assert not BudgetCounter.objects.exists()  # nothing in the database
    b.limit_usd = Decimal("0.01")
    b.save()
    refused = call(deployment, "openai")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    standing = standings([b])[0]
    assert standing.spent == cost.quantize(Decimal("0.000001"))  # the page reads Redis


def test_a_rate_limit_counts_in_redis(redis_url, deployment):
    limit = limit_set(
        scope=Scope.PERSON, user=deployment.developer, unit=Unit.REQUESTS, limit=2, actor=None
    )
    assert [call(deployment, "google").status_code for _ in range(3)] == [200, 200, 429]
    assert spent(limit) == (2, 0, 0)
    assert standings([RateLimit.objects.get()])[0].used_words == "2 of 2 requests this minute"


def test_a_counter_redis_lost_starts_from_the_usage_rows(redis_url, deployment):
    """Redis keeps nothing on disk: after a restart a spend budget starts from what the
    period's usage rows say was spent, not from zero."""
    import redis

    b = budget("100", deployment.developer)
    for _ in range(2):
        assert call(deployment, "openai").status_code == 200
    before = spent(b)
    assert before[0] > 0
    redis.Redis.from_url(redis_url).flushdb()  # as a restart without persistence
    assert call(deployment, "openai").status_code == 200
    cost = sum(row.cost_usd for row in deployment.usage())
    assert spent(b)[0] == int(cost * NANO)


def test_while_redis_is_down_budgets_fail_closed_rate_limits_open(
    settings, deployment, caplog, other_developer
):
    from gateway import redis_counters as gateway_counters

    with private_redis() as (url, server):
        settings.REDIS_URL = url
        budget("100", deployment.developer)
        assert call(deployment, "openai").status_code == 200
        server.kill()
        server.wait()
        caplog.set_level(logging.WARNING, logger="gateway.redis_counters")
        answers = [call(deployment, "openai") for _ in range(3)]
    assert [a.status_code for a in answers] == [503] * 3
    assert answers[0].json()["error"]["code"] == "database_unavailable"
    lines = [r.getMessage() for r in caplog.records if "Redis (REDIS_URL)" in r.getMessage()]
    assert len(lines) == 1  # once per interval, not once per call
    assert "refused, 503" in lines[0]
    assert gateway_counters._outage.total >= 3

    Budget.objects.all().delete()
    limit_set(scope=Scope.EVERYONE, unit=Unit.REQUESTS, limit=1, actor=None)
    assert [call(deployment, "openai").status_code for _ in range(2)] == [200, 200]  # open

    settings.BUDGETS_WHEN_REDIS_DOWN = "open"
    budget("0.01", deployment.developer)
    assert call(deployment, "openai").status_code == 200  # uncounted, as set
    settings.RATE_LIMITS_WHEN_REDIS_DOWN = "closed"
    assert call(deployment, "openai").status_code == 503


def test_the_budgets_page_works_while_redis_is_down(settings, staff_client, developer):
    with private_redis() as (url, server):
        settings.REDIS_URL = url
        redis_counters._clients.clear()
        budget("20", developer)
        server.kill()
        server.wait()
        page = staff_client.get("/admin/budgets/")
    assert page.status_code == 200 and "$0.00 spent" in page.content.decode()


def test_a_budget_far_from_its_limit_leases_in_redis_and_writes_each_row_once(
    redis_url, deployment
):
    """A billion-dollar budget and rate limits leave room for leases of 10^16 nano-USD, past
    what a Lua number prints as a whole number: every amount still reaches Redis as one,
    and every call has one usage row."""
    b = budget("1000000000", deployment.developer)
    for unit, limit in ((Unit.REQUESTS, 10**9), (Unit.TOKENS, 10**12), (Unit.CALLS, 10**6)):
        limit_set(scope=Scope.PERSON, user=deployment.developer, unit=unit, limit=limit, actor=None)
    for kind in ("openai", "anthropic", "google", "openai"):
        assert call(deployment, kind).status_code == 200
    rows = list(deployment.usage())
    assert len(rows) == 4
    spent_nano, held, _ = spent(b)
    assert spent_nano == int(sum(row.cost_usd for row in rows) * NANO)
    assert held == 0  # each call's process (event loop) gave its lease back as it closed


_examples = iter(range(1, 10**9))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["start", "finish", "give back"]),
            st.integers(min_value=0, max_value=2),  # which process
            st.integers(min_value=1, max_value=400),  # cents
            st.integers(min_value=0, max_value=100),  # what a call cost, % of its hold
        ),
        max_size=30,
    )
)
@examples(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_interleaving_of_processes_passes_a_hard_budget_in_redis(redis_url, steps):
    """As the database's property test: three processes start calls (with what their leases
    lend), finish them and give leases back, in any order, through the Lua scripts. A call is
    refused exactly when the room and the process's lease cannot cover it; spent + holds
    never pass the limit; the counter's holds are the processes' holds."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    reserve = client.register_script(redis_counters.RESERVE)
    settle = client.register_script(redis_counters.SETTLE)
    cap, cent = 10 * NANO, NANO // 100
    key = f"{redis_counters.PREFIX}{next(_examples)}:0"
    now = datetime.now(UTC).timestamp()
    leases = {p: 0 for p in range(3)}
    running: dict[int, list[int]] = {p: [] for p in range(3)}
    for action, process, cents, share in steps:
        holder = str(process)
        if action == "start":
            amount, lent = cents * cent, leases[process]
            spent_now = int(client.hget(key, "spent") or 0)
            room = cap - spent_now - int(client.hget(key, "reserved") or 0)
            answer = reserve(
                keys=[key], args=[holder, now, now + 7200, cap, 1, amount, lent, 0, 3600]
            )
            granted = int(answer[0])  # a whole number as text; -1: refused
            assert (granted >= 0) == (room >= max(amount - lent, 0))
            if granted >= 0:
                leases[process] = lent + granted - amount
                running[process].append(amount)
        elif action == "finish" and running[process]:
            amount = running[process].pop(cents % len(running[process]))
            cost = amount * share // 100
            settle(keys=[key], args=[holder, now, cost, cost, 0, 0])
            leases[process] += amount - cost
        elif action == "give back" and leases[process]:
            settle(keys=[key], args=[holder, now, 0, leases[process], 0, 0])
            leases[process] = 0
        fields = {str(name): str(value) for name, value in client.hgetall(key).items()}
        held = {int(name[2:]): int(v) for name, v in fields.items() if name.startswith("h:")}
        expected = {p: leases[p] + sum(running[p]) for p in range(3) if leases[p] or running[p]}
        assert held == expected
        assert int(fields.get("reserved", 0)) == sum(held.values())
        assert int(fields.get("spent", 0)) + int(fields.get("reserved", 0)) <= cap

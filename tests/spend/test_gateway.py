"""Budgets on the gateway: a call that would pass a hard budget is refused in the caller's
format before it reaches the provider; every other call holds its worst case and settles to
its cost with its usage row."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway import app as gateway_app
from gateway.app import application
from spend.models import NANO, Budget, BudgetCounter, BudgetHold, Period, Scope
from tests.gateway.conftest import plant_upstream, run

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v2/aibridge"
# (path, body, the header the format's SDK sends its key in); no maximum output asked: the
# call holds its model's context (100,000 tokens) of output at $15 per 1M, about $1.50.
CALLS: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai": (
        "/openai/v1/chat/completions",
        {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        "authorization",
    ),
    "anthropic": (
        "/anthropic/v1/messages",
        {
            "model": "claude-fake",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": "hi"}],
        },
        "x-api-key",
    ),
    "google": (
        "/google/v1beta/models/gemini-fake:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        "x-goog-api-key",
    ),
}


def call(deployment, kind: str = "openai", headers: dict[str, str] | None = None, **body: Any):
    path, default, key_header = CALLS[kind]
    secret = deployment.token.secret
    auth = {key_header: f"Bearer {secret}" if key_header == "authorization" else secret}

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                BASE + path, headers={**auth, **(headers or {})}, json={**default, **body}
            )

    return run(main)


def budget(limit: str, **fields: Any) -> Budget:
    fields.setdefault("scope", Scope.PERSON)
    if fields["scope"] == Scope.PERSON:
        fields.setdefault("user", fields.pop("person"))
    return Budget.objects.create(limit_usd=Decimal(limit), **fields)


def counter(b: Budget) -> BudgetCounter:
    return BudgetCounter.objects.get(budget=b)


@pytest.mark.parametrize("kind", CALLS)
def test_a_call_that_would_pass_a_hard_budget_is_refused_in_the_callers_format(deployment, kind):
    b = budget("0.01", person=deployment.developer)
    answer = call(deployment, kind)
    assert answer.status_code == 429
    resets = Period.MONTH.end(datetime.now(UTC))
    message = (
        f"Monthly budget of $0.01 for {deployment.developer.username} reached; "
        f"resets {resets.day} {resets:%b} 00:00 UTC."
    )
    error = answer.json()["error"]
    assert error["message"] == message
    assert {
        "openai": error.get("code"),
        "anthropic": error.get("type"),
        "google": error.get("status"),
    }[kind] == {
        "openai": "budget_exceeded",
        "anthropic": "rate_limit_error",
        "google": "RESOURCE_EXHAUSTED",
    }[kind]
    assert int(answer.headers["retry-after"]) == pytest.approx(
        (resets - datetime.now(UTC)).total_seconds(), abs=60
    )
    assert answer.headers["x-should-retry"] == "false"  # the official SDKs would retry a 429
    assert deployment.fake.calls() == []  # the provider never heard of it
    row = deployment.usage().get()
    assert (row.status, row.error_kind, row.cost_usd) == (429, "budget_exceeded", None)
    assert counter(b).reserved_nano == 0


def test_calls_hold_their_worst_case_and_settle_to_their_cost(deployment):
    b = budget("100", person=deployment.developer)
    for kind in CALLS:
        assert call(deployment, kind).status_code == 200
    assert call(deployment, "openai", stream=True).status_code == 200
    costs = [row.cost_usd for row in deployment.usage()]
    assert len(costs) == 4 and all(costs)
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano, c.unknown_nano) == (int(sum(costs) * NANO), 0, 0)
    assert not BudgetHold.objects.exists()


def test_the_hold_is_the_prompt_and_the_output_asked_for_at_the_dearest_prices(
    deployment, monkeypatch
):
    """A call that asks for at most 1,000 tokens of output fits a budget its model's whole
    context would not."""
    budget("0.50", person=deployment.developer)
    from django.db import connection

    from gateway.store import DjangoThreadStore, PostgresStore

    store_class = PostgresStore if connection.vendor == "postgresql" else DjangoThreadStore
    taken = []
    real = store_class.reserve

    async def spy(self, hold):
        taken.append(hold.amounts["usd"])
        return await real(self, hold)

    monkeypatch.setattr(store_class, "reserve", spy)
    assert call(deployment, "openai").status_code == 429
    assert call(deployment, "openai", max_completion_tokens=1000).status_code == 200
    assert call(deployment, "anthropic").status_code == 200  # max_tokens 1000
    body = json.dumps(CALLS["openai"][1] | {"max_completion_tokens": 1000}).encode()
    # prompt: a token per byte at the dearest input price ($4 a cache write); output at $15
    assert taken[1] == pytest.approx((len(body) * 4 + 1000 * 15) * 1000, rel=0.05)
    assert taken[0] == pytest.approx(100_000 * 15 * 1000, rel=0.01)


@pytest.mark.parametrize("scope", [Scope.EVERYONE, Scope.GROUP, Scope.PERSON, Scope.TOKEN])
def test_every_scope_refuses_the_call_that_would_pass_it(deployment, scope):
    from django.contrib.auth.models import Group

    target: dict[str, Any] = {}
    if scope == Scope.GROUP:
        target["group"] = Group.objects.create(name="platform")
        target["group"].user_set.add(deployment.developer)
    elif scope == Scope.PERSON:
        target["user"] = deployment.developer
    elif scope == Scope.TOKEN:
        target["token"] = deployment.token.token
    b = Budget.objects.create(scope=scope, limit_usd=Decimal("1.00"), period=Period.DAY, **target)
    answer = call(deployment)
    assert answer.status_code == 429
    assert answer.json()["error"]["message"].startswith(
        f"Daily budget of $1.00 for {b.target_label} reached"
    )


def test_a_soft_budget_lets_calls_through_and_audits_passing_it_once(deployment):
    from audit.models import AuditAction, AuditEntry

    b = budget("0.01", person=deployment.developer, hard=False)
    assert call(deployment, max_completion_tokens=10).status_code == 200
    BudgetCounter.objects.filter(budget=b).update(spent_nano=b.cap - 1)
    for _ in range(2):
        assert call(deployment, max_completion_tokens=10).status_code == 200
    assert counter(b).spent_nano > b.cap
    (entry,) = AuditEntry.objects.filter(action=AuditAction.PASSED)
    assert (entry.actor_label, entry.object_repr) == ("gateway", str(b))


def test_calls_with_a_persons_own_key_count_only_when_the_setting_says(deployment, settings):
    b = budget("100", person=deployment.developer)
    own = {
        "X-Coder-AI-Governance-Token": deployment.token.secret,
        "Authorization": "Bearer sk-own-1234567890",
    }

    async def own_key_call() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                BASE + CALLS["openai"][0], headers=own, json=CALLS["openai"][1]
            )

    assert run(own_key_call).status_code == 200
    assert not BudgetCounter.objects.filter(budget=b).exists()
    settings.BUDGETS_COUNT_PERSONAL_KEYS = True
    assert run(own_key_call).status_code == 200
    assert counter(b).spent_nano == int(deployment.usage().last().cost_usd * NANO) > 0


def test_an_unknown_cost_counts_as_the_calls_hold_and_is_shown_apart(deployment, monkeypatch):
    b = budget("100", person=deployment.developer)
    answer = {"id": "x", "object": "chat.completion", "choices": [], "model": "fake-gpt"}
    plant_upstream(
        monkeypatch, 200, [(b"content-type", b"application/json")], [json.dumps(answer).encode()]
    )
    assert call(deployment, max_completion_tokens=1000).status_code == 200
    assert deployment.usage().get().cost_usd is None
    c = counter(b)
    assert c.spent_nano == c.unknown_nano > 1000 * 15 * 1000  # its output at $15 per 1M, at least


def test_a_call_the_provider_refused_costs_nothing(deployment):
    b = budget("100", person=deployment.developer)
    assert call(deployment, headers={"x-fake-status": "400"}).status_code == 400
    assert (counter(b).spent_nano, counter(b).reserved_nano) == (0, 0)


def test_a_budget_starts_again_when_its_period_ends(deployment, monkeypatch):
    b = budget("2.00", person=deployment.developer, period=Period.DAY)
    frozen = [datetime(2026, 12, 7, 23, 59, 59, tzinfo=UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen[0]

    monkeypatch.setattr(gateway_app, "datetime", Clock)
    assert call(deployment).status_code == 200  # holds ~$1.50 of $2.00 until it settles
    BudgetCounter.objects.filter(budget=b).update(spent_nano=2 * NANO)  # the day is spent
    refused = call(deployment)
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].endswith("resets 8 Dec 00:00 UTC.")
    assert refused.headers["retry-after"] == "1"
    frozen[0] = datetime(2026, 12, 8, tzinfo=UTC)
    assert call(deployment).status_code == 200
    assert BudgetCounter.objects.filter(budget=b).count() == 2


def _count_reservations(monkeypatch) -> list[int]:
    from django.db import connection

    from gateway.store import DjangoThreadStore, PostgresStore

    store_class = PostgresStore if connection.vendor == "postgresql" else DjangoThreadStore
    taken: list[int] = []
    real = store_class.reserve

    async def spy(self, hold):
        taken.append(hold.amounts["usd"])
        return await real(self, hold)

    monkeypatch.setattr(store_class, "reserve", spy)
    return taken


def test_far_from_its_limit_a_budget_costs_calls_no_round_trip(deployment, monkeypatch):
    """The first call leases 1% of the limit for its process; the next ones take their
    worst case from the lease. What the process did not use goes back when it stops."""
    b = budget("10000", person=deployment.developer)
    reservations = _count_reservations(monkeypatch)

    async def five_calls() -> list[int]:
        path, body, _ = CALLS["openai"]
        headers = {"Authorization": f"Bearer {deployment.token.secret}"}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            answers = [await client.post(BASE + path, headers=headers, json=body) for _ in range(5)]
        return [answer.status_code for answer in answers]

    assert run(five_calls) == [200] * 5
    assert len(reservations) == 1
    c = counter(b)
    costs = sum(row.cost_usd for row in deployment.usage())
    assert (c.spent_nano, c.reserved_nano) == (int(costs * NANO), 0)  # the lease came back
    assert not BudgetHold.objects.exists()


def test_a_lease_left_unused_goes_back_within_seconds(deployment, monkeypatch):
    from gateway import budgets

    monkeypatch.setattr(budgets, "IDLE_SECONDS", 0.05)
    b = budget("10000", person=deployment.developer)

    async def call_then_wait() -> int:
        path, body, _ = CALLS["openai"]
        headers = {"Authorization": f"Bearer {deployment.token.secret}"}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            assert (await client.post(BASE + path, headers=headers, json=body)).status_code == 200
        await asyncio.sleep(0.5)  # idle: the lease goes back, the process still serving
        from asgiref.sync import sync_to_async

        return await sync_to_async(lambda: counter(b).reserved_nano)()  # type: ignore[no-any-return]

    assert run(call_then_wait) == 0


def test_a_lease_past_its_use_is_given_back_not_lent(deployment, monkeypatch, settings):
    """Half a hold's life after its last top-up a process stops using its lease (the hold
    may have expired): the next call gives it back and asks afresh."""
    from gateway import budgets

    b = budget("10000", person=deployment.developer)
    reservations = _count_reservations(monkeypatch)
    lent: list[dict[int, int]] = []
    real_reserve = budgets.Leases.lend

    def spy(self, budget_list, amounts, now):
        lent.append(real_reserve(self, budget_list, amounts, now))
        return lent[-1]

    monkeypatch.setattr(budgets.Leases, "lend", spy)
    clock = [1000.0]
    monkeypatch.setattr(budgets, "_clock", lambda: clock[0])

    async def two_calls_an_hour_apart() -> list[int]:
        path, body, _ = CALLS["openai"]
        headers = {"Authorization": f"Bearer {deployment.token.secret}"}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            first = await client.post(BASE + path, headers=headers, json=body)
            clock[0] += settings.BUDGETS_HOLD_SECONDS / 2 + 1
            second = await client.post(BASE + path, headers=headers, json=body)
        return [first.status_code, second.status_code]

    assert run(two_calls_an_hour_apart) == [200, 200]
    assert len(reservations) == 2 and lent == [{}, {}]  # the stale lease was not lent
    c = counter(b)
    assert c.reserved_nano == 0 and not BudgetHold.objects.exists()
    assert c.spent_nano == int(sum(row.cost_usd for row in deployment.usage()) * NANO)


def test_a_database_that_fails_a_top_up_refuses_the_call_closed(deployment, monkeypatch):
    """A budget fails closed: a 503 in the caller's format, the provider never called."""
    from django.db import connection

    from gateway.store import DjangoThreadStore, PostgresStore

    store_class = PostgresStore if connection.vendor == "postgresql" else DjangoThreadStore

    async def gone(self, hold):
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(store_class, "_reserve_once", gone)
    budget("100", person=deployment.developer)
    answer = call(deployment, "anthropic")
    assert answer.status_code == 503
    assert answer.json()["type"] == "error" and "database" in answer.json()["error"]["message"]
    assert deployment.fake.calls() == []

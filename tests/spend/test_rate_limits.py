"""Rate limits on the gateway: requests and tokens per minute, calls at once; a call over one
is refused in the caller's format (with the provider's own rate-limit headers where its SDK
reads them) before it reaches the provider, and says which limit and when it resets."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Group

from gateway.app import application
from spend import holds
from spend.models import ALWAYS, BudgetCounter, BudgetHold, RateLimit, Scope, Unit
from spend.services import limit_set
from tests.gateway.conftest import run
from tests.spend.test_gateway import BASE, CALLS, call
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db(transaction=True)


def rate_limit(unit: Unit, limit: int, **target: Any) -> RateLimit:
    scope = Scope.PERSON if "user" in target else Scope.GROUP if "group" in target else None
    scope = scope or (Scope.TOKEN if "token" in target else Scope.EVERYONE)
    return limit_set(scope=scope, unit=unit, limit=limit, actor=None, **target)


def used(limit: RateLimit) -> tuple[int, int]:
    """(spent, held) on the limit's current counter."""
    counter = BudgetCounter.objects.filter(budget_id=limit.pk).order_by("-period_start").first()
    return (counter.spent_nano, counter.reserved_nano) if counter else (0, 0)


@pytest.mark.parametrize("kind", CALLS)
def test_requests_past_a_per_minute_limit_are_refused_with_the_providers_headers(deployment, kind):
    limit = rate_limit(Unit.REQUESTS, 2, user=deployment.developer)
    answers = [call(deployment, kind) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    error = refused.json()["error"]
    assert error["message"].startswith(
        f"Rate limit of 2 requests per minute for {deployment.developer.username} reached; "
        "resets in "
    )
    assert {
        "openai": error.get("code"),
        "anthropic": error.get("type"),
        "google": error.get("status"),
    }[kind] == {
        "openai": "rate_limited",
        "anthropic": "rate_limit_error",
        "google": "RESOURCE_EXHAUSTED",
    }[kind]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert "x-should-retry" not in refused.headers  # the SDKs wait and retry, as they should
    if kind == "openai":
        assert refused.headers["x-ratelimit-limit-requests"] == "2"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.headers["x-ratelimit-reset-requests"] == f"{wait}s"
    if kind == "anthropic":
        assert refused.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
        reset = datetime.fromisoformat(refused.headers["anthropic-ratelimit-requests-reset"])
        assert reset.second == 0 and reset > datetime.now(UTC) - timedelta(seconds=1)
    assert len(deployment.fake.calls()) == 2  # the provider never heard of the third
    rows = list(deployment.usage())
    assert [(r.status, r.error_kind) for r in rows][-1] == (429, "rate_limited")
    assert used(limit) == (2, 0)
    assert not BudgetHold.objects.exists()


def test_a_new_minute_counts_anew_and_past_minutes_are_dropped(developer):
    limit = rate_limit(Unit.REQUESTS, 1, user=developer)
    minute = datetime(2026, 12, 7, 16, 5, 30, tzinfo=UTC)
    later = minute + timedelta(hours=1)
    asked = {"requests": 1}

    def take(now: datetime, holder: int = 1) -> Any:
        return holds.reserve(developer.pk, None, holder, asked, now, now + timedelta(hours=2))

    assert isinstance(take(minute), list)
    assert take(minute + timedelta(seconds=29), holder=2) == limit.pk  # the same minute
    assert isinstance(take(minute + timedelta(seconds=30)), list)  # 16:06: a new minute
    assert isinstance(take(later), list)
    starts = set(BudgetCounter.objects.values_list("period_start", flat=True))
    assert starts == {later.replace(second=0)}  # past minutes (and their holds) are gone


def test_tokens_per_minute_hold_the_worst_case_then_count_what_was_used(deployment):
    """A call holds its prompt (a token per byte at most) and the output it asks for; it
    settles to the tokens the provider reported."""
    limit = rate_limit(Unit.TOKENS, 5_000, user=deployment.developer)
    too_many = call(deployment, "anthropic", max_tokens=6_000)
    assert too_many.status_code == 429
    assert "5,000 tokens per minute" in too_many.json()["error"]["message"]
    assert call(deployment, "anthropic", max_tokens=1_000).status_code == 200
    row = deployment.usage().get(status=200)
    tokens = row.input_tokens + row.output_tokens + row.cache_read_tokens
    assert tokens > 0
    assert used(limit) == (tokens + row.cache_write_tokens, 0)


def test_calls_at_once_past_a_cap_are_refused_until_one_ends(deployment):
    limit = rate_limit(Unit.CALLS, 1, user=deployment.developer)
    path, body, _ = CALLS["openai"]
    headers = {"Authorization": f"Bearer {deployment.token.secret}"}

    async def two_at_once_then_one() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            slow = asyncio.create_task(
                client.post(BASE + path, headers={**headers, "x-fake-delay": "0.5"}, json=body)
            )
            await asyncio.sleep(0.2)
            second = await client.post(BASE + path, headers=headers, json=body)
            first = await slow
            await asyncio.sleep(0.3)  # its usage row (and the slot's release) is written
            third = await client.post(BASE + path, headers=headers, json=body)
        return [first, second, third]

    first, second, third = run(two_at_once_then_one)
    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]
    message = second.json()["error"]["message"]
    assert message == (
        f"Limit of 1 concurrent call for {deployment.developer.username} reached; try again "
        "when one of them ends."
    )
    assert second.headers["retry-after"] == "1"
    assert [r.error_kind for r in deployment.usage()].count("concurrency_limited") == 1
    counter = BudgetCounter.objects.get(budget_id=limit.pk)
    assert counter.period_start == ALWAYS
    assert (counter.spent_nano, counter.reserved_nano) == (0, 0)


def test_rate_limits_count_calls_with_a_personal_key_budgets_do_not(deployment, settings):
    from providers.models import Provider
    from spend.models import Budget
    from userkeys.services import user_key_save

    settings.BUDGETS_COUNT_PERSONAL_KEYS = False
    provider = Provider.objects.get(type="openai")
    user_key_save(
        user=deployment.developer, provider=provider, raw_key="sk-personal-123456", actor=None
    )
    budget = Budget.objects.create(
        scope=Scope.PERSON, user=deployment.developer, limit_usd="0.01", period="month"
    )
    limit = rate_limit(Unit.REQUESTS, 1, user=deployment.developer)
    assert call(deployment, "openai").status_code == 200  # the budget would refuse it
    assert call(deployment, "openai").status_code == 429
    assert used(limit) == (1, 0)
    assert not BudgetCounter.objects.filter(budget=budget, spent_nano__gt=0).exists()


def test_a_groups_limit_counts_its_members_calls_together(deployment, other_developer):
    group = Group.objects.create(name="platform")
    group.user_set.add(deployment.developer, other_developer)
    rate_limit(Unit.REQUESTS, 2, group=group)
    token = token_create(user=other_developer, name="other", lifetime=timedelta(days=1), actor=None)
    theirs = dataclasses.replace(deployment, token=token)
    assert call(deployment, "openai").status_code == 200
    assert call(theirs, "openai").status_code == 200
    answer = call(theirs, "openai")
    assert answer.status_code == 429
    assert "for group platform reached" in answer.json()["error"]["message"]


def test_a_tokens_limit_leaves_its_persons_other_tokens_alone(deployment):
    token = ApiToken.objects.get(user=deployment.developer)
    rate_limit(Unit.REQUESTS, 1, token=token)
    assert call(deployment, "openai").status_code == 200
    answer = call(deployment, "openai")
    assert answer.status_code == 429
    assert f"for token {token.name} reached" in answer.json()["error"]["message"]
    second = token_create(
        user=deployment.developer, name="second", lifetime=timedelta(days=1), actor=None
    )
    assert call(dataclasses.replace(deployment, token=second), "openai").status_code == 200

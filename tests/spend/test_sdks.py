"""Budgets as the official SDKs meet them: a stream under a budget is read to the end by the
SDK's helper and settles; a refusal is a rate-limit error the SDK does not retry, its
message naming the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from spend.models import NANO, Budget, BudgetCounter, Period, Scope
from tests.gateway.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "/api/v2/aibridge"


def test_the_sdks_stream_helpers_read_to_the_end_under_a_budget(gateway_server, deployment):
    from anthropic import Anthropic
    from openai import OpenAI

    budget = Budget.objects.create(
        scope=Scope.PERSON, user=deployment.developer, limit_usd=Decimal("100"), period=Period.DAY
    )
    secret = deployment.token.secret
    openai = OpenAI(api_key=secret, base_url=f"{gateway_server}{BASE}/openai/v1", max_retries=0)
    with openai.responses.stream(model="fake-gpt", input="under a budget") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == "You said: under a budget"
    anthropic = Anthropic(
        api_key=secret, base_url=f"{gateway_server}{BASE}/anthropic", max_retries=0
    )
    with anthropic.messages.stream(
        model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_text().rstrip(".") == "You said: hi"  # padded to 5 chunks
    rows = wait_for_usage(2)
    assert all(row.status == 200 and row.cost_usd for row in rows)
    counter = BudgetCounter.objects.get(budget=budget)
    assert counter.spent_nano == int(sum(row.cost_usd or 0 for row in rows) * NANO)


def test_a_refusal_is_a_rate_limit_error_the_sdks_do_not_retry(gateway_server, deployment):
    import anthropic
    import openai

    Budget.objects.create(
        scope=Scope.PERSON, user=deployment.developer, limit_usd=Decimal("0.01"), period=Period.DAY
    )
    secret = deployment.token.secret
    client = openai.OpenAI(api_key=secret, base_url=f"{gateway_server}{BASE}/openai/v1")
    with pytest.raises(openai.RateLimitError) as refused:  # default max_retries: 2
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert "Daily budget of $0.01 for dev reached; resets" in str(refused.value)
    other = anthropic.Anthropic(api_key=secret, base_url=f"{gateway_server}{BASE}/anthropic")
    with pytest.raises(anthropic.RateLimitError) as refused_too:
        other.messages.create(
            model="claude-fake", max_tokens=5000, messages=[{"role": "user", "content": "hi"}]
        )
    assert "Daily budget of $0.01" in str(refused_too.value)
    rows = wait_for_usage(2)
    assert [row.error_kind for row in rows] == ["budget_exceeded"] * 2  # no retries
    assert deployment.fake.calls() == []

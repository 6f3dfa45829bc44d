"""Budgets and rate limits as the official SDKs meet them: a stream under a budget is read to
the end by the SDK's helper and settles; a budget's refusal is a rate-limit error the SDK
does not retry, its message naming the budget; a rate limit's, one it waits out."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
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


def test_the_sdks_wait_out_a_rate_limit_as_its_headers_say(gateway_server, deployment):
    """A call over a cap on calls at once says to try again in a second: the OpenAI and
    Anthropic SDKs wait that long and retry, and the call goes through once a slot frees.
    Past their retries, the error names the limit."""
    import anthropic
    import openai

    from spend.models import Unit
    from spend.services import limit_set

    limit_set(scope=Scope.PERSON, user=deployment.developer, unit=Unit.CALLS, limit=1, actor=None)
    secret = deployment.token.secret
    base = f"{gateway_server}{BASE}"
    slow = {"x-fake-delay": "1.2"}
    waiter = openai.OpenAI(api_key=secret, base_url=f"{base}/openai/v1", max_retries=3)
    other = anthropic.Anthropic(api_key=secret, base_url=f"{base}/anthropic", max_retries=3)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(
            lambda: waiter.chat.completions.create(
                model="fake-gpt",
                messages=[{"role": "user", "content": "first"}],
                extra_headers=slow,
            )
        )
        time.sleep(0.4)
        second = other.messages.create(
            model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "second"}]
        )
        assert first.result().choices[0].message.content == "You said: first"
    assert second.content[0].text.rstrip(".") == "You said: second"  # type: ignore[union-attr]
    rows = wait_for_usage(3)
    kinds = [row.error_kind for row in rows]
    assert kinds.count("concurrency_limited") >= 1 and kinds.count("") == 2

    impatient = openai.OpenAI(api_key=secret, base_url=f"{base}/openai/v1", max_retries=0)
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(
            lambda: waiter.chat.completions.create(
                model="fake-gpt",
                messages=[{"role": "user", "content": "busy"}],
                extra_headers=slow,
            )
        )
        time.sleep(0.4)
        with pytest.raises(openai.RateLimitError) as refused:
            impatient.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "now"}]
            )
        busy.result()
    assert "Limit of 1 concurrent call for dev reached" in str(refused.value)

"""An admin changing a model's prices while people call it: each call is priced wholly at
the prices before the change or wholly at those after, never a mix of the two."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.urls import reverse

from models_catalog.models import ModelConfig
from tests.servers import served_app, signed_in_client
from tokens.services import token_create

from .conftest import wait_for_usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE = "/api/v2/aibridge/anthropic/v1/messages"
# Per 1M tokens (and per 1,000 searches). The second adds long-context prices (every call
# here is over 5 tokens), doubles the one-hour cache price and raises the search price, so a
# call priced with part of each shows.
SHORT = {"cache_write_1h_price": "6", "web_search_price": "10"}
LONG = {
    "cache_write_1h_price": "12",
    "web_search_price": "25",
    "long_context_threshold": "5",
    "long_context_input_price": "6",
    "long_context_output_price": "22.5",
}


def expected(row, version: dict[str, str]) -> Decimal:
    """The row's cost at the base prices (3 in, 15 out, 0.3 read) and ``version``'s."""
    hour = Decimal(version["cache_write_1h_price"])
    cache = row.cache_read_tokens * Decimal("0.3") + row.cache_write_tokens * hour
    if "long_context_threshold" in version:
        total = row.input_tokens * 6 + row.output_tokens * Decimal("22.5") + cache * 2
    else:
        total = row.input_tokens * 3 + row.output_tokens * 15 + cache
    total += row.web_searches * Decimal(version["web_search_price"]) * 1000
    return (total / 1_000_000).quantize(Decimal("0.000000001"))


def test_calls_during_a_price_change_are_priced_at_one_version_or_the_other(
    deployment, admin_user, other_developer, django_db_blocker
):
    """Two people call a Claude model (caching for an hour, searching the web) through two
    worker processes while an admin switches its prices back and forth on the Models tab.
    The prices come with the token in one query, so every row is priced at one version; and
    the call after the last change is priced at it."""
    model = ModelConfig.objects.get(provider__type="anthropic")
    edit = reverse("models:edit", args=[model.pk])
    form = {
        "provider": str(model.provider_id),
        "identifier": model.identifier,
        "display_name": model.display_name,
        "context_limit": "100000",
        "compression_threshold": "70",
        "enabled": "on",
        "input_price": "3",
        "output_price": "15",
        "cache_read_price": "0.3",
        "cache_write_price": "4",
    }
    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    tokens = [deployment.token.secret, other.secret]
    body = {
        "model": model.identifier,
        "max_tokens": 64,
        "system": [
            {"type": "text", "text": "rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [{"role": "user", "content": "hello"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }

    async def call_all(base: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> int:
                response = await client.post(
                    base + BASE,
                    json={**body, "stream": i % 2 == 1},
                    headers={"x-api-key": tokens[i % 2], "anthropic-version": "2023-06-01"},
                )
                return response.status_code

            statuses: list[int] = []
            # Waves, so that calls meet the admin's changes all along: at least 8, and on
            # until the admin has saved four changes (two windows at each version). A fixed
            # number of waves could all end before the first save (seen in CI).
            waves = 0
            while waves < 8 or (len(saved) < 4 and waves < 2_000):
                statuses += await asyncio.gather(*(one(i) for i in range(8)))
                waves += 1
            return statuses

    saved: list[int] = []

    def switch_prices(base: str, done: threading.Event) -> None:
        with signed_in_client(base, admin_user) as admin:
            version = 0
            while not done.is_set() or version < 4:
                version += 1
                data = {**form, **(LONG if version % 2 else SHORT)}
                saved.append(admin.post(edit, data=data).status_code)

    with django_db_blocker.unblock(), served_app(workers=2) as base:
        done = threading.Event()
        admin = threading.Thread(target=switch_prices, args=(base, done))
        admin.start()
        statuses = asyncio.run(call_all(base))
        done.set()
        admin.join(timeout=60)
        final = LONG if len(saved) % 2 else SHORT
        # Named by its client: two workers write their rows in their own batches, so the
        # last call's row need not be the last row written.
        last = httpx.post(
            base + BASE,
            json=body,
            headers={"x-api-key": tokens[0], "user-agent": "after-the-last-change"},
            timeout=30,
        ).status_code

    assert statuses == [200] * len(statuses) and len(statuses) >= 64 and last == 200
    assert saved and set(saved) == {302}, saved  # each change saved, none refused
    rows = wait_for_usage(len(statuses) + 1)
    (after,) = [row for row in rows if row.user_agent == "after-the-last-change"]
    seen: set[str] = set()
    for row in rows:
        if row is after:
            continue
        assert row.cache_write_tokens > 0 and row.web_searches > 0  # every price counts
        versions = {
            name
            for name, version in (("short", SHORT), ("long", LONG))
            if row.cost_usd == expected(row, version)
        }
        assert len(versions) == 1, (row.cost_usd, expected(row, SHORT), expected(row, LONG))
        seen |= versions
    assert seen == {"short", "long"}  # the changes landed among the calls
    assert after.cost_usd == expected(after, final)  # the next call after a change

"""The Usage tab's charts in the browser: with calls, stacked by model, with nothing in the
chosen days, and at 390 px; no serious axe-core violation, nothing wider than the page."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.models import UsageRecord

from .accessibility import blocking_violations, horizontal_overflow
from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def usage(days_ago: int, provider: str, model: str, cost: str | None, failed: bool = False):
    UsageRecord.objects.create(
        created_at=datetime.now(UTC) - timedelta(days=days_ago),
        username="dev",
        provider_type=provider,
        model_identifier=model,
        endpoint="chat.completions",
        route="external",
        credential_source="central",
        status=503 if failed else 200,
        error_kind="upstream_error" if failed else "",
        latency_ms=120.0,
        input_tokens=0 if failed else 1200,
        output_tokens=0 if failed else 300,
        cost_usd=None if cost is None else Decimal(cost),
    )


def test_the_usage_charts_with_calls_empty_and_narrow(page, admin_user, screenshot):
    for day in range(12):
        usage(day, "anthropic", "claude-opus-4-6", f"{2 + day % 4}.40")
        usage(day, "openai", "gpt-5", f"{1 + day % 3}.10")
        if day % 3 == 0:
            usage(day, "google", "gemini-2.5-pro", None, failed=True)
    sign_in(page, "alice")
    page.goto("/admin/usage/")
    page.get_by_text("Cost per day, by provider").wait_for()
    assert page.locator("svg.chart").count() == 2
    assert page.locator("svg.chart rect").count() > 30
    assert blocking_violations(page) == []
    screenshot("1-charts")
    page.get_by_role("link", name="model", exact=True).click()
    page.get_by_text("Cost per day, by model").wait_for()
    page.locator("details summary").first.click()
    numbers = page.locator("details").first.inner_text().lower()
    assert "claude-opus-4-6 (anthropic)" in numbers and "gemini" not in numbers  # cost 0
    screenshot("2-by-model-with-numbers")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/admin/usage/")
    assert horizontal_overflow(page) <= 0
    screenshot("3-at-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/usage/?since=2020-01-01&until=2020-01-31")
    assert page.locator("svg.chart").count() == 0
    screenshot("4-no-calls")

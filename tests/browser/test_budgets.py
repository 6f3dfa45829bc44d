import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from spend.models import Budget

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_sets_a_group_budget_changes_it_and_removes_it(
    browser, live_server, admin_user, developer, screenshot
):
    Group.objects.create(name="platform")
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/admin/budgets/")
    assert "No budgets yet" in page.content()
    form = page.locator("#budget-list form[data-budget-form]")
    assert form.get_by_label("Person").is_visible()
    assert not form.get_by_label("Group").is_visible()  # only the choice "For" needs
    form.get_by_label("For", exact=True).select_option("group")
    assert form.get_by_label("Group").is_visible() and not form.get_by_label("Person").is_visible()
    form.get_by_role("button", name="Add budget").click()
    # The errors by the field (the limit is missing too).
    page.get_by_text("Choose the group this budget is for.", exact=True).wait_for()
    screenshot("1-errors-by-the-field", of=page)

    form = page.locator("#budget-list form[data-budget-form]")
    assert form.get_by_label("Group").is_visible()  # still, after the partial came back
    form.get_by_label("Group").select_option(label="platform")
    form.get_by_label("Limit (USD)").fill("1250.5")
    form.get_by_role("button", name="Add budget").click()
    row = page.locator("table.budgets tr", has_text="platform")
    row.wait_for()
    assert "$1,250.50" in row.inner_text() and "Hard" in row.inner_text()
    screenshot("2-listed", of=page)

    row.get_by_role("link", name="Edit").click()
    page.get_by_label("Limit (USD)").fill("2000")
    page.get_by_label("Period").select_option("week")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved: weekly budget of $2,000.00 for group platform.").wait_for()
    assert Budget.objects.get().limit_usd == Decimal("2000.00")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("table.budgets tr", has_text="platform").get_by_role(
        "button", name="Remove"
    ).click()
    page.get_by_text("No budgets yet").wait_for()
    screenshot("3-removed", of=page)
    assert not Budget.objects.exists()

    # The audit log has each change, its time in the form every date here has.
    page.goto("/admin/audit/")
    when = page.locator("table.audit time").first.inner_text()
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", when), when
    assert page.locator("table.audit tr", has_text="Removed").count() == 0  # "Deleted"
    assert page.locator("table.audit tr", has_text="Deleted").count() == 1
    context.close()


def test_an_admin_sets_a_rate_limit_changes_it_and_removes_it(
    browser, live_server, admin_user, developer, screenshot
):
    from spend.models import RateLimit

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/admin/budgets/")
    assert "No rate limits yet" in page.content()
    form = page.locator("#limit-list form[data-budget-form]")
    assert form.get_by_label("Person").is_visible() and not form.get_by_label("Group").is_visible()
    form.get_by_label("Person").select_option(label=developer.username)
    form.get_by_label("Limit on").select_option("calls")
    form.get_by_label("Limit", exact=True).fill("0")
    form.get_by_role("button", name="Add rate limit").click()
    page.get_by_text("Ensure this value is greater than or equal to 1.").wait_for()
    form = page.locator("#limit-list form[data-budget-form]")
    assert form.get_by_label("Limit on").input_value() == "calls"  # nothing typed is lost
    form.get_by_label("Limit", exact=True).fill("4")
    form.get_by_role("button", name="Add rate limit").click()
    row = page.locator("table.rate-limits tr", has_text=developer.username)
    row.wait_for()
    assert "4 concurrent calls" in row.inner_text() and "0 of 4 running" in row.inner_text()
    screenshot("4-rate-limit-listed", of=page)

    row.get_by_role("link", name="Edit").click()
    page.get_by_label("Limit", exact=True).fill("8")
    page.get_by_role("button", name="Save").click()
    page.get_by_text(f"Saved: 8 concurrent calls limit for {developer.username}.").wait_for()
    assert RateLimit.objects.get().limit_count == 8

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("table.rate-limits tr", has_text=developer.username).get_by_role(
        "button", name="Remove"
    ).click()
    page.get_by_text("No rate limits yet").wait_for()
    assert not RateLimit.objects.exists()
    context.close()

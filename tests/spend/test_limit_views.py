"""Admin -> Budgets & limits: rate limits added, edited and removed, audited, with what is
used now; and what a developer sees of theirs on Settings -> Usage."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from spend.models import ALWAYS, BudgetCounter, Period, RateLimit, Unit
from spend.services import limit_set

pytestmark = pytest.mark.django_db

LIST = reverse("budgets:list")
ADD = reverse("budgets:limit_add")


def test_the_tab_says_when_there_are_no_rate_limits(staff_client):
    page = staff_client.get(LIST).content.decode()
    assert "No rate limits yet" in page and "Add a rate limit" in page


def test_an_admin_adds_a_rate_limit_and_sees_what_is_used_this_minute(staff_client, developer):
    answer = staff_client.post(
        ADD, {"scope": "person", "user": developer.pk, "unit": "requests", "limit_count": "60"}
    )
    assert answer.status_code == 302 and answer["Location"].endswith("#rate-limits")
    limit = RateLimit.objects.get()
    assert (limit.scope, limit.user, limit.unit, limit.period, limit.limit_count, limit.hard) == (
        "person",
        developer,
        "requests",
        "minute",
        60,
        True,
    )
    entry = AuditEntry.objects.get(action=AuditAction.CREATE)
    assert entry.object_repr == f"60 requests per minute limit for {developer.username}"
    assert entry.changes == {"kind": [None, "Requests per minute"], "limit": [None, 60]}
    BudgetCounter.objects.create(
        budget=limit, period_start=Period.MINUTE.start(datetime.now(UTC)), spent_nano=45
    )
    page = staff_client.get(LIST).content.decode()
    assert "45 used of 60 this minute · 75%" in page
    assert "No budgets yet" in page  # a rate limit is not a budget


def test_the_cap_on_calls_at_once_shows_the_calls_running(staff_client):
    limit = limit_set(scope="everyone", unit=Unit.CALLS, limit=8, actor=None)
    BudgetCounter.objects.create(budget=limit, period_start=ALWAYS, reserved_nano=2)
    page = staff_client.get(LIST).content.decode()
    assert "8 concurrent calls" in page and "Whole deployment" in page
    assert "2 of 8 running" in page


def test_the_form_says_what_is_wrong_by_the_field(staff_client):
    answer = staff_client.post(ADD, {"scope": "group", "unit": "tokens", "limit_count": "0"})
    assert answer.status_code == 422
    form = answer.context["limit_form"]
    assert form.errors["group"] == ["Choose the group this limit is for."]
    assert "limit_count" in form.errors
    assert not RateLimit.objects.exists()


def test_a_second_limit_of_the_same_kind_for_a_scope_is_refused_by_the_field(staff_client):
    group = Group.objects.create(name="platform")
    fields = {"scope": "group", "group": group.pk, "unit": "calls", "limit_count": "4"}
    staff_client.post(ADD, fields)
    answer = staff_client.post(ADD, {**fields, "limit_count": "9"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert answer.context["limit_form"].errors["unit"] == [
        "This scope already has this kind of limit: edit it instead."
    ]
    assert 'id="limit-list"' in answer.content.decode()
    assert "<html" not in answer.content.decode()  # the partial, from the same template
    assert RateLimit.objects.get().limit_count == 4


def test_an_admin_edits_and_removes_a_rate_limit_both_audited(staff_client, developer):
    limit = limit_set(scope="person", user=developer, unit=Unit.TOKENS, limit=1000, actor=None)
    edit = reverse("budgets:limit_edit", args=[limit.pk])
    assert staff_client.get(edit).status_code == 200
    answer = staff_client.post(edit, {"unit": "requests", "limit_count": "2,000"})
    assert answer.status_code == 422  # "2,000" is not a number here
    staff_client.post(edit, {"limit_count": "2000"})
    limit.refresh_from_db()
    assert (limit.unit, limit.limit_count) == ("tokens", 2000)  # what it counts stays
    assert AuditEntry.objects.get(action=AuditAction.UPDATE).changes == {"limit": [1000, 2000]}
    answer = staff_client.post(
        reverse("budgets:limit_remove", args=[limit.pk]), HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200 and "No rate limits yet" in answer.content.decode()
    assert AuditEntry.objects.filter(action=AuditAction.DELETE).count() == 1
    assert staff_client.get(edit).status_code == 404


def test_a_budgets_address_does_not_edit_a_rate_limit(staff_client):
    limit = limit_set(scope="everyone", unit=Unit.REQUESTS, limit=10, actor=None)
    assert staff_client.get(reverse("budgets:edit", args=[limit.pk])).status_code == 404


def test_a_developer_sees_their_rate_limits_on_settings_usage(client, developer):
    limit_set(scope="person", user=developer, unit=Unit.REQUESTS, limit=30, actor=None)
    limit_set(scope="everyone", unit=Unit.CALLS, limit=50, actor=None)
    client.force_login(developer)
    page = client.get(reverse("usage:mine")).content.decode()
    assert "Your rate limits" in page
    assert f"30 requests per minute limit for {developer.username}" in page
    assert "50 concurrent calls limit for everyone" in page


def test_large_limits_are_shown_with_thousands_separators(staff_client):
    limit_set(scope="everyone", unit=Unit.TOKENS, limit=2_000_000, actor=None)
    page = staff_client.get(LIST).content.decode()
    assert "2,000,000 tokens per minute" in page and "0 used of 2,000,000 this minute" in page

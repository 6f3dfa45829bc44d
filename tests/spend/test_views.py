from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from spend.models import NANO, Budget, BudgetCounter, Period, Scope

pytestmark = pytest.mark.django_db

LIST = reverse("budgets:list")
ADD = reverse("budgets:add")


def test_the_tab_says_when_there_are_no_budgets(staff_client):
    page = staff_client.get(LIST).content.decode()
    assert "No budgets yet" in page and 'aria-current="page">Budgets &amp; limits' in page


def test_an_admin_adds_a_budget_and_sees_its_spend_against_the_limit(staff_client, developer):
    answer = staff_client.post(
        ADD,
        {"scope": "person", "user": developer.pk, "period": "day", "limit_usd": "20", "hard": "on"},
    )
    assert answer.status_code == 302
    budget = Budget.objects.get()
    assert (budget.scope, budget.user, budget.period, budget.hard) == (
        "person",
        developer,
        "day",
        True,
    )
    assert AuditEntry.objects.get(action=AuditAction.CREATE).object_repr == str(budget)
    BudgetCounter.objects.create(
        budget=budget,
        period_start=budget.period_start(budget.created_at),
        spent_nano=17 * NANO,
        reserved_nano=NANO,
    )
    page = staff_client.get(LIST).content.decode()
    assert "$17.00 spent · $1.00 held by running calls of $20.00 · 90%" in page
    assert "Near or over a limit" in page and 'value="90"' in page


def test_the_form_says_what_is_missing_by_the_field(staff_client):
    answer = staff_client.post(ADD, {"scope": "group", "period": "month", "limit_usd": "0"})
    assert answer.status_code == 422
    form = answer.context["form"]
    assert form.errors["group"] == ["Choose the group this budget is for."]
    assert "limit_usd" in form.errors
    assert not Budget.objects.exists()


def test_a_second_budget_for_the_same_scope_and_period_is_refused_by_the_field(staff_client):
    group = Group.objects.create(name="platform")
    fields = {"scope": "group", "group": group.pk, "period": "week", "limit_usd": "5"}
    staff_client.post(ADD, fields)
    answer = staff_client.post(ADD, {**fields, "limit_usd": "9"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200  # the list again, with the form's error
    assert "already has a budget for that period" in answer.content.decode()
    assert Budget.objects.get().limit_usd == Decimal("5.00")


def test_editing_changes_the_limit_and_period_but_not_whose_calls(staff_client, developer):
    budget = Budget.objects.create(
        scope=Scope.PERSON, user=developer, limit_usd=5, period=Period.DAY
    )
    url = reverse("budgets:edit", args=[budget.pk])
    assert staff_client.get(url).status_code == 200
    answer = staff_client.post(url, {"scope": "everyone", "period": "month", "limit_usd": "50"})
    assert answer.status_code == 302
    budget.refresh_from_db()
    assert (budget.scope, budget.user, budget.period, budget.limit_usd) == (
        "person",
        developer,
        "month",
        Decimal("50.00"),
    )
    assert AuditEntry.objects.get(action=AuditAction.UPDATE).changes == {
        "limit (USD)": ["5", "50"],
        "period": ["day", "month"],
        "hard": [True, False],
    }


def test_removing_a_budget_is_audited(staff_client):
    budget = Budget.objects.create(scope=Scope.EVERYONE, limit_usd=5, period=Period.DAY)
    budget.refresh_from_db()
    answer = staff_client.post(reverse("budgets:remove", args=[budget.pk]), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "No budgets yet" in answer.content.decode()
    assert AuditEntry.objects.get(action=AuditAction.DELETE).object_repr == str(budget)
    assert staff_client.post(reverse("budgets:remove", args=[budget.pk])).status_code == 404


def test_developers_cannot_see_or_change_budgets(developer_client):
    assert developer_client.get(LIST).status_code in (302, 403)
    assert developer_client.post(ADD, {"scope": "everyone", "limit_usd": "1"}).status_code in (
        302,
        403,
    )
    assert not Budget.objects.exists()


def test_a_developer_sees_their_budgets_and_a_notice_at_80_and_100_percent(
    developer_client, developer, other_developer
):
    from django.utils import timezone

    team = Group.objects.create(name="platform")
    team.user_set.add(developer)
    mine = Budget.objects.create(scope=Scope.GROUP, group=team, limit_usd=200, period=Period.MONTH)
    Budget.objects.create(scope=Scope.PERSON, user=other_developer, limit_usd=1, period=Period.DAY)
    usage = developer_client.get(reverse("usage:mine")).content.decode()
    assert "Monthly budget of $200.00 for group platform" in usage and "$200.00 left." in usage
    assert "other" not in usage.split('id="budgets"')[1].split("</section>")[0]
    agents = reverse("chats:agents")
    assert 'data-testid="budget-notice"' not in developer_client.get(agents).content.decode()
    counter = BudgetCounter.objects.create(
        budget=mine, period_start=mine.period_start(timezone.now()), spent_nano=170 * NANO
    )
    page = developer_client.get(agents).content.decode()
    assert "85% of the monthly budget of $200.00 for group platform is used" in page
    counter.spent_nano = 200 * NANO
    counter.save()
    page = developer_client.get(agents).content.decode()
    assert "is used up: calls that count against it are refused until" in page
    assert 'class="callout error"' in page


def test_the_usage_tab_names_the_budgets_near_or_over_their_limits(staff_client):
    from django.utils import timezone

    near = Budget.objects.create(scope=Scope.EVERYONE, limit_usd=100, period=Period.MONTH)
    quiet = Budget.objects.create(scope=Scope.EVERYONE, limit_usd=100, period=Period.DAY)
    for budget, spent in ((near, 85), (quiet, 10)):
        BudgetCounter.objects.create(
            budget=budget,
            period_start=budget.period_start(timezone.now()),
            spent_nano=spent * NANO,
        )
    page = staff_client.get(reverse("usage:list")).content.decode()
    alerts = page.split('data-testid="budget-alerts"')[1].split("</div>")[0]
    assert "Monthly budget of $100.00 for everyone: 85%" in alerts
    assert "Daily" not in alerts
    assert (
        'data-testid="budget-alerts"'
        not in staff_client.get(reverse("usage:mine")).content.decode()
    )

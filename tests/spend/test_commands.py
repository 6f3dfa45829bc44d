import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditAction, AuditEntry
from spend.models import Budget, RateLimit
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    return str(error.value)


def test_budget_set_list_and_delete_each_scope(developer):
    Group.objects.create(name="platform")
    token = token_create(user=developer, name="ci", lifetime=timedelta(days=1), actor=None)
    assert run("budget_set", "everyone", "--limit", "$1,000") == (
        "Budget set: monthly budget of $1,000.00 for everyone (hard).\n"
    )
    run("budget_set", "group", "platform", "--limit", "200", "--period", "week", "--soft")
    run("budget_set", "person", developer.username, "--limit", "12.50", "--period", "day")
    run("budget_set", "token", str(token.token.pk), "--limit", "5")
    listed = run("budget_list")
    for words in ("everyone", "group platform", "dev", "token ci", "$1,000.00", "soft", "UTC"):
        assert words in listed
    entries = json.loads(run("budget_list", "--json"))
    assert [(e["for"], e["period"], e["limit_usd"]) for e in entries] == [
        ("everyone", "month", "1000.00"),
        ("group platform", "week", "200.00"),
        ("dev", "day", "12.50"),
        ("token ci", "month", "5.00"),
    ]
    # Setting the same scope and period again changes it, audited with what changed.
    run("budget_set", "person", developer.username, "--limit", "20", "--period", "day")
    assert Budget.objects.get(user=developer).limit_usd == Decimal("20.00")
    update = AuditEntry.objects.filter(action=AuditAction.UPDATE).get()
    assert update.changes == {"limit (USD)": ["12.5", "20"]}
    assert "Budget removed" in run("budget_delete", "group", "platform", "--period", "week")
    assert Budget.objects.count() == 3
    assert AuditEntry.objects.filter(action=AuditAction.DELETE).count() == 1


def test_budget_list_says_when_there_is_none():
    assert run("budget_list") == "No budgets yet: budget_set sets one.\n"
    assert json.loads(run("budget_list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("everyone", "alice", "--limit", "5"), "names no one"),
        (("group", "--limit", "5"), "name the group's name"),
        (("group", "nobody", "--limit", "5"), "no group named 'nobody'"),
        (("person", "ghost", "--limit", "5"), "ghost"),
        (("token", "999", "--limit", "5"), "no token '999'"),
        (("everyone", "--limit", "ten"), "is not an amount in dollars"),
        (("everyone", "--limit", "NaN"), "is not an amount in dollars"),
        (("everyone", "--limit", "0"), "limit_usd"),
        (("everyone", "--limit", "0.001"), "limit_usd"),
        (("everyone", "--limit", "5", "--period", "year"), "invalid choice"),
    ],
)
def test_budget_set_refuses_in_one_line(args, message):
    refused = refusal("budget_set", *args)
    assert message in refused and len(refused.splitlines()) == 1
    assert not Budget.objects.exists()


def test_budget_delete_of_a_missing_budget_is_one_line():
    assert refusal("budget_delete", "everyone", "--period", "day") == (
        "no daily budget for that scope (see budget_list)"
    )


@given(st.text(max_size=30))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_limit_text_is_set_or_refused_in_one_line(text):
    try:
        run("budget_set", "everyone", "--limit", text)
    except CommandError as error:
        assert len(str(error).splitlines()) == 1
    else:
        budget = Budget.objects.get()
        assert Decimal("0.01") <= (budget.limit_usd or 0) <= Decimal("1000000000")
        budget.delete()


def test_limit_set_list_and_delete(developer):
    Group.objects.create(name="platform")
    assert run("limit_set", "group", "platform", "--requests-per-minute", "600") == (
        "Rate limit set: 600 requests per minute limit for group platform.\n"
    )
    out = run(
        "limit_set",
        "person",
        developer.username,
        "--tokens-per-minute",
        "100_000",
        "--concurrent-calls",
        "4",
    )
    assert out.splitlines() == [
        f"Rate limit set: 100,000 tokens per minute limit for {developer.username}.",
        f"Rate limit set: 4 concurrent calls limit for {developer.username}.",
    ]
    run("limit_set", "group", "platform", "--requests-per-minute", "1,200")  # changed
    listed = json.loads(run("limit_list", "--json"))
    assert [(row["for"], row["kind"], row["limit"], row["used"]) for row in listed] == [
        ("group platform", "requests", 1200, 0),
        (developer.username, "calls", 4, 0),
        (developer.username, "tokens", 100000, 0),
    ]
    table = run("limit_list")
    assert "1,200 requests per minute" in table and "0 of 4 running" in table
    assert run("limit_delete", "person", developer.username, "--kind", "calls") == (
        f"Rate limit removed: 4 concurrent calls limit for {developer.username}.\n"
    )
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == [AuditAction.CREATE] * 3 + [AuditAction.UPDATE, AuditAction.DELETE]
    assert not Budget.objects.exists()  # rate limits are not budgets


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("everyone",), "give at least one of --requests-per-minute"),
        (("everyone", "--requests-per-minute", "0"), "must be between 1 and"),
        (("everyone", "--concurrent-calls", "two"), "'two' is not a whole number"),
        (("everyone", "--concurrent-calls", "٣"), "is not a whole number"),
        (("group", "nobody", "--requests-per-minute", "5"), "no group named 'nobody'"),
        (("everyone", "x", "--requests-per-minute", "5"), "everyone names no one"),
    ],
)
def test_limit_set_refuses_bad_input_in_one_line(args, message):
    refused = refusal("limit_set", *args)
    assert message in refused and len(refused.splitlines()) == 1


def test_limit_delete_says_when_there_is_no_such_limit():
    assert refusal("limit_delete", "everyone", "--kind", "tokens") == (
        "no tokens limit for that scope (see limit_list)"
    )
    assert run("limit_list") == "No rate limits yet: limit_set sets one.\n"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=20))
def test_limit_set_takes_any_text_as_a_number_or_refuses_it_in_one_line(text):
    try:
        run("limit_set", "everyone", "--requests-per-minute", text)
    except CommandError as error:
        assert len(str(error).splitlines()) == 1
    else:
        limit = RateLimit.objects.get()
        assert 1 <= (limit.limit_count or 0) <= 1_000_000_000_000
        limit.delete()

"""Holds and settling, straight on the database: whatever the order in which calls start,
settle and die, a hard budget's spend and open holds never pass its limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spend import holds
from spend.models import NANO, Budget, BudgetCounter, BudgetHold, Period, Scope
from tokens.services import token_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
_calls = itertools.count(1)


def budget(limit: str = "1.00", period: str = Period.MONTH, hard: bool = True, **target) -> Budget:
    scope = next(
        (
            s
            for s, field in (("group", "group"), ("person", "user"), ("token", "token"))
            if field in target
        ),
        Scope.EVERYONE,
    )
    return Budget.objects.create(
        scope=scope, period=period, limit_usd=Decimal(limit), hard=hard, **target
    )


def take(user, amount_usd: str, now=NOW, token=None) -> tuple[int, int | None]:
    call = next(_calls)
    amount = int(Decimal(amount_usd) * NANO)
    return call, holds.reserve(user.pk, token, call, amount, now, now + HOUR)


def counter(b: Budget, now=NOW) -> BudgetCounter:
    return BudgetCounter.objects.get(budget=b, period_start=b.period_start(now))


def test_a_hard_budget_refuses_the_call_that_would_pass_it(developer):
    b = budget("1.00", user=developer)
    assert take(developer, "0.60")[1] is None
    assert take(developer, "0.50")[1] == b.pk  # 0.60 + 0.50 > 1.00
    assert take(developer, "0.40")[1] is None  # exactly 1.00
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano) == (0, NANO)


def test_a_refusal_takes_no_hold_on_any_budget(developer):
    roomy = budget("100", period=Period.DAY, user=developer)
    tight = budget("1.00", period=Period.MONTH, user=developer)
    assert take(developer, "2.00")[1] == tight.pk
    assert BudgetHold.objects.count() == 0
    assert counter(roomy).reserved_nano == 0


def test_settling_turns_the_hold_into_the_real_cost(developer):
    b = budget("1.00", user=developer)
    call, _ = take(developer, "0.80")
    holds.settle([(call, int(Decimal("0.25") * NANO), False)], NOW)
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano, c.unknown_nano) == (NANO // 4, 0, 0)
    assert not BudgetHold.objects.exists()
    assert take(developer, "0.75")[1] is None


def test_an_unknown_cost_is_counted_and_kept_apart(developer):
    b = budget("1.00", user=developer)
    call, _ = take(developer, "0.30")
    holds.settle([(call, int(Decimal("0.30") * NANO), True)], NOW)
    c = counter(b)
    assert (c.spent_nano, c.unknown_nano) == (3 * NANO // 10, 3 * NANO // 10)


def test_a_dead_calls_hold_is_given_back_after_it_expires(developer):
    b = budget("1.00", user=developer)
    take(developer, "0.90")  # its worker dies: never settled
    assert take(developer, "0.20", now=NOW + HOUR / 2)[1] == b.pk  # still held
    assert take(developer, "0.20", now=NOW + 2 * HOUR)[1] is None  # given back
    assert counter(b).reserved_nano == NANO // 5
    assert BudgetHold.objects.count() == 1


def test_each_scope_counts_only_its_own_calls(developer, other_developer):
    team = Group.objects.create(name="platform")
    team.user_set.add(developer)
    mine = token_create(user=developer, name="ci", lifetime=timedelta(days=1), actor=None)
    everyone = budget("10")
    group = budget("10", group=team)
    person = budget("10", user=developer)
    token = budget("10", token=mine.token)
    take(developer, "1", token=mine.token.pk)  # every scope
    take(developer, "2")  # another of the developer's tokens: not the token's budget
    take(other_developer, "4")  # everyone's only
    assert counter(everyone).reserved_nano == 7 * NANO
    assert counter(group).reserved_nano == 3 * NANO
    assert counter(person).reserved_nano == 3 * NANO
    assert counter(token).reserved_nano == 1 * NANO


@pytest.mark.parametrize("period", Period.values)
def test_a_budget_starts_again_at_its_periods_boundary(developer, period):
    b = budget("1.00", period=period, user=developer)
    end = Period(period).end(NOW)
    call, _ = take(developer, "1.00", now=end - timedelta(seconds=1))
    holds.settle([(call, NANO, False)], end)
    assert take(developer, "0.01", now=end - timedelta(microseconds=1))[1] == b.pk
    assert take(developer, "1.00", now=end)[1] is None  # a new period: a new counter


def test_a_soft_budget_lets_calls_pass_and_is_marked_once_per_period(developer):
    b = budget("1.00", hard=False, user=developer)
    first, _ = take(developer, "0.80")
    second, refused = take(developer, "0.80")
    assert refused is None
    assert holds.settle([(first, 6 * NANO // 10, False)], NOW) == []
    passed = holds.settle([(second, 6 * NANO // 10, False)], NOW)
    assert [budget_id for budget_id, _ in passed] == [b.pk]
    third, _ = take(developer, "0.10")
    assert holds.settle([(third, NANO // 10, False)], NOW) == []  # already marked


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["start", "settle", "die", "later"]),
            st.integers(min_value=1, max_value=400),  # cents; minutes for "later"
            st.integers(min_value=0, max_value=100),  # what a call cost, % of its hold
        ),
        max_size=25,
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_interleaving_of_starts_settles_and_deaths_passes_a_hard_budget(
    django_user_model, steps
):
    """Spend + open holds stay within the limit, the counter's holds are the holds there
    are, and a call is refused exactly when it would not fit beside the unexpired holds."""
    user = django_user_model.objects.create(username=f"p{next(_calls)}")
    b = budget("10.00", user=user)
    now, running = NOW, []
    for action, number, share in steps:
        if action == "start":
            c = BudgetCounter.objects.filter(budget=b).first()
            live = BudgetHold.objects.filter(counter__budget=b, expires_at__gte=now)
            open_nano = sum(h.amount_nano for h in live)
            amount = number * NANO // 100
            call, refused = take(user, str(Decimal(number) / 100), now=now)
            fits = (c.spent_nano if c else 0) + open_nano + amount <= b.limit_nano
            assert (refused is None) == fits
            if fits:
                running.append((call, amount))
        elif action in ("settle", "die") and running:
            call, held = running.pop(number % len(running))
            if action == "settle":  # a call that dies simply never settles
                holds.settle([(call, held * share // 100, False)], now)
        elif action == "later":
            now += timedelta(minutes=number)
        c = BudgetCounter.objects.filter(budget=b).first()
        if c is not None:
            held = sum(h.amount_nano for h in BudgetHold.objects.filter(counter=c))
            assert c.reserved_nano == held
            assert c.spent_nano + c.reserved_nano <= b.limit_nano


def test_the_migration_creates_the_function_the_code_describes():
    """spend_reserve is made by a migration, which keeps its text: a change to the code's
    version needs a new migration, or databases would run the old one."""
    import importlib

    migration = importlib.import_module("spend.migrations.0001_initial")
    assert migration.RESERVE_FUNCTION.strip() == holds.reserve_function_sql().strip()

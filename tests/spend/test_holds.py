"""Holds and settling, straight on the database: whatever the order in which processes take,
settle, lease and give back, a hard budget's spend and holds never pass its limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spend import holds
from spend.holds import Settlement, Taken
from spend.models import BUDGET_PERIODS, NANO, Budget, BudgetCounter, BudgetHold, Period, Scope
from tokens.services import token_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CENT = NANO // 100
_ids = itertools.count(1)


def budget(limit: str = "1.00", period: str = Period.MONTH, hard: bool = True, **target) -> Budget:
    fields = (("group", "group"), ("person", "user"), ("token", "token"))
    scope = next((s for s, field in fields if field in target), Scope.EVERYONE)
    return Budget.objects.create(
        scope=scope, period=period, limit_usd=Decimal(limit), hard=hard, **target
    )


def take(user, cents: int, now=NOW, token=None, holder=None, lent=None) -> list[Taken] | int:
    return holds.reserve(
        user.pk, token, holder or next(_ids), cents * CENT, now, now + HOUR, lent or {}
    )


def took(user, cents: int, **kwargs) -> Taken:
    """What a call on one budget took; it must not be refused."""
    result = take(user, cents, **kwargs)
    assert isinstance(result, list)
    (one,) = result
    return one


def counter(b: Budget, now=NOW) -> BudgetCounter:
    return BudgetCounter.objects.get(budget=b, period_start=b.period_start(now))


def test_a_hard_budget_refuses_the_call_that_would_pass_it(developer):
    b = budget("100.00", user=developer)
    # Far from the limit, a lease of 1% of it comes with a call it covers.
    assert took(developer, 50, holder=1).granted == 150 * CENT
    assert took(developer, 7900, holder=2).granted == 7900 * CENT  # $1 would not cover it
    assert take(developer, 2000, holder=2) == b.pk  # $19.50 are left
    assert took(developer, 1950, holder=2).granted == 1950 * CENT  # near: no lease
    assert take(developer, 1, holder=2) == b.pk
    # Holder 1's lease is its own to spend: a call it covers needs nothing more.
    assert took(developer, 100, holder=1, lent={b.pk: 100 * CENT}).granted == 0
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano) == (0, 100 * NANO)


def test_a_refusal_takes_nothing_on_any_budget(developer):
    roomy = budget("100", period=Period.DAY, user=developer)
    tight = budget("1.00", period=Period.MONTH, user=developer)
    assert take(developer, 200) == tight.pk
    assert BudgetHold.objects.count() == 0
    assert counter(roomy).reserved_nano == 0


def test_settling_moves_the_cost_from_the_hold_to_spent(developer):
    b = budget("1.00", user=developer)
    taken = took(developer, 80, holder=7)  # near the limit after it: no lease
    assert taken.granted == 80 * CENT
    holds.settle(7, [Settlement(taken.counter_id, 25 * CENT, 80 * CENT, 0)], NOW)
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano, c.unknown_nano) == (25 * CENT, 0, 0)
    assert not BudgetHold.objects.exists()
    assert isinstance(take(developer, 75), list)


def test_a_lease_given_back_is_room_for_everyone_again(developer):
    b = budget("1000.00", user=developer)
    taken = took(developer, 100, holder=3)
    assert taken.granted == 1100 * CENT  # $1 and a lease of $10
    holds.settle(3, [Settlement(taken.counter_id, 100 * CENT, 100 * CENT, 0)], NOW)
    assert counter(b).reserved_nano == 10 * NANO  # the lease
    holds.settle(3, [Settlement(taken.counter_id, 0, 10 * NANO, 0)], NOW)  # given back
    c = counter(b)
    assert (c.spent_nano, c.reserved_nano) == (NANO, 0)
    assert not BudgetHold.objects.exists()


def test_an_unknown_cost_is_counted_and_kept_apart(developer):
    b = budget("1.00", user=developer)
    taken = took(developer, 30, holder=4)
    holds.settle(4, [Settlement(taken.counter_id, 30 * CENT, 30 * CENT, 30 * CENT)], NOW)
    c = counter(b)
    assert (c.spent_nano, c.unknown_nano) == (30 * CENT, 30 * CENT)


def test_a_dead_processes_hold_is_given_back_after_it_expires(developer):
    b = budget("1.00", user=developer)
    take(developer, 90, holder=5)  # its process dies: never settled
    assert take(developer, 20, now=NOW + HOUR / 2) == b.pk  # still held
    assert isinstance(take(developer, 20, now=NOW + 2 * HOUR, holder=6), list)  # given back
    assert counter(b).reserved_nano == 20 * CENT
    assert list(BudgetHold.objects.values_list("holder", flat=True)) == [6]


def test_a_call_settled_after_its_hold_expired_takes_nothing_off_twice(developer):
    """A process still running past its hold's expiry: the hold was given back once, so
    settling its call adds the cost to spent and takes nothing more off what is held."""
    b = budget("1.00", user=developer)
    late = took(developer, 50, holder=11)
    took(developer, 10, now=NOW + 2 * HOUR, holder=12)  # gives back holder 11's hold
    holds.settle(11, [Settlement(late.counter_id, 30 * CENT, 50 * CENT, 0)], NOW + 2 * HOUR)
    c = counter(b)
    assert c.spent_nano == 30 * CENT
    assert c.reserved_nano == sum(h.amount_nano for h in BudgetHold.objects.all()) > 0


def test_each_scope_counts_only_its_own_calls(developer, other_developer):
    team = Group.objects.create(name="platform")
    team.user_set.add(developer)
    mine = token_create(user=developer, name="ci", lifetime=timedelta(days=1), actor=None)
    everyone, group = budget("1000"), budget("1000", group=team)
    person, token = budget("1000", user=developer), budget("1000", token=mine.token)
    calls = [(developer, 1, mine.token.pk), (developer, 2, None), (other_developer, 4, None)]
    for user, dollars, token_id in calls:  # each settled at its worst case, leases given back
        holder = next(_ids)
        taken = take(user, 100 * dollars, token=token_id, holder=holder)
        assert isinstance(taken, list)
        cost = dollars * NANO
        holds.settle(holder, [Settlement(t.counter_id, cost, t.granted, 0) for t in taken], NOW)
    spent = {b.pk: counter(b).spent_nano for b in (everyone, group, person, token)}
    assert spent == {everyone.pk: 7 * NANO, group.pk: 3 * NANO, person.pk: 3 * NANO, token.pk: NANO}
    assert not BudgetHold.objects.exists()


@pytest.mark.parametrize("period", [period.value for period in BUDGET_PERIODS])
def test_a_budget_starts_again_at_its_periods_boundary(developer, period):
    b = budget("1.00", period=period, user=developer)
    end = Period(period).end(NOW)
    taken = took(developer, 100, now=end - timedelta(seconds=1), holder=8)
    holds.settle(8, [Settlement(taken.counter_id, NANO, NANO, 0)], end)
    assert take(developer, 1, now=end - timedelta(microseconds=1)) == b.pk
    assert isinstance(take(developer, 100, now=end), list)  # a new period: a new counter


def test_a_soft_budget_lets_calls_pass_and_is_marked_once_per_period(developer):
    b = budget("1.00", hard=False, user=developer)
    first, second = take(developer, 80, holder=9), take(developer, 80, holder=9)
    assert isinstance(first, list) and isinstance(second, list)
    (counter_id,) = {t.counter_id for t in first + second}
    assert holds.settle(9, [Settlement(counter_id, 60 * CENT, 60 * CENT, 0)], NOW) == []
    passed = holds.settle(9, [Settlement(counter_id, 60 * CENT, 60 * CENT, 0)], NOW)
    assert [budget_id for budget_id, _ in passed] == [b.pk]
    assert holds.settle(9, [Settlement(counter_id, 10 * CENT, 10 * CENT, 0)], NOW) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["start", "finish", "give back"]),
            st.integers(min_value=0, max_value=2),  # which process
            st.integers(min_value=1, max_value=400),  # cents
            st.integers(min_value=0, max_value=100),  # what a call cost, % of its hold
        ),
        max_size=30,
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_interleaving_of_processes_passes_a_hard_budget(django_user_model, steps):
    """Three processes start calls (with what their leases lend), finish them (what a call
    did not spend goes back to its process's lease) and give leases back, in any order. A
    call is refused exactly when the counter's room and the process's lease cannot cover it;
    spent + holds never pass the limit; the counter's holds are the processes' holds."""
    user = django_user_model.objects.create(username=f"p{next(_ids)}")
    b = budget("10.00", user=user)
    base = next(_ids) * 10
    leases = {p: 0 for p in range(3)}
    running: dict[int, list[int]] = {p: [] for p in range(3)}
    counter_id = None
    for action, process, cents, share in steps:
        holder = base + process
        if action == "start":
            amount = cents * CENT
            c = BudgetCounter.objects.filter(budget=b).first()
            room = b.cap - (c.spent_nano + c.reserved_nano if c else 0)
            lent = leases[process]
            taken = take(user, cents, holder=holder, lent={b.pk: lent} if lent else {})
            assert isinstance(taken, list) == (room >= max(amount - lent, 0))
            if isinstance(taken, list):
                (top_up,) = taken
                counter_id = top_up.counter_id
                leases[process] = lent + top_up.granted - amount
                running[process].append(amount)
        elif action == "finish" and running[process]:
            assert counter_id is not None
            amount = running[process].pop(cents % len(running[process]))
            cost = amount * share // 100
            holds.settle(holder, [Settlement(counter_id, cost, cost, 0)], NOW)
            leases[process] += amount - cost
        elif action == "give back" and leases[process]:
            assert counter_id is not None
            holds.settle(holder, [Settlement(counter_id, 0, leases[process], 0)], NOW)
            leases[process] = 0
        c = BudgetCounter.objects.filter(budget=b).first()
        if c is not None:
            held = {h.holder - base: h.amount_nano for h in BudgetHold.objects.filter(counter=c)}
            expected = {p: leases[p] + sum(running[p]) for p in range(3) if leases[p] or running[p]}
            assert held == expected
            assert c.reserved_nano == sum(held.values())
            assert c.spent_nano + c.reserved_nano <= b.cap


def test_the_migration_creates_the_function_the_code_describes():
    """spend_reserve is made by a migration, which keeps its text: a change to the code's
    version needs a new migration, or databases would run the old one."""
    import importlib

    migration = importlib.import_module("spend.migrations.0002_rate_limits")
    assert migration.RESERVE_FUNCTION.strip() == holds.reserve_function_sql().strip()


@pytest.mark.parametrize("hard", [True, False], ids=["hard", "soft"])
@pytest.mark.parametrize("period", [period.value for period in BUDGET_PERIODS])
@pytest.mark.parametrize("scope", Scope.values)
def test_every_scope_and_period_hard_or_soft(developer, other_developer, scope, period, hard):
    """80 cents fit a $1 budget once in a period: a hard one refuses the second call, a soft
    one lets it pass; the next period starts anew; nobody else's calls count (but everyone's
    budget's)."""
    token = token_create(user=developer, name="ci", lifetime=timedelta(days=1), actor=None).token
    target: dict = {}
    if scope == Scope.GROUP:
        target["group"] = Group.objects.create(name="platform")
        target["group"].user_set.add(developer)
    elif scope == Scope.PERSON:
        target["user"] = developer
    elif scope == Scope.TOKEN:
        target["token"] = token
    b = budget("1.00", period=period, hard=hard, **target)
    took(developer, 80, token=token.pk)
    second = take(developer, 80, token=token.pk)
    assert second == b.pk if hard else isinstance(second, list)
    assert isinstance(take(developer, 80, now=Period(period).end(NOW), token=token.pk), list)
    stranger = take(other_developer, 80)
    assert stranger == b.pk if hard and scope == Scope.EVERYONE else isinstance(stranger, list)

"""Budgets: setting them, reading where each stands, and the words for a refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record

from .models import NANO, Budget, BudgetCounter, Period, Scope

BUDGET_TAKEN = "This scope already has a budget for that period: edit it instead."
# Shares of a budget at which people are told (the Agents page, Settings -> Usage).
NEAR = Decimal("0.8")


@transaction.atomic
def budget_set(
    *,
    scope: str,
    period: str,
    limit_usd: Decimal,
    hard: bool,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    token: Any = None,
    budget: Budget | None = None,
    only_new: bool = False,
) -> Budget:
    """A new budget, or ``budget`` (else the scope's one for ``period``, unless ``only_new``)
    changed."""
    if budget is None:
        budget = _existing(scope, period, group, user, token)
        if budget is not None and only_new:
            raise ValidationError({"period": BUDGET_TAKEN})
        budget = budget or Budget(scope=scope, group=group, user=user, token=token, period=period)
    before = (
        {"limit (USD)": budget.limit_usd, "hard": budget.hard, "period": budget.period}
        if budget.pk
        else {}
    )
    budget.period, budget.limit_usd, budget.hard = period, limit_usd, hard
    budget.full_clean(validate_constraints=False)
    budget.limit_usd = Decimal(budget.limit_usd).quantize(Decimal("0.01"))  # as it is stored
    after = {"limit (USD)": budget.limit_usd, "hard": budget.hard, "period": budget.period}
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if not changes:
        return budget
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise ValidationError({"period": BUDGET_TAKEN}) from None
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE if before else AuditAction.CREATE,
        obj=budget,
        object_repr=str(budget),
        changes=changes,
    )
    return budget


def _existing(scope: str, period: str, group: Any, user: Any, token: Any) -> Budget | None:
    return Budget.objects.filter(
        scope=scope, period=period, group=group, user=user, token=token
    ).first()


@transaction.atomic
def budget_delete(*, budget: Budget, actor: Any) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        obj=budget,
        object_repr=str(budget),
        changes={"limit (USD)": [budget.limit_usd, None]},
    )
    budget.delete()


@dataclass
class Standing:
    """Where a budget stands in the current period."""

    budget: Budget
    spent: Decimal  # USD
    reserved: Decimal  # USD, held by calls still running
    unknown: Decimal  # USD, of spent: calls whose cost could not be read
    resets_at: datetime

    @property
    def used(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def share(self) -> Decimal:
        return self.used / self.budget.limit_usd if self.budget.limit_usd else Decimal(1)

    @property
    def percent(self) -> int:
        return min(100, int(self.share * 100))

    @property
    def over(self) -> bool:
        return self.share >= 1

    @property
    def near(self) -> bool:
        return NEAR <= self.share < 1

    @property
    def left(self) -> Decimal:
        return max(Decimal(0), self.budget.limit_usd - self.used)


def standings(budgets: Any, now: datetime | None = None) -> list[Standing]:
    """Each budget's standing in its current period (two queries in all)."""
    now = now or timezone.now()
    budgets = list(budgets)
    starts = {b.pk: b.period_start(now) for b in budgets}
    counters = {
        (c.budget_id, c.period_start): c
        for c in BudgetCounter.objects.filter(
            budget__in=budgets, period_start__in=set(starts.values())
        )
    }
    result = []
    for budget in budgets:
        counter = counters.get((budget.pk, starts[budget.pk]))
        spent, reserved, unknown = (
            (counter.spent_nano, counter.reserved_nano, counter.unknown_nano)
            if counter
            else (0, 0, 0)
        )
        result.append(
            Standing(
                budget,
                _usd(spent),
                _usd(reserved),
                _usd(unknown),
                budget.resets_at(now),
            )
        )
    return result


def standings_of(user: Any, now: datetime | None = None) -> list[Standing]:
    """Where each budget that counts a person's calls stands: everyone's, their groups',
    their own and their tokens'."""
    budgets = Budget.objects.filter(
        pk__in=Budget.objects.applying_to(user.pk, None).values("pk")
    ) | Budget.objects.filter(scope=Scope.TOKEN, token__user=user, token__revoked_at=None)
    return standings(budgets.in_display_order(), now)


def _usd(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).quantize(Decimal("0.000001"))


def reset_words(moment: datetime) -> str:
    """ "1 Jan 00:00 UTC"."""
    return f"{moment.day} {moment:%b %H:%M} UTC"


def refusal(budget_id: int, now: datetime) -> tuple[str, datetime]:
    """What a call refused by a hard budget is told (which budget, when it resets), and
    when that is. Runs in a worker thread of the gateway."""
    try:
        budget = (
            Budget.objects.select_related("group", "user", "token").filter(pk=budget_id).first()
        )
        if budget is None:  # deleted since: the next call will not meet it
            return "A budget was reached; try again.", now
        period = Period(budget.period).label.lower()
        resets_at = budget.resets_at(now)
        return (
            f"{period.capitalize()} budget of ${budget.limit_usd:,} for {budget.target_label} "
            f"reached; resets {reset_words(resets_at)}.",
            resets_at,
        )
    finally:
        connection.close()


def record_passed(passed: list[tuple[int, Any]]) -> None:
    """An audit entry for each budget calls have passed (once per period: the counter keeps
    when it was first passed). Runs in a worker thread of the gateway."""
    try:
        for budget in Budget.objects.select_related("group", "user", "token").filter(
            pk__in=[budget_id for budget_id, _ in passed]
        ):
            audit_record(
                actor=None,
                actor_label="gateway",
                action=AuditAction.PASSED,
                obj=budget,
                object_repr=str(budget),
            )
    finally:
        connection.close()

"""Budgets: setting them, reading where each stands, and the words for a refusal."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record

from . import redis_counters
from .models import NANO, RATE_UNITS, Budget, BudgetCounter, Period, RateLimit, Scope, Unit

logger = logging.getLogger(__name__)
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


LIMIT_TAKEN = "This scope already has this kind of limit: edit it instead."


@transaction.atomic
def limit_set(
    *,
    scope: str,
    unit: str,
    limit: int,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    token: Any = None,
    rate_limit: RateLimit | None = None,
    only_new: bool = False,
) -> RateLimit:
    """A new rate limit, or ``rate_limit`` (else the scope's one in ``unit``, unless
    ``only_new``) changed. Rate limits are always hard."""
    if unit not in RATE_UNITS:
        raise ValidationError({"unit": f"Choose one of: {', '.join(RATE_UNITS)}."})
    if rate_limit is None:
        rate_limit = RateLimit.objects.filter(
            scope=scope, unit=unit, group=group, user=user, token=token
        ).first()
        if rate_limit is not None and only_new:
            raise ValidationError({"unit": LIMIT_TAKEN})
        rate_limit = rate_limit or RateLimit(
            scope=scope, unit=unit, period=Unit(unit).period, group=group, user=user, token=token
        )
    before = rate_limit.limit_count if rate_limit.pk else None
    rate_limit.limit_count, rate_limit.hard = limit, True
    rate_limit.full_clean(validate_constraints=False)
    if before == rate_limit.limit_count:
        return rate_limit
    changes: dict[str, list[Any]] = {"limit": [before, rate_limit.limit_count]}
    if before is None:
        changes = {"kind": [None, Unit(unit).label], **changes}
    try:
        with transaction.atomic():
            rate_limit.save()
    except IntegrityError:
        raise ValidationError({"unit": LIMIT_TAKEN}) from None
    audit_record(
        actor=actor,
        action=AuditAction.CREATE if before is None else AuditAction.UPDATE,
        obj=rate_limit,
        object_repr=str(rate_limit),
        changes=changes,
    )
    return rate_limit


@transaction.atomic
def limit_delete(*, rate_limit: RateLimit, actor: Any) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        obj=rate_limit,
        object_repr=str(rate_limit),
        changes={"limit": [rate_limit.limit_count, None]},
    )
    rate_limit.delete()


@dataclass
class Standing:
    """Where a budget stands in the current period."""

    budget: Budget
    # In the budget's unit (USD; requests or tokens this minute; calls running)
    spent: Decimal
    reserved: Decimal  # held by calls still running (and leases)
    unknown: Decimal  # USD, of spent: calls whose cost could not be read
    resets_at: datetime

    @property
    def limit(self) -> Decimal:
        if self.budget.unit == Unit.USD:
            return self.budget.limit_usd or Decimal(0)
        return Decimal(self.budget.limit_count or 0)

    @property
    def used(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def share(self) -> Decimal:
        return self.used / self.limit if self.limit else Decimal(1)

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
        return max(Decimal(0), self.limit - self.used)

    @property
    def used_words(self) -> str:
        """ "12 of 60 requests this minute", "3 of 4 calls running"."""
        unit = self.budget.unit
        if unit == Unit.USD:
            return f"${self.used:,.2f} of ${self.limit:,}"
        if unit == Unit.CALLS:
            return f"{self.used:,} of {self.limit:,} running"
        return f"{self.used:,} of {self.limit:,} {unit} this minute"


def standings(budgets: Any, now: datetime | None = None) -> list[Standing]:
    """Each budget's (or rate limit's) standing in its current period (two queries in
    all)."""
    now = now or timezone.now()
    budgets = list(budgets)
    found = _counters_now(budgets, now)
    result = []
    for budget in budgets:
        spent, reserved, unknown = found.get(budget.pk, (0, 0, 0))
        if budget.unit == Unit.USD:
            amounts = (_usd(spent), _usd(reserved), _usd(unknown))
        else:
            amounts = (Decimal(spent), Decimal(reserved), Decimal(0))
        result.append(Standing(budget, *amounts, budget.resets_at(now)))
    return result


def _counters_now(budgets: list[Budget], now: datetime) -> dict[int, tuple[int, int, int]]:
    """(spent, reserved, unknown) of each budget's counter in its current period (by budget
    id), where the counters live: the database, or Redis (shown as nothing while it cannot
    be reached: the page still works, and says nothing it does not know)."""
    if settings.REDIS_URL:
        try:
            return redis_counters.counters_now(budgets, now)
        except Exception as error:  # redis' errors: the page still shows the limits
            logger.warning(
                "could not read the counters from Redis (%s: %s)", type(error).__name__, error
            )
            return {}
    starts = {b.pk: b.period_start(now) for b in budgets}
    return {
        c.budget_id: (c.spent_nano, c.reserved_nano, c.unknown_nano)
        for c in BudgetCounter.objects.filter(
            budget__in=budgets, period_start__in=set(starts.values())
        )
        if starts[c.budget_id] == c.period_start
    }


def standings_of(
    user: Any, now: datetime | None = None, *, rate_limits: bool = False
) -> list[Standing]:
    """Where each budget (or, with ``rate_limits``, each rate limit) that counts a person's
    calls stands: everyone's, their groups', their own and their tokens'."""
    rows = (
        Budget.all_units.exclude(unit=Unit.USD)
        if rate_limits
        else Budget.all_units.filter(unit=Unit.USD)
    )
    mine = rows.applying_to(user.pk, None) | rows.filter(
        scope=Scope.TOKEN, token__user=user, token__revoked_at=None
    )
    return standings(mine.in_display_order(), now)


def _usd(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).quantize(Decimal("0.000001"))


def reset_words(moment: datetime) -> str:
    """ "1 Jan 00:00 UTC"."""
    return f"{moment.day} {moment:%b %H:%M} UTC"


@dataclass(frozen=True)
class Reached:
    """What a call refused by a hard budget or rate limit is told, and how its caller is
    told when to try again."""

    message: str
    code: str  # the error's code, and the usage row's error kind
    unit: str
    limit: int
    resets_at: datetime


def refusal(budget_id: int, now: datetime) -> Reached:
    """Which budget or rate limit refused a call, and when it resets. Runs in a worker
    thread of the gateway."""
    try:
        budget = (
            Budget.all_units.select_related("group", "user", "token").filter(pk=budget_id).first()
        )
        if budget is None:  # deleted since: the next call will not meet it
            return Reached("A limit was reached; try again.", "rate_limited", "calls", 0, now)
        resets_at = budget.resets_at(now)
        if budget.unit == Unit.USD:
            period = Period(budget.period).label.lower()
            return Reached(
                f"{period.capitalize()} budget of ${budget.limit_usd:,} for "
                f"{budget.target_label} reached; resets {reset_words(resets_at)}.",
                "budget_exceeded",
                budget.unit,
                budget.cap,
                resets_at,
            )
        if budget.unit == Unit.CALLS:
            return Reached(
                f"Limit of {budget.limit_words} for {budget.target_label} reached; try again "
                "when one of them ends.",
                "concurrency_limited",
                budget.unit,
                budget.cap,
                now + timedelta(seconds=1),
            )
        seconds = max(1, math.ceil((resets_at - now).total_seconds()))
        return Reached(
            f"Rate limit of {budget.limit_words} for {budget.target_label} reached; resets "
            f"in {seconds} s.",
            "rate_limited",
            budget.unit,
            budget.cap,
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

"""Budgets: how much may be spent, by whom, per day, week or month, and what has been.

A budget's spend is kept per period in a counter: what calls have cost (``spent``) and what
server processes hold for calls running or about to run (``reserved``: their holds). Before
a call reaches the provider its worst case is taken from its process's hold on every counter
of a budget that applies to it, topped up from the counter when short; a hard budget refuses
the top-up when spent + reserved + the call's worst case would pass the limit. When the
call's usage is known its cost moves from the hold to ``spent``, in the transaction that
writes its usage row. Amounts are whole nano-USD (10^-9): exact sums, no rounding drift.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

NANO = 1_000_000_000


class Scope(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    GROUP = "group", "Group"
    PERSON = "person", "Person"
    TOKEN = "token", "Platform token"


class Period(models.TextChoices):
    DAY = "day", "Daily"
    WEEK = "week", "Weekly"
    MONTH = "month", "Monthly"

    def start(self, now: datetime) -> datetime:
        """The start of the period ``now`` is in, in UTC (weeks start on Monday)."""
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.DAY:
            return day
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def end(self, now: datetime) -> datetime:
        """When the period ``now`` is in ends: the next one's start (its reset)."""
        start = self.start(now)
        if self is Period.DAY:
            return start + timedelta(days=1)
        if self is Period.WEEK:
            return start + timedelta(days=7)
        days = calendar.monthrange(start.year, start.month)[1]
        return start + timedelta(days=days)


class BudgetQuerySet(models.QuerySet["Budget"]):
    def applying_to(self, user_id: int, token_id: int | None) -> BudgetQuerySet:
        """The budgets a call by ``user_id`` with platform token ``token_id`` counts against."""
        in_groups = Group.objects.filter(user__id=user_id).values("id")
        return self.filter(
            Q(scope=Scope.EVERYONE)
            | Q(scope=Scope.PERSON, user_id=user_id)
            | Q(scope=Scope.TOKEN, token_id=token_id)
            | Q(scope=Scope.GROUP, group_id__in=in_groups)
        )

    def in_display_order(self) -> BudgetQuerySet:
        order = models.Case(
            *(models.When(scope=s, then=i) for i, s in enumerate(Scope.values)),
            output_field=models.IntegerField(),
        )
        return self.select_related("group", "user", "token").order_by(
            order, "group__name", "user__username", "token__name", "period", "id"
        )


class Budget(models.Model):
    scope = models.CharField(max_length=16, choices=Scope.choices)
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
        verbose_name="person",
    )
    token = models.ForeignKey(
        "tokens.ApiToken",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name="platform token",
    )
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    limit_usd = models.DecimalField(
        "limit (USD)",
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1000000000"))],
    )
    hard = models.BooleanField(
        "hard limit",
        default=True,
        help_text="Hard: calls that would pass the limit are refused before they reach the "
        "provider. Soft: calls go on; the overrun is shown and recorded in the audit log.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BudgetQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="spend_budget_target_matches_scope",
                condition=(
                    Q(scope="everyone", group=None, user=None, token=None)
                    | Q(scope="group", group__isnull=False, user=None, token=None)
                    | Q(scope="person", group=None, user__isnull=False, token=None)
                    | Q(scope="token", group=None, user=None, token__isnull=False)
                ),
            ),
            models.UniqueConstraint(
                fields=["period"], condition=Q(scope="everyone"), name="spend_budget_one_everyone"
            ),
            models.UniqueConstraint(
                fields=["group", "period"],
                condition=Q(scope="group"),
                name="spend_budget_one_group",
            ),
            models.UniqueConstraint(
                fields=["user", "period"],
                condition=Q(scope="person"),
                name="spend_budget_one_person",
            ),
            models.UniqueConstraint(
                fields=["token", "period"],
                condition=Q(scope="token"),
                name="spend_budget_one_token",
            ),
        ]

    def __str__(self) -> str:
        period = self.get_period_display().lower()  # type: ignore[attr-defined]
        return f"{period} budget of ${self.limit_usd:,} for {self.target_label}"

    @property
    def target_name(self) -> str:
        """Whose calls it counts, by name alone: the group's, the person's, the token's."""
        if self.scope == Scope.GROUP and self.group is not None:
            return self.group.name
        if self.scope == Scope.PERSON and self.user is not None:
            return self.user.get_username()
        if self.scope == Scope.TOKEN and self.token is not None:
            return self.token.name
        return "Everyone"

    @property
    def target_label(self) -> str:
        if self.scope == Scope.GROUP and self.group is not None:
            return f"group {self.group.name}"
        if self.scope == Scope.PERSON and self.user is not None:
            return self.user.get_username()
        if self.scope == Scope.TOKEN and self.token is not None:
            return f"token {self.token.name}"
        return "everyone"

    @property
    def limit_nano(self) -> int:
        return int(self.limit_usd * NANO)

    def period_start(self, now: datetime) -> datetime:
        return Period(self.period).start(now)

    def resets_at(self, now: datetime) -> datetime:
        return Period(self.period).end(now)


class BudgetCounter(models.Model):
    """A budget's spend in one period."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="counters")
    period_start = models.DateTimeField()
    spent_nano = models.BigIntegerField(default=0)
    reserved_nano = models.BigIntegerField(default=0)
    # Of spent_nano, what calls whose cost could not be read were counted as.
    unknown_nano = models.BigIntegerField(default=0)
    # When a soft budget was first passed in this period (its audit entry was written then).
    passed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start"], name="spend_counter_one_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget} from {self.period_start:%Y-%m-%d}"


class BudgetHold(models.Model):
    """What one server process holds on a counter: the worst cases of its running calls,
    what finished calls cost until their usage rows are written, and a lease it may hand to
    its next calls without asking the database (while the budget is far from its limit)."""

    holder = models.BigIntegerField()  # the process's random id
    counter = models.ForeignKey(BudgetCounter, on_delete=models.CASCADE, related_name="holds")
    amount_nano = models.BigIntegerField()
    # A hold outlives its process only if the process died: past this time (renewed each
    # time the process takes more) the next call on the counter gives it back.
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["holder", "counter"], name="spend_hold_one_per_holder")
        ]
        indexes = [models.Index(fields=["counter", "expires_at"], name="spend_hold_expiry")]

    def __str__(self) -> str:
        return f"holder {self.holder} holds {self.amount_nano} nano-USD"

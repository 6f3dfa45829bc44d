"""Budgets and rate limits: how much may be spent or used, by whom, per period, and what has
been.

A budget caps spend in USD per day, week or month. A rate limit is the same thing in another
unit: requests or tokens per minute, or calls running at once. Both are rows of one table and
share its counters and holds, so a call is checked against all of them in one step.

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
# The one "period" of a cap on calls running at once.
ALWAYS = datetime(2000, 1, 1, tzinfo=UTC)


class Unit(models.TextChoices):
    """What a row of the budgets table counts. Its index in ``UNITS`` (from 1) is its place in
    the amounts a call asks the counters for."""

    USD = "usd", "Spend (USD)"
    REQUESTS = "requests", "Requests per minute"
    TOKENS = "tokens", "Tokens per minute"
    CALLS = "calls", "Concurrent calls"

    @property
    def period(self) -> str:
        """A rate limit's one period (a budget's is chosen)."""
        return Period.AT_ONCE if self is Unit.CALLS else Period.MINUTE


class Scope(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    GROUP = "group", "Group"
    PERSON = "person", "Person"
    TOKEN = "token", "Platform token"


class Period(models.TextChoices):
    DAY = "day", "Daily"
    WEEK = "week", "Weekly"
    MONTH = "month", "Monthly"
    MINUTE = "minute", "Per minute"
    AT_ONCE = "at_once", "At once"  # calls running at the same time: no period ends

    def start(self, now: datetime) -> datetime:
        """The start of the period ``now`` is in, in UTC (weeks start on Monday)."""
        if self is Period.MINUTE:
            return now.astimezone(UTC).replace(second=0, microsecond=0)
        if self is Period.AT_ONCE:
            return ALWAYS
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.DAY:
            return day
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def end(self, now: datetime) -> datetime:
        """When the period ``now`` is in ends: the next one's start (its reset)."""
        start = self.start(now)
        if self is Period.MINUTE:
            return start + timedelta(minutes=1)
        if self is Period.AT_ONCE:
            return now
        if self is Period.DAY:
            return start + timedelta(days=1)
        if self is Period.WEEK:
            return start + timedelta(days=7)
        days = calendar.monthrange(start.year, start.month)[1]
        return start + timedelta(days=days)


UNITS = list(Unit)
RATE_UNITS = [Unit.REQUESTS, Unit.TOKENS, Unit.CALLS]
BUDGET_PERIODS = [Period.DAY, Period.WEEK, Period.MONTH]


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
            order, "group__name", "user__username", "token__name", "unit", "period", "id"
        )


class BudgetManager(models.Manager["Budget"]):
    """Spend budgets only (``Budget.all_units``: rate limits too)."""

    def get_queryset(self) -> BudgetQuerySet:
        return BudgetQuerySet(self.model, using=self._db).filter(unit=Unit.USD)

    def applying_to(self, user_id: int, token_id: int | None) -> BudgetQuerySet:
        return self.get_queryset().applying_to(user_id, token_id)

    def in_display_order(self) -> BudgetQuerySet:
        return self.get_queryset().in_display_order()


class Budget(models.Model):
    """A cap on what calls may spend or use in a period: a spend budget (``unit`` usd), or a
    rate limit (see ``RateLimit``)."""

    unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.USD)
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
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1000000000"))],
    )
    # A rate limit's: requests or tokens per minute, or calls at once.
    limit_count = models.BigIntegerField(
        "limit",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000_000_000)],
    )
    hard = models.BooleanField(
        "hard limit",
        default=True,
        help_text="Hard: calls that would pass the limit are refused before they reach the "
        "provider. Soft: calls go on; the overrun is shown and recorded in the audit log.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BudgetManager()
    all_units = BudgetQuerySet.as_manager()

    class Meta:
        base_manager_name = "all_units"
        constraints = [
            models.CheckConstraint(
                name="spend_budget_limit_matches_unit",
                condition=(
                    Q(unit="usd", limit_usd__isnull=False, limit_count=None)
                    | (
                        Q(unit__in=["requests", "tokens", "calls"], limit_usd=None)
                        & Q(limit_count__isnull=False)
                    )
                ),
            ),
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
                fields=["unit", "period"],
                condition=Q(scope="everyone"),
                name="spend_budget_one_everyone",
            ),
            models.UniqueConstraint(
                fields=["group", "unit", "period"],
                condition=Q(scope="group"),
                name="spend_budget_one_group",
            ),
            models.UniqueConstraint(
                fields=["user", "unit", "period"],
                condition=Q(scope="person"),
                name="spend_budget_one_person",
            ),
            models.UniqueConstraint(
                fields=["token", "unit", "period"],
                condition=Q(scope="token"),
                name="spend_budget_one_token",
            ),
        ]

    def __str__(self) -> str:
        if self.unit != Unit.USD:
            return f"{self.limit_words} limit for {self.target_label}"
        period = self.get_period_display().lower()  # type: ignore[attr-defined]
        return f"{period} budget of ${self.limit_usd:,} for {self.target_label}"

    @property
    def limit_words(self) -> str:
        """ "$200.00", "60 requests per minute", "4 concurrent calls"."""
        if self.unit == Unit.USD:
            return f"${self.limit_usd:,}"
        if self.unit == Unit.CALLS:
            return f"{self.limit_count:,} concurrent call{'s' if self.limit_count != 1 else ''}"
        noun = "requests" if self.unit == Unit.REQUESTS else "tokens"
        return f"{self.limit_count:,} {noun} per minute"

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
    def cap(self) -> int:
        """The limit in the counters' unit: nano-USD, requests, tokens or calls."""
        if self.unit == Unit.USD:
            return int(self.limit_usd * NANO)  # type: ignore[operator]
        return self.limit_count or 0

    def period_start(self, now: datetime) -> datetime:
        return Period(self.period).start(now)

    def resets_at(self, now: datetime) -> datetime:
        return Period(self.period).end(now)


class RateLimitManager(models.Manager["RateLimit"]):
    def get_queryset(self) -> BudgetQuerySet:  # type: ignore[override]
        return BudgetQuerySet(self.model, using=self._db).exclude(unit=Unit.USD)

    def in_display_order(self) -> BudgetQuerySet:
        return self.get_queryset().in_display_order()


class RateLimit(Budget):
    """Requests or tokens per minute, or calls running at once, for everyone (the whole
    deployment), a group (its members' calls together), a person or a platform token. Always
    hard: a call over it is refused."""

    objects = RateLimitManager()  # type: ignore[assignment, misc]

    class Meta:
        proxy = True


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

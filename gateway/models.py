from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Self, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate


class CallRoute(models.TextChoices):
    IN_PROCESS = "in_process", "In process (chats)"
    EXTERNAL = "external", "External client"


# Calls that spent tokens at prices nobody knows: counted apart, never as free.
UNPRICED = Q(cost_usd__isnull=True) & (Q(input_tokens__gt=0) | Q(output_tokens__gt=0))


def _call_sums() -> dict[str, Any]:
    return {
        "calls": Count("id"),
        "failed": Count("id", filter=~Q(error_kind="")),
        "input": Coalesce(Sum("input_tokens"), 0),
        "output": Coalesce(Sum("output_tokens"), 0),
        "cache_read": Coalesce(Sum("cache_read_tokens"), 0),
        "cache_write": Coalesce(Sum("cache_write_tokens"), 0),
        "web_searches": Coalesce(Sum("web_searches"), 0),
        # NULL when no call had a known price; the calls that spent tokens at unknown
        # prices are counted apart, so a total is never shown as complete when it is not.
        "cost": Sum("cost_usd"),
        "unpriced": Count("id", filter=UNPRICED),
    }


_Row = TypeVar("_Row", bound=models.Model)


class _UsageReport(models.QuerySet[_Row]):
    """The Usage pages' filters and sums, on calls and on their daily sums alike."""

    # The sums, under the same names for both: calls, failed, input, ..., cost, unpriced.
    sums: Callable[[], dict[str, Any]]

    def totals(self) -> dict[str, Any]:
        return self.order_by().aggregate(**self.sums())

    def grouped_by(self, *fields: str) -> list[dict[str, Any]]:
        """The sums per distinct value of ``fields``, the costliest first."""
        return list(
            self.order_by()
            .values(*fields)
            .annotate(**self.sums())
            .order_by(F("cost").desc(nulls_last=True), "-calls", *fields)
        )

    def for_person(self, username: str) -> Self:
        return self.filter(username=username)

    def for_provider(self, provider_type: str) -> Self:
        return self.filter(provider_type=provider_type)

    def for_model(self, identifier: str) -> Self:
        return self.filter(model_identifier=identifier)


class UsageQuerySet(_UsageReport["UsageRecord"]):
    sums = staticmethod(_call_sums)

    def on_days(self, since: date | None, until: date | None) -> UsageQuerySet:
        """Calls from the start of ``since`` to the end of ``until`` (days in UTC)."""
        calls = self
        if since is not None:
            calls = calls.filter(created_at__gte=datetime.combine(since, time.min, UTC))
        if until is not None:
            calls = calls.filter(created_at__lte=datetime.combine(until, time.max, UTC))
        return calls

    def succeeded(self) -> UsageQuerySet:
        return self.filter(error_kind="")

    def failed(self) -> UsageQuerySet:
        return self.exclude(error_kind="")


class UsageRecord(models.Model):
    """One call through the AI Gateway: who, with which key, what it cost.

    Written in batches off the request path. Rows outlive what they point to (a deleted user,
    token, provider or model leaves the row, with its labels), so the foreign keys carry no
    database constraint; Django still sets them to NULL when the row they point to goes.
    """

    created_at = models.DateTimeField(db_index=True)
    # No index of its own: the (user, created_at) index below serves lookups by user too,
    # and every index costs each batch of inserts.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    api_key = models.ForeignKey(
        "tokens.ApiToken", null=True, on_delete=models.SET_NULL, db_constraint=False
    )
    provider = models.ForeignKey(
        "providers.Provider", null=True, on_delete=models.SET_NULL, db_constraint=False
    )
    provider_type = models.CharField(max_length=32)
    model = models.ForeignKey(
        "models_catalog.ModelConfig", null=True, on_delete=models.SET_NULL, db_constraint=False
    )
    # The model identifier as the caller sent it.
    model_identifier = models.CharField(max_length=255, blank=True)
    endpoint = models.CharField(max_length=64)
    streamed = models.BooleanField(default=False)
    credential_source = models.CharField(max_length=16, blank=True)
    route = models.CharField(max_length=16, choices=CallRoute.choices)
    user_agent = models.CharField(max_length=255, blank=True)
    status = models.PositiveSmallIntegerField()
    # Empty for a successful call; otherwise e.g. upstream_error, upstream_timeout,
    # client_disconnected, stream_broken, not_allowed.
    error_kind = models.CharField(max_length=32, blank=True)
    latency_ms = models.FloatField()
    ttfb_ms = models.FloatField(null=True)
    # Input excludes cached tokens; cache reads and writes are counted on their own.
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    # Web searches the provider ran for the call, billed per search. A default in the database
    # too: a worker of the version before, still running during an upgrade, leaves it out.
    web_searches = models.PositiveIntegerField(default=0, db_default=0)
    # What the call ran under that changed its price, comma-separated (PRICE_VARIANTS); empty
    # for the usual prices. A database default too, as for web_searches.
    price_variants = models.CharField(max_length=64, blank=True, default="", db_default="")
    # USD; NULL when the model's prices are unknown (never a made-up 0).
    cost_usd = models.DecimalField(max_digits=18, decimal_places=9, null=True)
    # The label of the central key that served the call (several keys per provider); empty
    # for a personal key. A database default too, as for web_searches.
    key_label = models.CharField(max_length=40, blank=True, default="", db_default="")
    # The model the caller asked for, as ``type/identifier``, when its provider failed the
    # call and a fallback model (this row's provider and model) answered it; else empty.
    fallback_from = models.CharField(max_length=300, blank=True, default="", db_default="")

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="gateway_usage_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.username or '?'} {self.provider_type}/{self.model_identifier} {self.status}"

    @property
    def priced_as(self) -> str:
        """The price variants in words ("fast mode, US-only inference"); "" for none."""
        if not self.price_variants:
            return ""
        names = self.price_variants.split(",")
        return ", ".join(PRICE_VARIANTS.get(name, name) for name in names)


# A call's price variants (gateway.wire.Usage.price_variants), as the Usage tab names them.
PRICE_VARIANTS = {
    "flex": "flex tier",
    "priority": "priority tier",
    "ultrafast": "ultrafast tier",
    "fast": "fast mode",
    "us_inference": "US-only inference",
    "unknown": "a service tier with no price here",
}


def _day_sums() -> dict[str, Any]:
    """The same sums as ``_call_sums()``, over days already summed."""
    return {
        "calls": Coalesce(Sum("call_count"), 0),
        "failed": Coalesce(Sum("call_count", filter=Q(is_failure=True)), 0),
        "input": Coalesce(Sum("input_tokens"), 0),
        "output": Coalesce(Sum("output_tokens"), 0),
        "cache_read": Coalesce(Sum("cache_read_tokens"), 0),
        "cache_write": Coalesce(Sum("cache_write_tokens"), 0),
        "web_searches": Coalesce(Sum("web_searches"), 0),
        "cost": Sum("cost_usd", filter=Q(priced_calls__gt=0)),
        "unpriced": Coalesce(Sum("unpriced_calls"), 0),
    }


class UsageDayQuerySet(_UsageReport["UsageDay"]):
    sums = staticmethod(_day_sums)

    def on_days(self, since: date | None, until: date | None) -> UsageDayQuerySet:
        days = self
        if since is not None:
            days = days.filter(day__gte=since)
        if until is not None:
            days = days.filter(day__lte=until)
        return days

    def succeeded(self) -> UsageDayQuerySet:
        return self.filter(is_failure=False)

    def failed(self) -> UsageDayQuerySet:
        return self.filter(is_failure=True)

    def rebuild(self) -> int:
        """Sum the daily rows afresh from the usage rows, as the trigger would have: after
        rows were deleted by hand, or restored without the trigger. The gateway's inserts
        wait meanwhile, so none is counted twice or missed. Returns the number of days."""
        # Each annotation is named after the UsageDay field it fills, prefixed (a name of
        # the usage table's own, such as input_tokens, cannot be an annotation there).
        summed = (
            UsageRecord.objects.order_by()
            .values(
                "username",
                "provider_type",
                "model_identifier",
                summed_day=TruncDate("created_at", tzinfo=UTC),
                summed_user_id=Coalesce("user_id", 0),
                summed_is_failure=ExpressionWrapper(
                    ~Q(error_kind=""), output_field=models.BooleanField()
                ),
            )
            .annotate(
                summed_call_count=Count("id"),
                summed_input_tokens=Sum("input_tokens"),
                summed_output_tokens=Sum("output_tokens"),
                summed_cache_read_tokens=Sum("cache_read_tokens"),
                summed_cache_write_tokens=Sum("cache_write_tokens"),
                summed_web_searches=Sum("web_searches"),
                summed_cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
                summed_priced_calls=Count("cost_usd"),
                summed_unpriced_calls=Count("id", filter=UNPRICED),
            )
        )
        with transaction.atomic():
            if connection.vendor == "postgresql":  # conflicts with every insert
                with connection.cursor() as cursor:
                    cursor.execute(f'LOCK TABLE "{UsageRecord._meta.db_table}" IN SHARE MODE')
            # On SQLite this first write takes the database's write lock.
            self.model._default_manager.all().delete()
            days = [
                self.model(**{name.removeprefix("summed_"): value for name, value in group.items()})
                for group in summed.iterator(chunk_size=2_000)
            ]
            self.model._default_manager.bulk_create(days, batch_size=2_000)
        return len(days)


class UsageDay(models.Model):
    """The usage rows summed per day (UTC), person, model and outcome: what the usage pages
    and `manage.py usage_report` read, so that they cost the same at ten million calls as at
    ten thousand.

    Kept by the database itself: a trigger on the usage table adds each inserted row (each
    batch, on PostgreSQL) in the same transaction, whoever inserts it; `usage_prune` deletes
    the days it deletes. See migration 0003.
    """

    day = models.DateField()
    # The person's id when the calls were made (0: none); a number, not a foreign key, so
    # that the trigger needs no lookup.
    user_id = models.BigIntegerField(default=0)
    username = models.CharField(max_length=150, blank=True)
    provider_type = models.CharField(max_length=32)
    model_identifier = models.CharField(max_length=255, blank=True)
    is_failure = models.BooleanField()
    call_count = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    web_searches = models.BigIntegerField(default=0, db_default=0)
    # The known costs' sum; ``priced_calls`` says whether there was any (else it is unknown).
    cost_usd = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    priced_calls = models.BigIntegerField(default=0)
    # Calls that spent tokens at unknown prices.
    unpriced_calls = models.BigIntegerField(default=0)

    objects = UsageDayQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "user_id",
                    "username",
                    "provider_type",
                    "model_identifier",
                    "is_failure",
                ],
                name="gateway_usageday_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.username} {self.provider_type}/{self.model_identifier}"

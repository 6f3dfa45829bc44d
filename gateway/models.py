from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce


class CallRoute(models.TextChoices):
    IN_PROCESS = "in_process", "In process (chats)"
    EXTERNAL = "external", "External client"


def _sums() -> dict[str, Any]:
    spent_tokens = Q(input_tokens__gt=0) | Q(output_tokens__gt=0)
    return {
        "calls": Count("id"),
        "failed": Count("id", filter=~Q(error_kind="")),
        "input": Coalesce(Sum("input_tokens"), 0),
        "output": Coalesce(Sum("output_tokens"), 0),
        "cache_read": Coalesce(Sum("cache_read_tokens"), 0),
        "cache_write": Coalesce(Sum("cache_write_tokens"), 0),
        # NULL when no call had a known price; the calls that spent tokens at unknown
        # prices are counted apart, so a total is never shown as complete when it is not.
        "cost": Sum("cost_usd"),
        "unpriced": Count("id", filter=Q(cost_usd__isnull=True) & spent_tokens),
    }


class UsageQuerySet(models.QuerySet["UsageRecord"]):
    def on_days(self, since: date | None, until: date | None) -> UsageQuerySet:
        """Calls from the start of ``since`` to the end of ``until`` (days in UTC)."""
        calls = self
        if since is not None:
            calls = calls.filter(created_at__gte=datetime.combine(since, time.min, UTC))
        if until is not None:
            calls = calls.filter(created_at__lte=datetime.combine(until, time.max, UTC))
        return calls

    def totals(self) -> dict[str, Any]:
        return self.order_by().aggregate(**_sums())

    def grouped_by(self, *fields: str) -> list[dict[str, Any]]:
        """The sums per distinct value of ``fields``, the costliest first."""
        return list(
            self.order_by()
            .values(*fields)
            .annotate(**_sums())
            .order_by(F("cost").desc(nulls_last=True), "-calls", *fields)
        )


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
    # USD; NULL when the model's prices are unknown (never a made-up 0).
    cost_usd = models.DecimalField(max_digits=18, decimal_places=9, null=True)

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="gateway_usage_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.username or '?'} {self.provider_type}/{self.model_identifier} {self.status}"

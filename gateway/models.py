from __future__ import annotations

from django.conf import settings
from django.db import models


class CallRoute(models.TextChoices):
    IN_PROCESS = "in_process", "In process (chats)"
    EXTERNAL = "external", "External client"


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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="gateway_usage_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.username or '?'} {self.provider_type}/{self.model_identifier} {self.status}"

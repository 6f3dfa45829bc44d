from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .token_format import display_prefix


class TokenKind(models.TextChoices):
    API = "api", "API token"
    SESSION = "session", "Browser session"


class InactiveReason(models.TextChoices):
    REVOKED = "revoked", "revoked"
    EXPIRED = "expired", "expired"
    USER_DEACTIVATED = "user_deactivated", "its user is deactivated"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def for_user(self, user: Any) -> ApiTokenQuerySet:
        """The only way views reach tokens: a user sees their own and nobody else's."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)

    def active(self, now: datetime | None = None) -> ApiTokenQuerySet:
        now = now or timezone.now()
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            revoked_at__isnull=True,
            user__is_active=True,
        )


class ApiToken(models.Model):
    """A platform API token: what every model call is attributed to.

    ``api`` tokens are created by a user for tools and agents; a ``session`` token is created
    at browser sign-in and ends with that session, so browser requests have one too.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=TokenKind.choices, default=TokenKind.API)
    lookup_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    # For sessions: which browser and address signed in (shown in the sessions list).
    client_label = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(kind="api", revoked_at__isnull=True),
                name="tokens_active_api_token_name_per_user",
                violation_error_message="You already have an active token with this name.",
            )
        ]
        indexes = [models.Index(fields=["user", "kind"], name="tokens_user_kind")]

    def __str__(self) -> str:
        return f"{self.name} ({display_prefix(self.lookup_id)})"

    @property
    def display_prefix(self) -> str:
        return display_prefix(self.lookup_id)

    def inactive_reason(self, now: datetime | None = None) -> InactiveReason | None:
        """None while the token may be used; otherwise why not. Needs ``user`` loaded."""
        if self.revoked_at is not None:
            return InactiveReason.REVOKED
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return InactiveReason.EXPIRED
        if not self.user.is_active:
            return InactiveReason.USER_DEACTIVATED
        return None

    @property
    def is_active(self) -> bool:
        return self.inactive_reason() is None

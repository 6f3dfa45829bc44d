from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from providers.crypto import EncryptedSecretField
from providers.models import Provider


class UserKeyQuerySet(models.QuerySet["UserKey"]):
    def for_user(self, user: Any) -> UserKeyQuerySet:
        """The only way views reach keys: a user sees their own and nobody else's."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)


class UserKey(models.Model):
    """A developer's own key for one provider (BYOK).

    Kept while the provider is disabled or stops allowing user keys (just not used or shown),
    so it comes back when the admin allows user keys again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys"
    )
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="user_keys")
    api_key = EncryptedSecretField("API key")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "user key"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "provider"], name="userkeys_one_key_per_user_and_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user}'s {self.provider.label} key"

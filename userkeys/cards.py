"""What the API Keys page shows for one provider: the seed's statuses and their notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from providers.models import Provider

from .models import UserKey
from .services import accepts_user_keys


class KeyStatus(models.TextChoices):
    KEY_SAVED = "key_saved", "Key saved"
    USING_SHARED_KEY = "using_shared_key", "Using shared key"
    NO_KEY = "no_key", "No key"
    NEEDS_REENTRY = "needs_reentry", "Key needs re-entry"


NOTES = {
    KeyStatus.KEY_SAVED: "Your personal key is active and will be used for requests.",
    KeyStatus.USING_SHARED_KEY: (
        "No personal key set, but the central deployment key is available as a fallback."
    ),
    KeyStatus.NO_KEY: "You must add a personal key before you can use this provider.",
    KeyStatus.NEEDS_REENTRY: (
        "Your saved key can no longer be read by the server. Save it again to use it."
    ),
}


@dataclass
class KeyCard:
    provider: Provider
    key: UserKey | None
    form: Any = None
    just_saved: bool = False
    just_removed: bool = False
    confirm_remove: bool = False
    test_result: Any = None
    # The test ran right after the key was saved (its result says "Key saved" first).
    tested_on_save: bool = False

    @property
    def status(self) -> KeyStatus:
        if self.key is not None and self.key.api_key is not None:
            if self.key.api_key.needs_reentry:
                return KeyStatus.NEEDS_REENTRY
            return KeyStatus.KEY_SAVED
        if self.provider.central_key_covers_users_without_a_key:
            return KeyStatus.USING_SHARED_KEY
        return KeyStatus.NO_KEY

    @property
    def note(self) -> str:
        if (
            self.status == KeyStatus.NEEDS_REENTRY
            and self.provider.central_key_covers_users_without_a_key
        ):
            return NOTES[self.status] + " Until then the shared key is used."
        return NOTES[self.status]

    @property
    def removal_consequence(self) -> str:
        if self.provider.central_key_covers_users_without_a_key:
            return "After removal, requests use the shared deployment key."
        return (
            f"After removal, {self.provider.label} is unavailable to you until you add a new "
            "personal key."
        )


def cards_for(user: Any) -> dict[int, KeyCard]:
    """One card per provider that takes personal keys, in two queries."""
    providers = [p for p in Provider.objects.enabled().filter(user_keys_allowed=True)]
    keys = {k.provider_id: k for k in UserKey.objects.for_user(user)}
    return {p.pk: KeyCard(p, keys.get(p.pk)) for p in providers if accepts_user_keys(p)}

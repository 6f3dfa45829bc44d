"""Credential resolution: for a user and a provider, which key to use, or why none.

Reproduces the seed's key-policy truth table:

| central | user keys | fallback | user has key | result             |
| on      | off       | -        | -            | central key        |
| off     | on        | -        | yes          | user's key         |
| off     | on        | -        | no           | unavailable        |
| on      | on        | off      | yes          | user's key         |
| on      | on        | off      | no           | unavailable        |
| on      | on        | on       | yes          | user's key         |
| on      | on        | on       | no           | central key        |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from providers.crypto import REDACTED, Secret
from providers.models import Provider


class CredentialSource(StrEnum):
    USER = "user"
    CENTRAL = "central"


class UnavailableReason(StrEnum):
    # The developer can fix it: add a personal key in Settings -> API Keys.
    USER_API_KEY_REQUIRED = "user_api_key_required"
    # Only an administrator can fix it.
    MISSING_API_KEY = "missing_api_key"
    PROVIDER_DISABLED = "provider_disabled"

    @property
    def user_can_fix(self) -> bool:
        return self is UnavailableReason.USER_API_KEY_REQUIRED


@dataclass(frozen=True)
class Credential:
    """The key to call ``provider`` with. Never shows the key in any default string form."""

    provider: Provider
    source: CredentialSource
    secret: Secret

    def __repr__(self) -> str:
        return (
            f"Credential(provider={self.provider.type!r}, source={self.source.value!r}, "
            f"secret={REDACTED!r})"
        )

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("credentials are not picklable")


@dataclass(frozen=True)
class Unavailable:
    provider: Provider
    reason: UnavailableReason


Resolution = Credential | Unavailable


def decide(
    *,
    enabled: bool,
    central_key_enabled: bool,
    user_keys_allowed: bool,
    central_key_fallback: bool,
    central_key_usable: bool,
    user_key_usable: bool,
) -> CredentialSource | UnavailableReason:
    """The truth table itself, on plain flags: routing and the AI Gateway both decide here."""
    if not enabled:
        return UnavailableReason.PROVIDER_DISABLED
    if user_keys_allowed and user_key_usable:
        return CredentialSource.USER
    central_covers = central_key_enabled and (not user_keys_allowed or central_key_fallback)
    if central_covers and central_key_usable:
        return CredentialSource.CENTRAL
    if user_keys_allowed:
        return UnavailableReason.USER_API_KEY_REQUIRED
    return UnavailableReason.MISSING_API_KEY


def resolve_credential(provider: Provider, user_secret: Secret | None) -> Resolution:
    """Pure decision on data already loaded (so callers control the number of queries).

    ``user_secret``: the user's stored key for this provider, if any. A stored key that cannot
    be decrypted counts as no key.
    """
    decision = decide(
        enabled=provider.enabled,
        central_key_enabled=provider.central_key_enabled,
        user_keys_allowed=provider.user_keys_allowed,
        central_key_fallback=provider.central_key_fallback,
        central_key_usable=provider.has_usable_key,
        user_key_usable=user_secret is not None and not user_secret.needs_reentry,
    )
    if decision == CredentialSource.USER:
        return Credential(provider, CredentialSource.USER, user_secret)  # type: ignore[arg-type]
    if decision == CredentialSource.CENTRAL:
        central = provider.central_key_for_direct_calls()
        return Credential(provider, CredentialSource.CENTRAL, central)  # type: ignore[arg-type]
    return Unavailable(provider, UnavailableReason(decision))


def resolve_for_user(user: object, provider: Provider) -> Resolution:
    """Resolve with one query for the user's key."""
    from userkeys.models import UserKey

    key = UserKey.objects.for_user(user).filter(provider=provider).only("api_key").first()
    return resolve_credential(provider, key.api_key if key else None)

"""Writes to providers: each one validated, atomic and audited (field names only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import AuditAction
from audit.services import audit_record, key_change
from lib.locks import CATALOG, serialize_in_transaction

from .models import Provider
from .registry import ProviderType

EDITABLE_FIELDS = (
    "base_url",
    "region",
    "enabled",
    "central_key_enabled",
    "user_keys_allowed",
    "central_key_fallback",
)

KEY_UNCHANGED = object()

# Apps above this one (models, user keys) register what must happen, in the same transaction,
# before a provider and everything of it is deleted, and after one is disabled: e.g. the
# default model star moving on.
before_provider_delete: list[Callable[[Provider, Any], Any]] = []
# Each returns a sentence for the admin when it changed something (e.g. where the star went).
after_provider_disabled: list[Callable[[Provider, Any], Any]] = []


@transaction.atomic
def provider_save(
    *,
    provider_type: ProviderType | str,
    actor: Any,
    changes: dict[str, Any],
    api_key: Any = KEY_UNCHANGED,
) -> Provider:
    """Create or update the provider of ``provider_type``.

    ``api_key``: a new raw key, None to clear it, or KEY_UNCHANGED to leave it as it is.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    serialize_in_transaction(CATALOG)
    provider = Provider.objects.select_for_update().filter(type=provider_type).first() or Provider(
        type=provider_type
    )
    creating = provider._state.adding
    was_enabled = provider.enabled and not creating
    before = {name: getattr(provider, name) for name in changes}
    had_key = provider.api_key is not None
    changed = [name for name, value in changes.items() if before[name] != value]
    for name, value in changes.items():
        setattr(provider, name, value)
    diff: dict[str, Any] = {
        name: [None if creating else before[name], changes[name]] for name in changed
    }
    if api_key is not KEY_UNCHANGED:
        if api_key is not None or provider.api_key is not None:
            changed.append("api_key")
            diff["api_key"] = key_change(had_key, api_key is not None, replaced=True)
        provider.set_key(api_key)
    provider.full_clean()
    if not creating and not changed:
        return provider
    try:
        with transaction.atomic():
            provider.save()
    except IntegrityError:  # another admin configured the same type a moment ago
        raise ValidationError(
            f"{provider.label} was just configured by someone else; reload and try again."
        ) from None
    audit_record(
        actor=actor,
        action=AuditAction.CREATE if creating else AuditAction.UPDATE,
        obj=provider,
        changed_fields=changed,
        changes=diff,
    )
    if was_enabled and not provider.enabled:
        results = (hook(provider, actor) for hook in after_provider_disabled)
        provider.side_effects = [str(r.message()) for r in results if r is not None]
    return provider


def provider_set_key(*, provider: Provider, raw_key: str, actor: Any) -> Provider:
    return provider_save(provider_type=provider.type, actor=actor, changes={}, api_key=raw_key)


def provider_clear_key(*, provider: Provider, actor: Any) -> Provider:
    return provider_save(provider_type=provider.type, actor=actor, changes={}, api_key=None)


@transaction.atomic
def provider_delete(*, provider: Provider, actor: Any) -> None:
    serialize_in_transaction(CATALOG)
    for hook in before_provider_delete:
        hook(provider, actor)
    audit_record(actor=actor, action=AuditAction.DELETE, obj=provider)
    provider.delete()

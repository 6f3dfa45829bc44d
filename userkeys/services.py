"""Writes to users' own keys: validated, atomic, audited (never the key itself)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import AuditAction
from audit.services import audit_record, key_change
from lib.locks import serialize_in_transaction
from providers.crypto import Secret
from providers.models import Provider
from providers.validators import validate_api_key

from .models import UserKey


def accepts_user_keys(provider: Provider) -> bool:
    return provider.enabled and provider.user_keys_allowed


@transaction.atomic
def user_key_save(*, user: Any, provider: Provider, raw_key: str, actor: Any) -> UserKey:
    if not accepts_user_keys(provider):
        raise ValidationError({"api_key": f"{provider.label} does not accept personal API keys."})
    try:
        validate_api_key(raw_key)
    except ValidationError as error:
        raise ValidationError({"api_key": error.messages}) from None
    # Two tabs (or a script) saving a first key at once: the second waits, then updates.
    serialize_in_transaction(f"userkeys.{user.pk}.{provider.pk}")
    key = UserKey.objects.select_for_update().filter(user=user, provider=provider).first()
    creating = key is None
    if key is None:
        key = UserKey(user=user, provider=provider)
    key.api_key = Secret(raw_key)
    key.full_clean(exclude=["user", "provider"], validate_unique=False)
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:  # SQLite has no advisory locks: the other save won; update it
        key = UserKey.objects.select_for_update().get(user=user, provider=provider)
        key.api_key = Secret(raw_key)
        key.save()
        creating = False
    audit_record(
        actor=actor,
        action=AuditAction.SET_KEY,
        obj=key,
        changed_fields=["api_key"] if not creating else ["api_key", "provider", "user"],
        changes={"api_key": key_change(not creating, True, replaced=True)},
    )
    return key


@transaction.atomic
def user_key_delete(*, key: UserKey, actor: Any) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.CLEAR_KEY,
        obj=key,
        changes={"api_key": key_change(True, False, replaced=False)},
    )
    key.delete()

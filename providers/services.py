"""Writes to providers: each one validated, atomic and audited (field names only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, key_change
from lib.locks import CATALOG, serialize_in_transaction

from .crypto import Secret
from .models import MAX_CENTRAL_KEYS, Breaker, Provider, ProviderKey
from .registry import ProviderType
from .validators import validate_api_key, validate_key_label

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
    before_label = provider.key_label
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
        if api_key is None and not creating and (further := provider.further_keys.first()):
            _take_the_place_of_the_own_key(provider, further)
            diff["api_key"] = [f"{before_label} cleared", f"{further.key_label} in its place"]
        else:
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


def _take_the_place_of_the_own_key(provider: Provider, further: ProviderKey) -> None:
    """The provider's own key is going: its oldest further key takes its place, label and
    state included, so clearing one key of several never leaves the provider without one."""
    provider.api_key = further.api_key
    for name in (
        "key_label",
        "key_last_used_at",
        "key_cooling_until",
        "key_attention",
        "key_last_error",
        "key_last_error_at",
    ):
        setattr(provider, name, getattr(further, name))
    further.delete()


def _labels_in_use(provider: Provider) -> list[str]:
    own = [provider.key_label] if provider.api_key is not None else []
    return own + list(provider.further_keys.values_list("key_label", flat=True))


@transaction.atomic
def provider_key_add(*, provider: Provider, label: str, raw_key: str, actor: Any) -> Provider:
    """Add a central key (the provider's own when it has none, else a further one)."""
    serialize_in_transaction(CATALOG)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    errors: dict[str, list[str]] = {}
    for field, validate, value in (
        ("key_label", validate_key_label, label),
        ("api_key", validate_api_key, raw_key),
    ):
        try:
            validate(value)
        except ValidationError as error:
            errors[field] = error.messages
    labels = _labels_in_use(provider)
    if "key_label" not in errors and label.casefold() in {x.casefold() for x in labels}:
        errors["key_label"] = [f"{provider.label} already has a key labelled {label!r}."]
    if len(labels) >= MAX_CENTRAL_KEYS:
        errors["api_key"] = [
            f"{provider.label} has {len(labels)} central keys, the most it may have; remove "
            "one first."
        ]
    if errors:
        raise ValidationError(errors)
    if provider.api_key is None:
        provider.set_key(raw_key)
        provider.key_label = label
        provider.save()
        changes = {"api_key": key_change(False, True, replaced=False), "key_label": [None, label]}
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            obj=provider,
            changed_fields=["api_key", "key_label"],
            changes=changes,
        )
        return provider
    further = ProviderKey(provider=provider, key_label=label)
    further.api_key = Secret(raw_key)
    further.save()
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        obj=further,
        changed_fields=["key_label", "api_key"],
        changes={"key_label": [None, label], "api_key": ["not set", "set"]},
    )
    return provider


@transaction.atomic
def provider_key_remove(*, provider: Provider, label: str, actor: Any) -> Provider:
    """Remove the central key labelled ``label``. The last key of a provider whose central
    key is on cannot go (turn the central key off first)."""
    serialize_in_transaction(CATALOG)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    further = provider.further_keys.filter(key_label=label).first()
    if further is not None:
        audit_record(
            actor=actor,
            action=AuditAction.DELETE,
            obj=further,
            changed_fields=["api_key"],
            changes={"api_key": ["set", "cleared"]},
        )
        further.delete()
        return provider
    if provider.api_key is None or provider.key_label != label:
        known = ", ".join(_labels_in_use(provider)) or "none"
        raise ValidationError(
            {"key_label": [f"{provider.label} has no key labelled {label!r} (its keys: {known})."]}
        )
    return provider_save(provider_type=provider.type, actor=actor, changes={}, api_key=None)


def key_attention_clear(*, provider: Provider, label: str, actor: Any) -> None:
    """An admin says a key that needed attention is fine again (fixed at the provider)."""
    for key in provider.central_keys():
        if key.key_label == label and key.key_attention:
            type(key)._default_manager.filter(pk=key.pk).update(key_attention="")
            audit_record(
                actor=actor,
                action=AuditAction.UPDATE,
                obj=key,  # type: ignore[arg-type]
                changed_fields=["key_attention"],
                changes={"key_attention": ["needs attention", "active"]},
            )


def breaker_try_now(*, provider: Provider, model_identifier: str, actor: Any) -> bool:
    """An admin ends a model's pause early: the next call tries the provider (its answer
    closes the breaker, or opens it again). False: it was not paused."""
    now = timezone.now()
    ended = Breaker.objects.filter(
        provider=provider, model_identifier=model_identifier, open_until__gt=now
    ).update(open_until=now, probe_until=None)
    if ended:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            obj=None,
            object_type="providers.breaker",
            object_repr=f"{provider} {model_identifier}: pause ended early",
            changed_fields=["open_until"],
        )
    return bool(ended)

"""Writes to the model catalog: validated, atomic, audited; the default star kept unique."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import AuditAction
from audit.services import audit_record
from lib.locks import CATALOG, serialize_in_transaction
from providers.models import Provider

from .models import (
    ALIAS_TAKEN,
    IDENTIFIER_TAKEN,
    MAX_FALLBACKS,
    OVERRIDABLE_PURPOSES,
    ModelAlias,
    ModelConfig,
    ModelFallback,
    Purpose,
    PurposeModel,
    fallback_problem,
)
from .options import alias_like_pattern, alias_specificity


@dataclass(frozen=True)
class DefaultMoved:
    """The star left ``previous``; it now sits on ``current`` (None: no default)."""

    previous: ModelConfig
    current: ModelConfig | None

    def message(self) -> str:
        if self.current is None:
            return f"{self.previous} was the default model; there is no default model now."
        return f"{self.previous} was the default model; the default is now {self.current}."


@transaction.atomic
def model_save(
    *,
    model: ModelConfig | None,
    provider: Provider,
    fields: dict[str, Any],
    options: dict[str, Any],
    actor: Any,
) -> tuple[ModelConfig, DefaultMoved | None]:
    """Create (model None) or update a model. Disabling the default moves the star on."""
    serialize_in_transaction(CATALOG)
    creating = model is None
    if model is None:
        model = ModelConfig(provider=provider)
    else:
        model = ModelConfig.objects.select_for_update().get(pk=model.pk)
    before = {name: getattr(model, name) for name in fields}
    before_options, before_provider = dict(model.options), model.provider_id
    for name, value in fields.items():
        setattr(model, name, value)
    model.provider = provider
    model.options = options
    model.full_clean()
    changed = [name for name in fields if before.get(name) != getattr(model, name)]
    diff: dict[str, Any] = {
        name: [None if creating else before.get(name), getattr(model, name)] for name in changed
    }
    if model.options != before_options:
        changed.append("options")
        diff["options"] = [None if creating else before_options, model.options]
    if model.provider_id != before_provider:
        changed.append("provider")
        diff["provider"] = [None if creating else str(before_provider), str(provider)]
    if not creating and not changed:
        return model, None
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError:  # the same identifier was saved a moment ago by someone else
        raise ValidationError({"identifier": IDENTIFIER_TAKEN}) from None
    audit_record(
        actor=actor,
        action=AuditAction.CREATE if creating else AuditAction.UPDATE,
        obj=model,
        changed_fields=changed,
        changes=diff,
    )
    moved = None
    if model.is_default and not model.enabled:
        moved = _move_default_from(model, actor=actor)
    return model, moved


@transaction.atomic
def model_set_enabled(*, model: ModelConfig, enabled: bool, actor: Any) -> DefaultMoved | None:
    return model_save(
        model=model,
        provider=model.provider,
        fields={"enabled": enabled},
        options=model.options,
        actor=actor,
    )[1]


@transaction.atomic
def model_set_default(*, model: ModelConfig, actor: Any) -> ModelConfig:
    """Star ``model``. Safe when admins star and disable models at once: every such write
    takes the catalog lock first, and the model is checked again once it is held."""
    serialize_in_transaction(CATALOG)
    model = ModelConfig.objects.select_related("provider").get(pk=model.pk)
    if not (model.enabled and model.provider.enabled):
        what = "its provider is disabled" if model.enabled else "it is disabled"
        raise ValidationError(f"{model} cannot be the default: {what}. Enable it first.")
    if model.is_default:
        return model
    ModelConfig.objects.filter(is_default=True).update(is_default=False)
    ModelConfig.objects.filter(pk=model.pk).update(is_default=True)
    model.is_default = True
    audit_record(
        actor=actor, action=AuditAction.SET_DEFAULT, obj=model, changed_fields=["is_default"]
    )
    return model


@transaction.atomic
def model_clear_default(*, actor: Any) -> None:
    serialize_in_transaction(CATALOG)
    for model in ModelConfig.objects.filter(is_default=True):
        ModelConfig.objects.filter(pk=model.pk).update(is_default=False)
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            obj=model,
            changes={"is_default": [True, False]},
        )


@transaction.atomic
def model_delete(*, model: ModelConfig, actor: Any) -> DefaultMoved | None:
    serialize_in_transaction(CATALOG)
    model = ModelConfig.objects.select_for_update().get(pk=model.pk)
    moved = _move_default_from(model, actor=actor) if model.is_default else None
    audit_record(actor=actor, action=AuditAction.DELETE, obj=model)
    model.delete()
    return moved


def _move_default_from(
    model: ModelConfig, *, actor: Any, leaving_provider: Provider | None = None
) -> DefaultMoved:
    """Give the star to the first usable model left (in list order), or to none.

    Called with the catalog lock held."""
    remaining = ModelConfig.objects.usable().exclude(pk=model.pk).in_display_order()
    if leaving_provider is not None:
        remaining = remaining.exclude(provider=leaving_provider)
    successor = remaining.select_related("provider").first()
    ModelConfig.objects.filter(pk=model.pk).update(is_default=False)
    model.is_default = False
    if successor is not None:
        ModelConfig.objects.filter(pk=successor.pk).update(is_default=True)
        successor.is_default = True
        audit_record(
            actor=actor,
            action=AuditAction.SET_DEFAULT,
            obj=successor,
            changed_fields=["is_default"],
        )
    return DefaultMoved(previous=model, current=successor)


def release_default_of_provider(provider: Provider, actor: Any) -> DefaultMoved | None:
    """Before a provider is deleted, or once it is disabled: move the star off its models, if
    one of them has it, so the default is always usable (or there is none)."""
    default = ModelConfig.objects.filter(provider=provider, is_default=True).first()
    if default is None:
        return None
    return _move_default_from(default, actor=actor, leaving_provider=provider)


@transaction.atomic
def purpose_model_set(*, purpose: Purpose | str, model: ModelConfig | None, actor: Any) -> bool:
    """Point ``purpose`` at ``model`` (None: back to the automatic choice). False: no change."""
    purpose = Purpose(purpose)
    if purpose not in OVERRIDABLE_PURPOSES:
        raise ValidationError(f"{purpose.label} has no model setting of its own.")
    if model is not None and not model.enabled:
        raise ValidationError(
            f"{model} is disabled; enable it before using it for {purpose.label}."
        )
    serialize_in_transaction(CATALOG)
    current = PurposeModel.objects.filter(purpose=purpose).first()
    if current is None and model is None:
        return False
    if current is not None and model is not None and current.model_id == model.pk:
        return False
    if model is None:
        current.delete()  # type: ignore[union-attr]
        label = "automatic"
    else:
        PurposeModel.objects.update_or_create(purpose=purpose, defaults={"model": model})
        label = str(model)
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=None,
        object_type="models_catalog.purposemodel",
        object_repr=f"Model for {purpose.label.lower()}: {label}",
        changed_fields=["model"],
    )
    return True


@transaction.atomic
def alias_set(*, provider: Provider, pattern: str, model: ModelConfig, actor: Any) -> ModelAlias:
    """Answer calls naming ``pattern`` (a name, or a pattern with ``*``) with ``model``:
    a new alias, or the model of an existing one changed."""
    serialize_in_transaction(CATALOG)
    alias = ModelAlias.objects.filter(provider=provider, pattern=pattern).first()
    before = alias.model.identifier if alias is not None else None
    if alias is None:
        alias = ModelAlias(provider=provider, pattern=pattern)
    alias.model = model
    alias.like_pattern = alias_like_pattern(pattern)
    alias.specificity = alias_specificity(pattern)
    alias.full_clean()
    if before == model.identifier:
        return alias
    try:
        with transaction.atomic():
            alias.save()
    except IntegrityError:
        raise ValidationError({"pattern": ALIAS_TAKEN}) from None
    audit_record(
        actor=actor,
        action=AuditAction.CREATE if before is None else AuditAction.UPDATE,
        obj=alias,
        changes={"answered by": [before, model.identifier]},
    )
    return alias


@transaction.atomic
def alias_delete(*, alias: ModelAlias, actor: Any) -> None:
    serialize_in_transaction(CATALOG)
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        obj=alias,
        changes={"answered by": [alias.model.identifier, None]},
    )
    alias.delete()


@transaction.atomic
def model_fallbacks_set(*, model: ModelConfig, fallbacks: list[ModelConfig], actor: Any) -> bool:
    """Give ``model`` these fallbacks, in order (none: no fallback). False: no change."""
    serialize_in_transaction(CATALOG)
    errors = [problem for fb in fallbacks if (problem := fallback_problem(model, fb))]
    if len({fb.pk for fb in fallbacks}) != len(fallbacks):
        errors.append("A model is a fallback once at most.")
    if len(fallbacks) > MAX_FALLBACKS:
        errors.append(f"A model has {MAX_FALLBACKS} fallbacks at most.")
    if errors:
        raise ValidationError({"fallbacks": errors})
    before = [f"{fb.provider.type}/{fb.identifier}" for fb in model.fallbacks]
    after = [f"{fb.provider.type}/{fb.identifier}" for fb in fallbacks]
    if before == after:
        return False
    model.fallback_links.all().delete()
    ModelFallback.objects.bulk_create(
        ModelFallback(model=model, fallback=fb, position=position)
        for position, fb in enumerate(fallbacks)
    )
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=model,
        changed_fields=["fallbacks"],
        changes={"fallbacks": [before, after]},
    )
    return True

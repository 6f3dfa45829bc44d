from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import models

from lib.text import decimal_as_typed

from .models import AuditAction, AuditEntry

COMMAND_ACTOR = "manage.py"


def audit_record(
    *,
    actor: Any,
    action: AuditAction,
    obj: models.Model | None,
    changed_fields: Iterable[str] = (),
    object_repr: str | None = None,
    object_type: str | None = None,
    changes: dict[str, Any] | None = None,
    actor_label: str = COMMAND_ACTOR,
) -> AuditEntry:
    """Record one change. ``actor`` is a user, or None for an operator's command (or what
    ``actor_label`` names: the gateway, say).

    ``obj`` None records a change to something that is not a row (e.g. the keyring).
    """
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else actor_label,
        action=action,
        object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
        object_id=str(obj.pk or "") if obj is not None else "",
        object_repr=(object_repr or str(obj))[:200],
        changed_fields=sorted(set(changed_fields) | set(changes or {})),
        changes={name: [_plain(v) for v in values] for name, values in (changes or {}).items()},
    )


def key_change(before_set: bool, after_set: bool, replaced: bool) -> list[str]:
    """How a secret field changed, in words only (never its value)."""
    old = "set" if before_set else "not set"
    if not after_set:
        return [old, "cleared"]
    return [old, "replaced" if before_set and replaced else "set"]


def _plain(value: Any) -> Any:
    """A price is recorded as it reads (15, not 15.000000 from the database column)."""
    return decimal_as_typed(value) if isinstance(value, Decimal) else value

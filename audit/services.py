from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from .models import AuditAction, AuditEntry

COMMAND_ACTOR = "manage.py"


def audit_record(
    *,
    actor: Any,
    action: AuditAction,
    obj: models.Model,
    changed_fields: Iterable[str] = (),
    object_repr: str | None = None,
) -> AuditEntry:
    """Record one change. ``actor`` is a user, or None for an operator's command."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else COMMAND_ACTOR,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk or ""),
        object_repr=(object_repr or str(obj))[:200],
        changed_fields=sorted(set(changed_fields)),
    )

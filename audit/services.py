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
    obj: models.Model | None,
    changed_fields: Iterable[str] = (),
    object_repr: str | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    """Record one change. ``actor`` is a user, or None for an operator's command.

    ``obj`` None records a change to something that is not a row (e.g. the keyring).
    """
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else COMMAND_ACTOR,
        action=action,
        object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
        object_id=str(obj.pk or "") if obj is not None else "",
        object_repr=(object_repr or str(obj))[:200],
        changed_fields=sorted(set(changed_fields)),
    )

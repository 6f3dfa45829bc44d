from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    SET_KEY = "set_key", "Key set"
    CLEAR_KEY = "clear_key", "Key cleared"
    SET_DEFAULT = "set_default", "Default set"
    ROTATE = "rotate", "Keys re-encrypted"
    REVOKE = "revoke", "Revoked"
    PASSED = "passed", "Limit passed"


class AuditEntry(models.Model):
    """Who changed what, when: field by field, old -> new. A secret field's value is never
    recorded, only that it was "set", "replaced" or "cleared"."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as text so the entry still says who it was after the user is deleted.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200)
    changed_fields = models.JSONField(default=list, blank=True)
    # {field: [old, new]} for the non-secret fields; {"api_key": ["set", "replaced"]} for keys.
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["object_type", "-created_at"], name="audit_type_time"),
            models.Index(fields=["actor_label", "-created_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.get_action_display().lower()} {self.object_repr}"

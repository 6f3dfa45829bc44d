"""Audit entries in words: human names for object types and fields, values as shown."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist

from .models import AuditEntry

SPECIAL_TYPES = {"keyring": "Encryption keyring", "models_catalog.purposemodel": "Model purpose"}
SPECIAL_FIELDS = {"api_key": "API key", "role": "Role", "is_active": "Active", "members": "Members"}


@cache
def type_label(object_type: str) -> str:
    if object_type in SPECIAL_TYPES:
        return SPECIAL_TYPES[object_type]
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(model._meta.verbose_name).capitalize()


@cache
def field_label(object_type: str, field: str) -> str:
    if field in SPECIAL_FIELDS:
        return SPECIAL_FIELDS[field]
    try:
        model = apps.get_model(object_type)
        return str(model._meta.get_field(field).verbose_name).capitalize()
    except (LookupError, ValueError, FieldDoesNotExist):
        return field.replace("_", " ").capitalize()


def shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    text = str(value)
    if "." in text and text.replace(".", "", 1).replace("-", "", 1).isdigit():
        text = text.rstrip("0").rstrip(".")  # 15.000000 -> 15
    return text


def rows(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(field label, old, new) for each change; field names only for entries from before."""
    if entry.changes:
        return [
            (field_label(entry.object_type, field), shown(values[0]), shown(values[1]))
            for field, values in entry.changes.items()
        ]
    return [(field_label(entry.object_type, f), "", "") for f in entry.changed_fields]

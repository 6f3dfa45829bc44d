"""Re-encrypt every stored key (provider and user keys alike) under the keyring's first key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models, transaction

from audit.models import AuditAction
from audit.services import audit_record

from .crypto import EncryptedSecretField, Secret, UndecryptableSecret, get_keyring


@dataclass(frozen=True)
class RotationReport:
    reencrypted: int
    already_current: int
    empty: int


class RotationRefused(Exception):
    def __init__(self, undecryptable: list[str]) -> None:
        self.undecryptable = undecryptable
        super().__init__("cannot decrypt with the current keyring: " + "; ".join(undecryptable))


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedSecretField)
    ]


def rotate_encryption_key(*, actor: Any = None) -> RotationReport:
    """Refuses, changing nothing, when any value cannot be decrypted, and names those rows.

    Idempotent: values already under the first key are left alone.
    """
    primary = get_keyring().primary_id
    with transaction.atomic():
        rows: list[tuple[type[models.Model], models.Model, str, Secret | None]] = [
            (model, obj, field, getattr(obj, field))
            for model, field in encrypted_fields()
            for obj in model._default_manager.select_for_update().only("pk", field).order_by("pk")
        ]
        broken = [
            f"{model._meta.verbose_name} {obj.pk} ({secret.reason})"
            for model, obj, field, secret in rows
            if isinstance(secret, UndecryptableSecret)
        ]
        if broken:
            raise RotationRefused(broken)
        reencrypted = current = empty = 0
        for model, obj, field, secret in rows:
            if secret is None:
                empty += 1
            elif secret.key_id == primary:
                current += 1
            else:
                # A fresh Secret encrypts under the first key when saved.
                model._default_manager.filter(pk=obj.pk).update(**{field: Secret(secret.reveal())})
                reencrypted += 1
        if reencrypted:
            audit_record(
                actor=actor,
                action=AuditAction.ROTATE,
                obj=None,
                object_type="keyring",
                object_repr=f"{reencrypted} stored keys re-encrypted under key id {primary!r}",
            )
    return RotationReport(reencrypted=reencrypted, already_current=current, empty=empty)

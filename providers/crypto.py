"""Encryption at rest for provider and user keys.

Stored form: ``enc:fernet:<key id>:<fernet token>``. The keyring comes from
``settings.ENCRYPTION_KEYS`` ("id:key,id:key"): the first key encrypts, every key decrypts,
and the key id in the ciphertext says which one. Built on ``cryptography``'s Fernet and
MultiFernet rather than django-cryptography, whose Django 5 fork has one key and no key id,
so keys could not rotate without loss.

A value that cannot be decrypted loads as an ``UndecryptableSecret``: the row still renders
("needs re-entry") and saving it again keeps the ciphertext untouched.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .validators import validate_api_key

PREFIX = "enc:fernet:"
REDACTED = "********"


class DecryptionError(Exception):
    """A stored value could not be decrypted. The message never contains the value."""


class Secret:
    """A plaintext key that never shows itself in repr, str, format or a pickle."""

    __slots__ = ("_value", "key_id")

    def __init__(self, value: str, key_id: str | None = None) -> None:
        self._value = value
        # The keyring entry this value was stored under; None for a value not yet saved.
        self.key_id = key_id

    def reveal(self) -> str:
        return self._value

    @property
    def needs_reentry(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret) or isinstance(other, UndecryptableSecret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(type(self))

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")


class UndecryptableSecret(Secret):
    """A stored key the current keyring cannot decrypt. Keeps the ciphertext as it was."""

    __slots__ = ("reason",)

    def __init__(self, ciphertext: str, key_id: str | None, reason: str) -> None:
        super().__init__(ciphertext, key_id)
        self.reason = reason

    @property
    def ciphertext(self) -> str:
        return self._value

    @property
    def needs_reentry(self) -> bool:
        return True

    def reveal(self) -> str:
        raise DecryptionError(self.reason)


@dataclass(frozen=True)
class Keyring:
    ids: tuple[str, ...]
    fernets: tuple[Fernet, ...]

    @classmethod
    def parse(cls, raw: str) -> Keyring:
        ids: list[str] = []
        fernets: list[Fernet] = []
        for position, entry in enumerate(e.strip() for e in raw.split(",") if e.strip()):
            key_id, sep, key = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
                raise ImproperlyConfigured(
                    f"LLMCP_ENCRYPTION_KEYS entry {position + 1} must look like 'id:fernetkey' "
                    "with a letters/digits id."
                )
            if key_id in ids:
                raise ImproperlyConfigured(f"LLMCP_ENCRYPTION_KEYS repeats the key id {key_id!r}.")
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise ImproperlyConfigured(
                    f"LLMCP_ENCRYPTION_KEYS key {key_id!r} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)."
                ) from None
            ids.append(key_id)
        return cls(ids=tuple(ids), fernets=tuple(fernets))

    @property
    def primary_id(self) -> str:
        if not self.ids:
            raise ImproperlyConfigured(
                "LLMCP_ENCRYPTION_KEYS is not set: no key to encrypt provider keys with."
            )
        return self.ids[0]

    def encrypt(self, plaintext: str) -> str:
        primary = self.primary_id
        token = MultiFernet(list(self.fernets)).encrypt(plaintext.encode())
        return f"{PREFIX}{primary}:{token.decode()}"

    def decrypt(self, stored: str) -> str:
        key_id = key_id_of(stored)
        if key_id is None:
            raise DecryptionError("the stored value is not in the encrypted format")
        if key_id not in self.ids:
            raise DecryptionError(f"key id {key_id!r} is not in the keyring")
        token = stored[len(PREFIX) + len(key_id) + 1 :]
        try:
            return self.fernets[self.ids.index(key_id)].decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError(f"the key with id {key_id!r} does not decrypt it") from None

    def load(self, stored: str) -> Secret:
        try:
            return Secret(self.decrypt(stored), key_id_of(stored))
        except DecryptionError as error:
            return UndecryptableSecret(stored, key_id_of(stored), str(error))


def key_id_of(stored: str) -> str | None:
    if not stored.startswith(PREFIX):
        return None
    key_id, sep, _ = stored[len(PREFIX) :].partition(":")
    return key_id if sep and key_id else None


@lru_cache(maxsize=8)
def _keyring_for(raw: str) -> Keyring:
    return Keyring.parse(raw)


def get_keyring() -> Keyring:
    return _keyring_for(settings.ENCRYPTION_KEYS)


if TYPE_CHECKING:
    _TextField = models.TextField[Secret | str | None, Secret | None]
else:
    _TextField = models.TextField


class EncryptedSecretField(_TextField):
    """Holds a ``Secret`` (or None); the column holds only ciphertext. Never query it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", None)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Secret | None:
        if not value:
            return None
        return get_keyring().load(value)

    def to_python(self, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if value == "":
            return None
        if isinstance(value, str) and value.startswith(PREFIX):
            return get_keyring().load(value)
        return Secret(str(value))

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        super().validate(value, model_instance)
        if isinstance(value, Secret) and not value.needs_reentry:
            validate_api_key(value.reveal())

    def get_prep_value(self, value: Any) -> str:
        value = self.to_python(value)
        if value is None:
            return ""
        if isinstance(value, UndecryptableSecret):
            return value.ciphertext
        return get_keyring().encrypt(value.reveal())

    def value_to_string(self, obj: models.Model) -> str:
        return self.get_prep_value(self.value_from_object(obj))

"""Declarative option schemas: one ``OptionSpec`` per option, nothing else to edit.

Forms, validation, the Django admin, command flags and the stored JSON all derive from
these specs, so adding an option to a provider type is one line in ``registry.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError


class OptionKind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    CHOICE = "choice"


OptionValue = int | float | Decimal | bool | str

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    label: str
    kind: OptionKind
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = field(default=())

    @property
    def is_numeric(self) -> bool:
        return self.kind in (OptionKind.INTEGER, OptionKind.NUMBER, OptionKind.DECIMAL)

    def clean(self, raw: Any) -> OptionValue:
        """Coerce ``raw`` (JSON value or text from a form or command) or raise ValidationError."""
        if self.kind is OptionKind.BOOLEAN:
            return self._clean_boolean(raw)
        if self.kind is OptionKind.CHOICE:
            value = str(raw).strip().lower()
            if value not in self.choices:
                raise ValidationError(
                    f"{self.label} must be one of {', '.join(self.choices)}.", code="invalid_choice"
                )
            return value
        number = self._clean_number(raw)
        if self.min is not None and number < Decimal(str(self.min)):
            raise ValidationError(f"{self.label} must be at least {_fmt(self.min)}.", code="min")
        if self.max is not None and number > Decimal(str(self.max)):
            raise ValidationError(f"{self.label} must be at most {_fmt(self.max)}.", code="max")
        if self.kind is OptionKind.INTEGER:
            if number != number.to_integral_value():
                raise ValidationError(f"{self.label} must be a whole number.", code="invalid")
            return int(number)
        if self.kind is OptionKind.DECIMAL:
            return number
        return float(number)

    def _clean_boolean(self, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"{self.label} must be true or false.", code="invalid")

    def _clean_number(self, raw: Any) -> Decimal:
        """A finite Decimal; bounds are checked on it before any conversion, so that a
        10,000-digit input never becomes a 10,000-digit int."""
        if isinstance(raw, bool):
            raise ValidationError(f"{self.label} must be a number.", code="invalid")
        text = str(raw).strip()
        if len(text) > 100:
            raise ValidationError(f"{self.label} must be a number.", code="invalid")
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise ValidationError(f"{self.label} must be a number.", code="invalid")
        return number


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def clean_options(schema: tuple[OptionSpec, ...], data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole options mapping; unknown keys are refused by name. None means unset."""
    by_name = {spec.name: spec for spec in schema}
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, raw in data.items():
        spec = by_name.get(name)
        if spec is None:
            allowed = ", ".join(by_name) or "none"
            errors.setdefault(name, []).append(
                f"Unknown option {name!r} for this provider type (allowed: {allowed})."
            )
            continue
        if raw is None or raw == "":
            continue
        try:
            cleaned[name] = spec.clean(raw)
        except ValidationError as error:
            errors.setdefault(name, []).extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return cleaned

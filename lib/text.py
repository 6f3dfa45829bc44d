"""What may be typed as plain text anywhere: no NUL bytes, control or bidi-override characters.

PostgreSQL cannot store a NUL byte at all, and invisible controls in names and identifiers
make one thing look like another (a bidi override can reverse how a name reads).
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from django.core.exceptions import ValidationError

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
MULTILINE_ALLOWED = frozenset("\n\r\t")


def unsafe_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` that plain text may not hold, or None."""
    for ch in value:
        if multiline and ch in MULTILINE_ALLOWED:
            continue
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def describe(ch: str) -> str:
    if ch == "\x00":
        return "a NUL byte"
    if ch in "\r\n":
        return "a line break"
    if ch == "\t":
        return "a tab"
    if ch in BIDI_CONTROLS:
        return "an invisible text-direction character"
    return f"the control character U+{ord(ch):04X}"


def validate_plain_text(value: str, *, what: str = "This field", multiline: bool = False) -> str:
    ch = unsafe_character(value, multiline=multiline)
    if ch is not None:
        raise ValidationError(f"{what} contains {describe(ch)}; remove it.", code="control")
    return value


def decimal_as_typed(value: Decimal) -> str:
    """A decimal as a person writes it: 15 (not 15.000000 from a column, nor 1.5E+1)."""
    return format(value.normalize(), "f") if value.is_finite() else str(value)

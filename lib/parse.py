"""Parsing what arrives in URLs and form fields, without surprises.

``str.isdigit()`` is true for "²" and "①", which ``int()`` refuses; a 5,000-digit number
exceeds Python's int parsing limit. Row ids are plain ASCII digits that fit a bigint.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1


def parse_id(value: Any) -> int | None:
    """A database id from text, or None for anything else (never an exception)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None

"""How django-axes names the account a failed sign-in was for."""

from __future__ import annotations

from typing import Any

from lib.text import BIDI_CONTROLS

MAX_USERNAME = 150  # Django's own limit; what was typed beyond it names no account


def username_for_throttling(request: Any, credentials: dict[str, Any] | None = None) -> str:
    """The typed username, as something the attempts table can store and compare: NUL bytes
    and control characters dropped (PostgreSQL refuses NUL) and cut to Django's length."""
    if credentials and credentials.get("username") is not None:
        raw = credentials.get("username")
    else:
        raw = getattr(request, "POST", {}).get("username", "")
    text = str(raw or "")
    text = "".join(ch for ch in text if ch.isprintable() and ch not in BIDI_CONTROLS)
    return text[:MAX_USERNAME]

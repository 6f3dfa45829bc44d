"""The platform token format: ``llmcp_<lookup id>_<secret>``.

The lookup id (8 characters) finds the row; only a SHA-256 of the whole token is stored and
compared in constant time. Tokens carry 256 bits of randomness, so a fast hash is enough (as
for GitHub's and Healthchecks' tokens): there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

from lib.query import PLATFORM_TOKEN_PREFIX

TOKEN_PREFIX = PLATFORM_TOKEN_PREFIX
LOOKUP_LENGTH = 8
_LOOKUP_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN_LENGTH = len(TOKEN_PREFIX) + LOOKUP_LENGTH + 1 + 43


def generate_token() -> tuple[str, str]:
    """A new (lookup id, full token). The full token is shown once and never stored."""
    lookup_id = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))
    return lookup_id, f"{TOKEN_PREFIX}{lookup_id}_{secrets.token_urlsafe(32)}"


_SHAPE = re.compile(rf"{TOKEN_PREFIX}([a-z0-9]{{{LOOKUP_LENGTH}}})_.{{43}}", re.ASCII)


def lookup_id_of(raw: str) -> str | None:
    """The lookup id of something shaped like a token, else None (no database query needed)."""
    if len(raw) != _TOKEN_LENGTH:
        return None
    shaped = _SHAPE.fullmatch(raw)
    return shaped.group(1) if shaped else None


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(raw).encode(), stored_hash.encode())


def display_prefix(lookup_id: str) -> str:
    """What lists show so a user can tell tokens apart: not enough to use one."""
    return f"{TOKEN_PREFIX}{lookup_id}…"

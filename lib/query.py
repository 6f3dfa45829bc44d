"""Query-string parameters that carry a credential: named as one (Google's ``key``, OAuth's
``access_token``), or holding a platform token whatever their name (``?token=llmcp_…``).
They are never sent on to a provider, never read as a platform token (that belongs in a
header, not in a URL that proxies keep) and never written to a log."""

from __future__ import annotations

from urllib.parse import unquote_plus

CREDENTIAL_PARAMETERS = frozenset({"key", "api-key", "api_key", "access_token"})
# How every platform token starts (tokens.token_format takes it from here: lib imports no app).
PLATFORM_TOKEN_PREFIX = "llmcp_"
HIDDEN = "[hidden]"


def names_a_credential(part: str) -> bool:
    """Whether one ``name=value`` part of a query string carries a credential: its name read
    as a provider reads it (percent-decoded, any case), or a platform token in its value
    (decoded, any case, anywhere in it: ``Bearer llmcp_…`` too), or in its name."""
    if unquote_plus(part.partition("=")[0]).lower() in CREDENTIAL_PARAMETERS:
        return True
    decoded = part
    for _ in range(3):  # encoded more than once, it is still the token to a reader of logs
        if PLATFORM_TOKEN_PREFIX in decoded.lower():
            return True
        if "%" not in decoded and "+" not in decoded:
            return False
        decoded = unquote_plus(decoded)
    return PLATFORM_TOKEN_PREFIX in decoded.lower()


def without_credentials(query: str) -> str:
    """The query without its credential parameters; the rest as it came."""
    return "&".join(part for part in query.split("&") if part and not names_a_credential(part))


def hide_credentials(target: str) -> str:
    """A request target (path and query) for a log line: each credential's value hidden,
    its name kept so that the reader sees one was sent."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = [
        f"{part.partition('=')[0]}={HIDDEN}" if names_a_credential(part) else part
        for part in query.split("&")
    ]
    return f"{path}?{'&'.join(parts)}"

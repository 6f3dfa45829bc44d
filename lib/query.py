"""Query-string parameters that carry a credential (Google's ``key``, OAuth's
``access_token``). They are never sent on to a provider, never read as a platform token
(that belongs in a header, not in a URL that proxies keep) and never written to a log."""

from __future__ import annotations

from urllib.parse import unquote_plus

CREDENTIAL_PARAMETERS = frozenset({"key", "api-key", "api_key", "access_token"})
HIDDEN = "[hidden]"


def names_a_credential(part: str) -> bool:
    """Whether one ``name=value`` part of a query string carries a credential, its name read
    as a provider reads it (percent-decoded, any case)."""
    return unquote_plus(part.partition("=")[0]).lower() in CREDENTIAL_PARAMETERS


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

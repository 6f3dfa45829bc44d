"""Fallback models: where a call goes when its model's provider fails it before the first
byte was passed back (every central key out, the breaker open, a 5xx, no answer).

The model's fallbacks come with the call's one query (``CallRow.fallbacks``); each one tried
costs one more lookup (its provider, key policy for the caller, prices), on the failure path
only. A fallback is taken as the caller would be sent there: its provider's key policy for
this person, its breaker, its prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import CallRow

# Upstream answers a fallback may take over: the provider failed (5xx, Anthropic's 529) or
# every central key was out (429; 401 and 403 when the keys were the central ones).
FAILED = frozenset((500, 502, 503, 504, 529))
KEYS_OUT = frozenset((401, 403, 429))


def parse_fallbacks(text: str | None) -> list[tuple[str, str]]:
    """(provider type, identifier) of each fallback, in order."""
    if not text:
        return []
    return [tuple(line.split("\t", 1)) for line in text.split("\n")]  # type: ignore[misc]


def falls_back_on(status: int, central: bool) -> bool:
    return status in FAILED or (central and status in KEYS_OUT)


@dataclass(slots=True)
class Fallback:
    """A fallback found usable for this call: its row and the credential to call it with."""

    row: CallRow
    spec: Any  # providers.registry.ProviderTypeSpec
    identifier: str
    credentials: Any  # gateway.app.Credentials


class FallBack(Exception):
    """The call goes to ``to``; the provider's failure (``status``, ``kind``) is counted
    against the model it was meant for."""

    def __init__(self, to: Fallback, status: int, kind: str) -> None:
        super().__init__(f"falling back to {to.spec.type}/{to.identifier}")
        self.to, self.status, self.kind = to, status, kind

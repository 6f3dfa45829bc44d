"""The deployment mode, decided here and nowhere else: through the AI Gateway, or direct."""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings

GATEWAY_PREFIX = "/api/v2/aibridge"
# In-process calls never leave the process (httpx over ASGI), so this host is never resolved.
IN_PROCESS_GATEWAY_ORIGIN = "http://ai-gateway.in-process"
# A delegated call carries the user's own provider key; this marker tells the gateway to keep
# that key (it strips every other credential header). The platform identity of the call never
# travels as a header: see routing.routes.GatewayIdentity.
GOVERNANCE_HEADER = "X-Coder-AI-Governance-Token"
DELEGATED = "delegated"


class RoutePath(StrEnum):
    DIRECT = "direct"
    GATEWAY = "gateway"


def gateway_enabled() -> bool:
    return bool(settings.AI_GATEWAY_ENABLED)


def model_call_path() -> RoutePath:
    """Chats' model calls go through the gateway when it is on and chat routing is on."""
    if settings.AI_GATEWAY_ENABLED and settings.AI_GATEWAY_CHAT_ROUTING:
        return RoutePath.GATEWAY
    return RoutePath.DIRECT


def gateway_api_root(provider_type: str, origin: str = IN_PROCESS_GATEWAY_ORIGIN) -> str:
    """The gateway's equivalent of a provider's API root (``.../<type>/v1``)."""
    return f"{origin}{GATEWAY_PREFIX}/{provider_type}/v1"

"""The deployment mode, decided here and nowhere else: through the AI Gateway, or direct."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from providers.registry import REGISTRY, ProviderType, WireFormat

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


@dataclass(frozen=True)
class ToolSetup:
    """How a tool or SDK speaking a provider's API reaches it through the gateway: the base
    URL it takes and the environment variables the usual SDKs read."""

    provider_type: str
    label: str
    base_url: str
    base_url_variable: str
    key_variable: str


# The SDKs of each wire format: the variables they read, and whether the base URL they take
# ends in the API version (OpenAI's ``.../v1``) or not (Anthropic's and Google's add it).
_SDK_CONVENTIONS = {
    WireFormat.OPENAI: ("OPENAI_BASE_URL", "OPENAI_API_KEY", True),
    WireFormat.ANTHROPIC: ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", False),
    WireFormat.GOOGLE: ("GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", False),
}


def tool_setup(provider_type: str, origin: str) -> ToolSetup:
    """What to give an outside tool for ``provider_type``, on the server at ``origin``."""
    spec = REGISTRY[ProviderType(provider_type)]
    base_url_variable, key_variable, with_version = _SDK_CONVENTIONS[spec.wire_format]
    root = f"{origin}{GATEWAY_PREFIX}/{provider_type}"
    return ToolSetup(
        provider_type=provider_type,
        label=spec.label,
        base_url=f"{root}/v1" if with_version else root,
        base_url_variable=base_url_variable,
        key_variable=key_variable,
    )

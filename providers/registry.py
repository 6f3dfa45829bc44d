"""The provider types: plain data, the one place that knows each type's label, default base
URL, auth header and model option schema. Other apps ask this module; none switch on a type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from . import request_options as ro
from .options import OptionKind, OptionSpec


class ProviderType(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI"
    GOOGLE = "google", "Google"
    AZURE_OPENAI = "azure-openai", "Azure OpenAI"
    AWS_BEDROCK = "aws-bedrock", "AWS Bedrock"
    OPENAI_COMPATIBLE = "openai-compatible", "OpenAI Compatible"
    OPENROUTER = "openrouter", "OpenRouter"
    VERCEL_AI_GATEWAY = "vercel-ai-gateway", "Vercel AI Gateway"


# The Azure OpenAI data-plane version used on classic deployment URLs (the v1 API needs none).
AZURE_API_VERSION = "2024-10-21"


class UpstreamStyle(models.TextChoices):
    """How a request in the type's wire format is addressed upstream (the gateway's dialects)."""

    STANDARD = "standard", "As the wire format says"
    AZURE = "azure", "Azure OpenAI (api-version on classic deployment URLs)"
    BEDROCK = "bedrock", "AWS Bedrock invoke API (Anthropic body, event-stream responses)"


class WireFormat(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GOOGLE = "google", "Google"


@dataclass(frozen=True)
class AuthHeader:
    """How the key travels: ``{name}: {prefix}{key}`` plus fixed extra headers."""

    name: str
    prefix: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    def headers_for(self, key: str) -> dict[str, str]:
        return {self.name: f"{self.prefix}{key}", **dict(self.extra)}


BEARER = AuthHeader("Authorization", "Bearer ")

ANTHROPIC_OPTIONS = (
    OptionSpec(
        "thinking_budget_tokens",
        "Thinking budget tokens",
        OptionKind.INTEGER,
        "Maximum tokens allocated for extended thinking.",
        min=1,
        max=1_000_000,
    ),
    OptionSpec(
        "effort",
        "Effort",
        OptionKind.CHOICE,
        "Thinking effort level.",
        choices=("low", "medium", "high", "xhigh", "max"),
    ),
)
OPENAI_OPTIONS = (
    OptionSpec(
        "reasoning_effort",
        "Reasoning effort",
        OptionKind.CHOICE,
        "How much effort the model spends reasoning.",
        choices=("minimal", "low", "medium", "high", "xhigh"),
    ),
    OptionSpec(
        "max_completion_tokens",
        "Max completion tokens",
        OptionKind.INTEGER,
        "Cap on completion tokens for reasoning models.",
        min=1,
        max=10_000_000,
    ),
    OptionSpec(
        "parallel_tool_calls",
        "Parallel tool calls",
        OptionKind.BOOLEAN,
        "Whether the model can call multiple tools at once.",
    ),
)
GOOGLE_OPTIONS = (
    OptionSpec(
        "thinking_budget",
        "Thinking budget",
        OptionKind.INTEGER,
        "Maximum tokens for the model's internal reasoning.",
        min=1,
        max=1_000_000,
    ),
    OptionSpec(
        "include_thoughts",
        "Include thoughts",
        OptionKind.BOOLEAN,
        "Whether to include thinking traces in the response.",
    ),
)
ROUTER_REASONING_OPTIONS = (
    OptionSpec(
        "reasoning_enabled", "Reasoning enabled", OptionKind.BOOLEAN, "Enable extended reasoning."
    ),
    OptionSpec(
        "reasoning_effort",
        "Reasoning effort",
        OptionKind.CHOICE,
        "Reasoning effort level.",
        choices=("low", "medium", "high"),
    ),
)


RequestOptionsMapper = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ProviderTypeSpec:
    type: ProviderType
    description: str
    # May hold "{region}" (AWS Bedrock): filled from the provider's region.
    default_base_url: str | None
    auth: AuthHeader
    wire_format: WireFormat
    options: tuple[OptionSpec, ...] = field(default=())
    base_url_example: str = ""
    # General and provider options -> request body parameters under this API's names.
    request_options: RequestOptionsMapper = ro.openai_options
    # Appended to the base URL to reach the versioned API (Anthropic's base has no /v1).
    api_version_path: str = ""
    # Lower is preferred for computer use; None: this type's models cannot use a computer.
    computer_use_rank: int | None = None
    upstream: UpstreamStyle = UpstreamStyle.STANDARD
    # A cheap call that needs a valid key, for "Test connection" when listing models does not
    # (OpenRouter and Vercel list their models to anyone). None: the models listing is it.
    key_check_path: str | None = None
    # Whether the API says which service tier a call ran on (OpenAI's ``service_tier``,
    # Gemini's ``x-gemini-service-tier`` header: flex at about half the usual prices,
    # priority at more), so its models take a price factor for each.
    prices_by_service_tier: bool = False
    # Whether it also has OpenAI's ultrafast tier (6 times the usual prices on GPT-6 Astra).
    prices_ultrafast_tier: bool = False
    # Whether the API says where a call's inference ran (Anthropic's ``inference_geo``: "us"
    # at 1.1 times the usual prices for Claude Opus 4.6 and later), so its models take a
    # price factor for US-only inference. Not Bedrock's: its region is the endpoint's.
    prices_by_inference_geo: bool = False
    # Whether the API says a call ran in fast mode (Anthropic's ``speed``: 6 times the usual
    # prices on Claude Opus 4.6, twice on Opus 4.8 and later), so its models take a factor
    # for it.
    prices_by_speed: bool = False

    @property
    def has_price_variants(self) -> bool:
        """Whether a call's price depends on what its answer says it ran under (a service
        tier, a geography, a speed), by the factors its models take."""
        return self.prices_by_service_tier or self.prices_by_inference_geo or self.prices_by_speed

    @property
    def label(self) -> str:
        return str(self.type.label)

    @property
    def prices_cache_writes_by_ttl(self) -> bool:
        """Whether this API reports cache writes by how long they are kept (Anthropic's
        ``cache_creation``), so its models take a price for hour-long writes."""
        return self.wire_format is WireFormat.ANTHROPIC

    @property
    def uses_region(self) -> bool:
        return bool(self.default_base_url and "{region}" in self.default_base_url)

    @property
    def base_url_required(self) -> bool:
        return self.default_base_url is None

    @property
    def default_endpoint_text(self) -> str:
        """The default endpoint as an admin reads it before configuring the provider."""
        if self.default_base_url is None:
            return "base URL required"
        if self.uses_region:
            return self.default_base_url.format(region="<region>") + " (in the region you choose)"
        return self.default_base_url

    def default_base_url_for(self, region: str = "") -> str | None:
        if self.uses_region:
            return self.default_base_url.format(region=region) if region else None  # type: ignore[union-attr]
        return self.default_base_url

    def api_root(self, base_url: str) -> str:
        """Where this API's paths (``/chat/completions``, ``/messages``...) are appended."""
        return base_url.rstrip("/") + self.api_version_path


REGISTRY: dict[ProviderType, ProviderTypeSpec] = {
    spec.type: spec
    for spec in (
        ProviderTypeSpec(
            ProviderType.ANTHROPIC,
            "Claude models via Anthropic API",
            "https://api.anthropic.com",
            AuthHeader("x-api-key", extra=(("anthropic-version", "2023-06-01"),)),
            WireFormat.ANTHROPIC,
            ANTHROPIC_OPTIONS,
            request_options=ro.anthropic_options,
            api_version_path="/v1",
            computer_use_rank=0,
            prices_by_inference_geo=True,
            prices_by_speed=True,
        ),
        ProviderTypeSpec(
            ProviderType.OPENAI,
            "GPT and o-series models via OpenAI API",
            "https://api.openai.com/v1",
            BEARER,
            WireFormat.OPENAI,
            OPENAI_OPTIONS,
            computer_use_rank=2,
            prices_by_service_tier=True,
            prices_ultrafast_tier=True,
        ),
        ProviderTypeSpec(
            ProviderType.GOOGLE,
            "Gemini models via Google AI API",
            "https://generativelanguage.googleapis.com/v1beta",
            AuthHeader("x-goog-api-key"),
            WireFormat.GOOGLE,
            GOOGLE_OPTIONS,
            request_options=ro.google_options,
            prices_by_service_tier=True,
        ),
        ProviderTypeSpec(
            ProviderType.AZURE_OPENAI,
            "OpenAI models hosted on Azure",
            None,
            AuthHeader("api-key"),
            WireFormat.OPENAI,
            OPENAI_OPTIONS,
            base_url_example="https://RESOURCE.openai.azure.com/openai/v1",
            upstream=UpstreamStyle.AZURE,
        ),
        ProviderTypeSpec(
            ProviderType.AWS_BEDROCK,
            "Models available through AWS Bedrock",
            "https://bedrock-runtime.{region}.amazonaws.com",
            BEARER,
            WireFormat.ANTHROPIC,
            ANTHROPIC_OPTIONS,
            request_options=ro.anthropic_options,
            computer_use_rank=1,
            upstream=UpstreamStyle.BEDROCK,
        ),
        ProviderTypeSpec(
            ProviderType.OPENAI_COMPATIBLE,
            "Any endpoint implementing the OpenAI API",
            None,
            BEARER,
            WireFormat.OPENAI,
            base_url_example="https://llm.internal.example/v1",
            request_options=ro.openai_compatible_options,
        ),
        ProviderTypeSpec(
            ProviderType.OPENROUTER,
            "Multi-model routing via OpenRouter",
            "https://openrouter.ai/api/v1",
            BEARER,
            WireFormat.OPENAI,
            ROUTER_REASONING_OPTIONS,
            request_options=ro.openrouter_options,
            key_check_path="/key",
        ),
        ProviderTypeSpec(
            ProviderType.VERCEL_AI_GATEWAY,
            "Models via Vercel AI SDK",
            "https://ai-gateway.vercel.sh/v1",
            BEARER,
            WireFormat.OPENAI,
            ROUTER_REASONING_OPTIONS,
            request_options=ro.vercel_options,
            key_check_path="/credits",
        ),
    )
}


def spec_for(provider_type: str) -> ProviderTypeSpec:
    return REGISTRY[ProviderType(provider_type)]


def parse_provider_type(text: str) -> ProviderType:
    """Accept a slug or a label in any case ("azure-openai", "Azure OpenAI")."""
    wanted = text.strip().lower().replace(" ", "-").replace("_", "-")
    for provider_type in ProviderType:
        if wanted in (provider_type.value, str(provider_type.label).lower().replace(" ", "-")):
            return provider_type
    known = ", ".join(t.value for t in ProviderType)
    raise ValueError(f"unknown provider type {text!r} (known: {known})")

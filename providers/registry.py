"""The provider types: plain data, the one place that knows each type's label, default base
URL, auth header and model option schema. Other apps ask this module; none switch on a type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models

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


@dataclass(frozen=True)
class ProviderTypeSpec:
    type: ProviderType
    description: str
    default_base_url: str | None
    auth: AuthHeader
    wire_format: WireFormat
    options: tuple[OptionSpec, ...] = field(default=())
    base_url_example: str = ""

    @property
    def label(self) -> str:
        return str(self.type.label)

    @property
    def base_url_required(self) -> bool:
        return self.default_base_url is None


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
        ),
        ProviderTypeSpec(
            ProviderType.OPENAI,
            "GPT and o-series models via OpenAI API",
            "https://api.openai.com/v1",
            BEARER,
            WireFormat.OPENAI,
            OPENAI_OPTIONS,
        ),
        ProviderTypeSpec(
            ProviderType.GOOGLE,
            "Gemini models via Google AI API",
            "https://generativelanguage.googleapis.com/v1beta",
            AuthHeader("x-goog-api-key"),
            WireFormat.GOOGLE,
            GOOGLE_OPTIONS,
        ),
        ProviderTypeSpec(
            ProviderType.AZURE_OPENAI,
            "OpenAI models hosted on Azure",
            None,
            AuthHeader("api-key"),
            WireFormat.OPENAI,
            OPENAI_OPTIONS,
            base_url_example="https://RESOURCE.openai.azure.com/openai/v1",
        ),
        ProviderTypeSpec(
            ProviderType.AWS_BEDROCK,
            "Models available through AWS Bedrock",
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            BEARER,
            WireFormat.ANTHROPIC,
            ANTHROPIC_OPTIONS,
        ),
        ProviderTypeSpec(
            ProviderType.OPENAI_COMPATIBLE,
            "Any endpoint implementing the OpenAI API",
            None,
            BEARER,
            WireFormat.OPENAI,
            base_url_example="https://llm.internal.example/v1",
        ),
        ProviderTypeSpec(
            ProviderType.OPENROUTER,
            "Multi-model routing via OpenRouter",
            "https://openrouter.ai/api/v1",
            BEARER,
            WireFormat.OPENAI,
            ROUTER_REASONING_OPTIONS,
        ),
        ProviderTypeSpec(
            ProviderType.VERCEL_AI_GATEWAY,
            "Models via Vercel AI SDK",
            "https://ai-gateway.vercel.sh/v1",
            BEARER,
            WireFormat.OPENAI,
            ROUTER_REASONING_OPTIONS,
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

"""The general model options of the seed, declared once.

Each spec gives its model column its validator and its command flag; provider-specific
options live in ``providers.registry`` and are stored as JSON.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from lib.text import validate_plain_text
from providers.options import OptionKind, OptionSpec

K = OptionKind
PRICE_HELP = "Optional USD price per 1M {} tokens. Leave blank when unknown (blank is not 0)."

GENERAL_OPTIONS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec(
            "context_limit",
            "Context limit",
            K.INTEGER,
            "Maximum tokens in the context window (e.g. 200000).",
            min=1,
            max=100_000_000,
        ),
        OptionSpec(
            "compression_threshold",
            "Compression threshold",
            K.INTEGER,
            "Percentage of context use at which older messages are summarised.",
            min=0,
            max=100,
        ),
        OptionSpec(
            "max_output_tokens",
            "Max output tokens",
            K.INTEGER,
            "Maximum tokens generated per response.",
            min=1,
            max=10_000_000,
        ),
        OptionSpec(
            "temperature",
            "Temperature",
            K.NUMBER,
            "Randomness; lower is more deterministic.",
            min=0,
            max=2,
        ),
        OptionSpec("top_p", "Top P", K.NUMBER, "Nucleus sampling threshold.", min=0, max=1),
        OptionSpec(
            "top_k",
            "Top K",
            K.INTEGER,
            "Sample from the top K candidates only.",
            min=1,
            max=100_000,
        ),
        OptionSpec(
            "presence_penalty",
            "Presence penalty",
            K.NUMBER,
            "Penalises tokens that have already appeared.",
            min=-2,
            max=2,
        ),
        OptionSpec(
            "frequency_penalty",
            "Frequency penalty",
            K.NUMBER,
            "Penalises tokens by how often they have appeared.",
            min=-2,
            max=2,
        ),
        OptionSpec(
            "input_price",
            "Input price",
            K.DECIMAL,
            PRICE_HELP.format("input"),
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "output_price",
            "Output price",
            K.DECIMAL,
            PRICE_HELP.format("output"),
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "cache_read_price",
            "Cache read price",
            K.DECIMAL,
            PRICE_HELP.format("cache read"),
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "cache_write_price",
            "Cache write price",
            K.DECIMAL,
            PRICE_HELP.format("cache write"),
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "cache_write_1h_price",
            "Cache write price, 1 hour",
            K.DECIMAL,
            'Optional USD price per 1M tokens cached for an hour (ttl "1h"); Anthropic\'s is '
            "twice the input price. Leave blank when unknown (such calls count as unpriced).",
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "web_search_price",
            "Web search price",
            K.DECIMAL,
            "Optional USD per 1,000 searches the model runs (web search tools, Google Search "
            "grounding; Gemini 2.x is billed per grounded call), e.g. 10. Leave blank when unknown "
            "(blank is not 0).",
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "flex_price_factor",
            "Flex price factor",
            K.DECIMAL,
            'Optional: what a call on the flex tier (service_tier "flex") costs against the '
            "prices above, e.g. 0.5. Leave blank when unknown (such calls count as unpriced).",
            min=0,
            max=100,
        ),
        OptionSpec(
            "priority_price_factor",
            "Priority price factor",
            K.DECIMAL,
            'Optional: what a call on the priority tier (service_tier "priority", or "fast" as '
            "newer models name it) costs against the prices above, e.g. 2 for GPT-5. Leave "
            "blank when unknown (such calls count as unpriced).",
            min=0,
            max=100,
        ),
        OptionSpec(
            "ultrafast_price_factor",
            "Ultrafast price factor",
            K.DECIMAL,
            'Optional: what a call on the ultrafast tier (service_tier "ultrafast") costs '
            "against the prices above, e.g. 6 for GPT-6 Astra. Leave blank when unknown (such "
            "calls count as unpriced).",
            min=0,
            max=100,
        ),
        OptionSpec(
            "us_inference_price_factor",
            "US-only inference price factor",
            K.DECIMAL,
            'Optional: what a call run only in the US (inference_geo "us") costs against the '
            "prices above, e.g. 1.1 for Claude Opus 4.6 and later. Leave blank when unknown "
            "(such calls count as unpriced).",
            min=0,
            max=100,
        ),
        OptionSpec(
            "fast_mode_price_factor",
            "Fast mode price factor",
            K.DECIMAL,
            'Optional: what a call run in fast mode (speed "fast", Claude Code\'s /fast) costs '
            "against the prices above, e.g. 6 for Claude Opus 4.6, 2 for Opus 4.8 and later. "
            "Leave blank when unknown (such calls count as unpriced).",
            min=0,
            max=100,
        ),
        OptionSpec(
            "long_context_threshold",
            "Long-context threshold",
            K.INTEGER,
            "Optional: the prompt size in tokens (cache reads and writes included) above which "
            "a call is priced at the long-context prices, e.g. 200000.",
            min=1,
            max=100_000_000,
        ),
        OptionSpec(
            "long_context_input_price",
            "Long-context input price",
            K.DECIMAL,
            "USD per 1M input tokens of a call above the threshold; its cache prices scale "
            "by the same factor, as the providers price them.",
            min=0,
            max=1_000_000,
        ),
        OptionSpec(
            "long_context_output_price",
            "Long-context output price",
            K.DECIMAL,
            "USD per 1M output tokens of a call above the threshold.",
            min=0,
            max=1_000_000,
        ),
    )
}
PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cache_read_price",
    "cache_write_price",
    "cache_write_1h_price",
    "web_search_price",
    "flex_price_factor",
    "priority_price_factor",
    "ultrafast_price_factor",
    "us_inference_price_factor",
    "fast_mode_price_factor",
    "long_context_input_price",
    "long_context_output_price",
)
# Set all three or none: above the threshold, a call is priced at the long-context prices.
LONG_CONTEXT_FIELDS = (
    "long_context_threshold",
    "long_context_input_price",
    "long_context_output_price",
)
# Prices asked for among a provider type's options, only where its API reports what they
# price: the column, the ProviderTypeSpec property that says so, and what that API reports.
# Only the Anthropic API splits cache writes by how long they are kept, and says where a
# call's inference ran (inference_geo) and at which speed (fast mode); only OpenAI's says
# which service tier (flex, priority, ultrafast) a call ran on, and Gemini's which (flex,
# priority).
PROVIDER_PRICES: dict[str, tuple[str, str]] = {
    "cache_write_1h_price": (
        "prices_cache_writes_by_ttl",
        "cache writes by how long they are kept",
    ),
    "flex_price_factor": ("prices_by_service_tier", "the service tier a call ran on"),
    "priority_price_factor": ("prices_by_service_tier", "the service tier a call ran on"),
    "ultrafast_price_factor": ("prices_ultrafast_tier", "an ultrafast service tier"),
    "us_inference_price_factor": ("prices_by_inference_geo", "where a call's inference ran"),
    "fast_mode_price_factor": ("prices_by_speed", "the speed a call ran at"),
}
# The general options that become request parameters (the others are the platform's own).
REQUEST_OPTION_NAMES = (
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_k",
    "presence_penalty",
    "frequency_penalty",
)


@deconstructible
class SpecValidator:
    """Validates a column with its general option spec (same messages as forms and commands)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, value: Any) -> None:
        if value is not None:
            GENERAL_OPTIONS[self.name].clean(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpecValidator) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def validate_identifier(value: str) -> None:
    validate_plain_text(value, what="The identifier")
    if any(ch.isspace() for ch in value):
        raise ValidationError(
            "A model identifier has no spaces: use the exact string the provider expects, "
            "e.g. claude-opus-4-6."
        )


def validate_display_name(value: str) -> None:
    validate_plain_text(value, what="The display name")
    if not value.strip():
        raise ValidationError("Enter a display name developers will recognise.")


ALIAS_WILDCARD = "*"


def validate_alias_pattern(value: str) -> None:
    """A model name a caller asks for, or a pattern of names (``*`` stands for any text)."""
    validate_plain_text(value, what="The name")
    if any(ch.isspace() for ch in value):
        raise ValidationError("A model name has no spaces, e.g. claude-opus-4-8 or claude-opus-*.")
    if value.strip(ALIAS_WILDCARD) == "":
        raise ValidationError(
            "Give at least part of a name (claude-opus-*): a pattern of * alone would catch "
            "every model name, mistyped ones too."
        )


def alias_like_pattern(pattern: str) -> str:
    """An alias pattern as SQL LIKE reads it (lower case, the gateway compares lower case):
    ``*`` is any text; LIKE's own wildcards and the escape character match themselves."""
    escaped = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace(ALIAS_WILDCARD, "%")


def alias_specificity(pattern: str) -> int:
    """Which alias wins when several match a name: a whole name over any pattern, then the
    pattern that spells out more of it."""
    literal = len(pattern.replace(ALIAS_WILDCARD, ""))
    return literal if ALIAS_WILDCARD in pattern else 10_000 + literal

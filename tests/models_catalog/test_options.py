"""Every bound and choice of every option, generated from the schemas.

A new option added to a schema is covered here without a new test.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from models_catalog.forms import OPTION_PREFIX, model_form_for
from models_catalog.options import GENERAL_OPTIONS
from providers.options import OptionKind, OptionSpec, clean_options
from providers.registry import REGISTRY, ProviderType

PROVIDER_SPECS = [
    pytest.param(provider_type, spec, id=f"{provider_type.value}.{spec.name}")
    for provider_type, type_spec in REGISTRY.items()
    for spec in type_spec.options
]
ALL_SPECS = [pytest.param(s, id=f"general.{s.name}") for s in GENERAL_OPTIONS.values()] + [
    pytest.param(spec, id=p.id) for p in PROVIDER_SPECS for _, spec in [p.values]
]


def of_kind(*kinds: OptionKind) -> list:
    return [p for p in ALL_SPECS if p.values[0].kind in kinds]


NUMERIC = of_kind(OptionKind.INTEGER, OptionKind.NUMBER, OptionKind.DECIMAL)


def step(spec: OptionSpec) -> Decimal:
    return Decimal(1) if spec.kind is OptionKind.INTEGER else Decimal("0.001")


# Every numeric option's bounds, written out rather than read from the schema under test:
# the sampling ranges are those the provider APIs document (OpenAI's penalties -2..2,
# temperature 0..2, top_p 0..1), the others are this product's sanity limits.
EXPECTED_BOUNDS = {
    "context_limit": (1, 100_000_000),
    "compression_threshold": (0, 100),
    "max_output_tokens": (1, 10_000_000),
    "temperature": (0, 2),
    "top_p": (0, 1),
    "top_k": (1, 100_000),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "input_price": (0, 1_000_000),
    "output_price": (0, 1_000_000),
    "cache_read_price": (0, 1_000_000),
    "cache_write_price": (0, 1_000_000),
    "cache_write_1h_price": (0, 1_000_000),
    "web_search_price": (0, 1_000_000),
    "flex_price_factor": (0, 100),
    "priority_price_factor": (0, 100),
    "ultrafast_price_factor": (0, 100),
    "us_inference_price_factor": (0, 100),
    "fast_mode_price_factor": (0, 100),
    "long_context_threshold": (1, 100_000_000),
    "long_context_input_price": (0, 1_000_000),
    "long_context_output_price": (0, 1_000_000),
    "thinking_budget_tokens": (1, 1_000_000),
    "max_completion_tokens": (1, 10_000_000),
    "thinking_budget": (1, 1_000_000),
}


def test_every_numeric_option_has_the_expected_bounds():
    specs: list[OptionSpec] = [p.values[0] for p in ALL_SPECS]  # type: ignore[misc]
    numeric = {spec.name: spec for spec in specs if spec.is_numeric}
    assert set(numeric) == set(EXPECTED_BOUNDS)
    for name, spec in numeric.items():
        assert (spec.min, spec.max) == EXPECTED_BOUNDS[name], name


@pytest.mark.parametrize("spec", NUMERIC)
def test_bounds_are_accepted_and_values_just_outside_are_refused(spec):
    low, high = EXPECTED_BOUNDS[spec.name]
    assert spec.clean(str(low)) == low
    assert spec.clean(high) == high
    with pytest.raises(ValidationError, match=f"{spec.label} must be at least"):
        spec.clean(str(Decimal(low) - step(spec)))
    with pytest.raises(ValidationError, match=f"{spec.label} must be at most"):
        spec.clean(str(Decimal(high) + step(spec)))
    for junk in ("abc", "", "nan", "inf", True):
        with pytest.raises(ValidationError, match=f"{spec.label} must be a"):
            spec.clean(junk)


@pytest.mark.parametrize("spec", of_kind(OptionKind.INTEGER))
def test_integer_options_refuse_fractions(spec):
    with pytest.raises(ValidationError, match="must be a whole number"):
        spec.clean(str(Decimal(EXPECTED_BOUNDS[spec.name][0]) + Decimal("0.5")))


@pytest.mark.parametrize("spec", of_kind(OptionKind.CHOICE))
def test_every_choice_is_accepted_normalised_and_others_refused(spec):
    for choice in spec.choices:
        assert spec.clean(f"  {choice.upper()} ") == choice
    with pytest.raises(ValidationError, match=f"{spec.label} must be one of"):
        spec.clean("definitely-not-a-choice")


@pytest.mark.parametrize("spec", of_kind(OptionKind.BOOLEAN))
def test_booleans_accept_true_and_false_words_only(spec):
    for word in ("true", "On", "1", "yes", True):
        assert spec.clean(word) is True
    for word in ("false", "OFF", "0", "no", False):
        assert spec.clean(word) is False
    with pytest.raises(ValidationError, match="must be true or false"):
        spec.clean("maybe")


@pytest.mark.parametrize("provider_type, spec", PROVIDER_SPECS)
def test_the_form_for_each_provider_type_validates_its_options_by_the_schema(provider_type, spec):
    form_class = model_form_for(provider_type.value)
    field = form_class.base_fields[f"{OPTION_PREFIX}{spec.name}"]
    assert field.label == spec.label and field.help_text == spec.help
    assert field.clean("") is None  # blank means "provider default", not false or 0
    high = EXPECTED_BOUNDS.get(spec.name, (0, 0))[1]
    bad = "definitely-not-valid" if spec.kind is not OptionKind.INTEGER else str(high + 1)
    with pytest.raises(ValidationError):
        field.clean(bad)


@pytest.mark.parametrize("provider_type", list(ProviderType))
def test_each_form_has_exactly_the_options_of_its_schema(provider_type):
    form_class = model_form_for(provider_type.value)
    option_fields = {n for n in form_class.base_fields if n.startswith(OPTION_PREFIX)}
    assert option_fields == {f"{OPTION_PREFIX}{s.name}" for s in REGISTRY[provider_type].options}


def option_names(provider_type: ProviderType) -> list[str]:
    return [spec.name for spec in REGISTRY[provider_type].options]


def test_azure_uses_openai_options_and_bedrock_uses_anthropic_options():
    assert (
        option_names(ProviderType.AZURE_OPENAI)
        == option_names(ProviderType.OPENAI)
        == ["reasoning_effort", "max_completion_tokens", "parallel_tool_calls"]
    )
    assert (
        option_names(ProviderType.AWS_BEDROCK)
        == option_names(ProviderType.ANTHROPIC)
        == ["thinking_budget_tokens", "effort"]
    )
    assert option_names(ProviderType.OPENAI_COMPATIBLE) == []
    assert option_names(ProviderType.GOOGLE) == ["thinking_budget", "include_thoughts"]
    assert (
        option_names(ProviderType.OPENROUTER)
        == option_names(ProviderType.VERCEL_AI_GATEWAY)
        == ["reasoning_enabled", "reasoning_effort"]
    )


def test_seed_choices():
    anthropic = {s.name: s for s in REGISTRY[ProviderType.ANTHROPIC].options}
    openai = {s.name: s for s in REGISTRY[ProviderType.OPENAI].options}
    openrouter = {s.name: s for s in REGISTRY[ProviderType.OPENROUTER].options}
    assert anthropic["effort"].choices == ("low", "medium", "high", "xhigh", "max")
    assert openai["reasoning_effort"].choices == ("minimal", "low", "medium", "high", "xhigh")
    assert openrouter["reasoning_effort"].choices == ("low", "medium", "high")


def test_unknown_option_keys_are_refused_with_the_key_named():
    with pytest.raises(ValidationError) as error:
        clean_options(
            REGISTRY[ProviderType.OPENAI].options,
            {"reasoning_effort": "low", "thinking_budget_tokens": 5},
        )
    assert (
        "Unknown option 'thinking_budget_tokens'"
        in error.value.message_dict["thinking_budget_tokens"][0]
    )
    assert "allowed: reasoning_effort, max_completion_tokens, parallel_tool_calls" in str(
        error.value
    )


def test_openai_compatible_accepts_no_options_at_all():
    with pytest.raises(ValidationError, match=r"allowed: none"):
        clean_options(REGISTRY[ProviderType.OPENAI_COMPATIBLE].options, {"effort": "low"})

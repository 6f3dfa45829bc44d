import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_catalog.models import ModelConfig

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refusal(*args: str) -> str:
    """The one line a command refusing ``args`` stops with."""
    with pytest.raises(CommandError) as error:
        run(*args)
    return str(error.value)


def test_model_set_creates_with_general_and_provider_options(make_provider):
    make_provider("anthropic")
    out = run(
        "model_set",
        "anthropic",
        "claude-opus-4-6",
        "--display-name",
        "Claude Opus",
        "--context-limit",
        "200000",
        "--temperature",
        "0.5",
        "--input-price",
        "15",
        "--option",
        "effort=HIGH",
        "--option",
        "thinking_budget_tokens=2048",
    )
    assert out.strip() == "Anthropic / claude-opus-4-6: created."
    model = ModelConfig.objects.get()
    assert model.options == {"effort": "high", "thinking_budget_tokens": 2048}
    assert (model.temperature, str(model.input_price)) == (0.5, "15.000000")


def test_model_set_updates_merges_options_and_unsets_with_blank(make_model):
    make_model(options={"effort": "high", "thinking_budget_tokens": 100}, temperature=1)
    run(
        "model_set",
        "anthropic",
        "claude-sonnet-4-5",
        "--option",
        "effort=",
        "--temperature",
        "",
        "--no-enabled",
    )
    model = ModelConfig.objects.get()
    assert model.options == {"thinking_budget_tokens": 100}
    assert model.temperature is None and model.enabled is False


def test_models_list_table_and_json(make_model):
    make_model("claude", display_name="Claude", input_price="3", output_price="15")
    run("model_set_default", "anthropic", "claude")
    out = run("models_list")
    assert "*  anthropic  claude      Claude  200000   enabled  $3 in · $15 out per 1M" in out
    rows = json.loads(run("models_list", "--json"))
    assert rows[0]["default"] is True and rows[0]["input_price"] == "3.000000"


def test_models_list_empty():
    assert "No models yet." in run("models_list")


def test_set_default_none_and_delete(make_model):
    make_model("a-model", display_name="Alpha")
    make_model("b-model", display_name="Bravo")
    run("model_set_default", "anthropic", "a-model")
    out = run("model_delete", "anthropic", "a-model", "--yes")
    assert "Alpha was the default model; the default is now Bravo." in out
    assert run("model_set_default", "--none").strip() == "No default model."
    assert not ModelConfig.objects.filter(is_default=True).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("model_set", "openai", "gpt"), "OpenAI is not configured"),
        (("model_set", "anthropic", "c", "--context-limit", "0"), "--context-limit: Context limit"),
        (
            ("model_set", "anthropic", "c", "--context-limit", "9", "--temperature", "x"),
            "--temperature: Temperature must be a number.",
        ),
        (
            ("model_set", "anthropic", "c", "--context-limit", "9", "--option", "bogus=1"),
            "options: bogus: Unknown option 'bogus'",
        ),
        (
            ("model_set", "anthropic", "c", "--context-limit", "9", "--option", "effort"),
            "--option: expected NAME=VALUE",
        ),
        (
            ("model_set", "anthropic", "c", "--context-limit", "9", "--option", "effort=ultra"),
            "Effort must be one of",
        ),
        (
            ("model_set", "anthropic", "c", "--context-limit", "9", "--long-context-threshold=9"),
            "long_context_input_price: Enter the long-context input price too",
        ),
        (("model_set_default", "anthropic", "nope"), "Anthropic has no model 'nope'"),
        (("model_set_default",), "give PROVIDER IDENTIFIER, or --none"),
        (("model_delete", "anthropic", "claude-sonnet-4-5"), "add --yes to confirm"),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(make_model, args, message):
    make_model()
    before = list(ModelConfig.objects.values())
    with pytest.raises(CommandError, match=message) as error:
        run(*args)
    assert "\n" not in str(error.value)
    assert list(ModelConfig.objects.values()) == before


def test_a_disabled_model_cannot_become_the_default(make_model):
    make_model(enabled=False)
    with pytest.raises(CommandError, match="is disabled"):
        run("model_set_default", "anthropic", "claude-sonnet-4-5")


def test_service_tier_price_factors_are_for_openai_and_gemini_models_only(make_provider):
    make_provider("openai")
    make_provider("openrouter")
    make_provider("google")
    factors = ("--context-limit", "400000", "--flex-price-factor", "0.5")
    run("model_set", "openai", "gpt-5", *factors, "--priority-price-factor", "2")
    model = ModelConfig.objects.get()
    assert (model.flex_price_factor, model.priority_price_factor) == (Decimal("0.5"), 2)
    assert refusal("model_set", "openrouter", "openai/gpt-5", *factors) == (
        "flex_price_factor: OpenRouter does not report the service tier a call ran on; only "
        "these providers' models take this price: OpenAI, Google."
    )
    run("model_set", "google", "gemini-3-pro", *factors)
    assert refusal("model_set", "google", "gemini-3-pro", "--ultrafast-price-factor", "6") == (
        "ultrafast_price_factor: Google does not report an ultrafast service tier; only these "
        "providers' models take this price: OpenAI."
    )
    with pytest.raises(CommandError, match="Priority price factor must be at least 0"):
        run("model_set", "openai", "gpt-5", "--priority-price-factor", "-1")


def test_fast_mode_and_us_inference_factors_are_for_anthropic_models_only(make_provider):
    make_provider("anthropic")
    make_provider("openai")
    factor = ("--context-limit", "1000000", "--us-inference-price-factor", "1.1")
    run("model_set", "anthropic", "claude-opus-4-6", *factor, "--fast-mode-price-factor", "6")
    model = ModelConfig.objects.get()
    assert (model.us_inference_price_factor, model.fast_mode_price_factor) == (Decimal("1.1"), 6)
    assert refusal("model_set", "openai", "gpt-5", *factor) == (
        "us_inference_price_factor: OpenAI does not report where a call's inference ran; "
        "only these providers' models take this price: Anthropic."
    )


def test_the_one_hour_cache_write_price_is_for_anthropic_format_models_only(make_provider):
    """Bedrock speaks Anthropic's API and takes the price; OpenAI never reports such writes,
    so giving it one is a clear error, not a price that nothing would ever use."""
    make_provider("aws-bedrock")
    make_provider("openai")
    hour = ("--context-limit", "200000", "--cache-write-1h-price", "6")
    run("model_set", "aws-bedrock", "claude-on-bedrock", *hour)
    assert ModelConfig.objects.get().cache_write_1h_price == 6
    refused = refusal("model_set", "openai", "gpt-5", *hour)
    assert refused.startswith(
        "cache_write_1h_price: OpenAI does not report cache writes by how long they are kept"
    )
    assert "Anthropic, AWS Bedrock" in refused and "\n" not in refused
    assert not ModelConfig.objects.filter(provider__type="openai").exists()


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\x85", "\u2028", "\x1e", "\x0b"])
def test_an_option_name_with_a_line_break_is_refused_on_one_line(make_provider, breaker):
    make_provider("anthropic")
    message = refusal(
        "model_set",
        "anthropic",
        "claude-x",
        "--context-limit",
        "1000",
        "--option",
        f"x{breaker}y=1",
    )
    assert len(message.splitlines()) == 1, message
    assert "Unknown option" in message and message.isprintable()


def test_model_alias_set_and_remove_and_models_list_shows_them(make_model):
    make_model("claude-sonnet-4-5")
    out = run("model_alias_set", "anthropic", "claude-opus-*", "claude-sonnet-4-5")
    assert "calls naming claude-opus-* reach Claude Sonnet 4 5" in out
    listed = run("models_list")
    assert "ALSO ANSWERS" in listed and "claude-opus-*" in listed
    import json

    [entry] = json.loads(run("models_list", "--json"))
    assert entry["aliases"] == ["claude-opus-*"]
    assert "reach no model now" in run("model_alias_remove", "anthropic", "claude-opus-*")
    assert "claude-opus-*" not in run("models_list")


@pytest.mark.parametrize(
    "args, message",
    [
        (("anthropic", "*", "claude-sonnet-4-5"), "Give at least part of a name"),
        (("anthropic", "x", "nope"), "has no model 'nope'"),
        (
            ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
            "has a model with this identifier",
        ),
    ],
)
def test_model_alias_set_refuses_in_one_line(make_model, args, message):
    make_model("claude-sonnet-4-5")
    refused = refusal("model_alias_set", *args)
    assert message in refused and len(refused.splitlines()) == 1


def test_model_alias_remove_of_an_unknown_name_is_one_line(make_provider):
    make_provider("anthropic")
    assert "answers no name 'x'" in refusal("model_alias_remove", "anthropic", "x")

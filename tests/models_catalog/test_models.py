from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from models_catalog.models import ModelConfig
from models_catalog.services import model_save

pytestmark = pytest.mark.django_db


def test_options_are_normalised_and_stored_as_json(make_model):
    model = make_model(options={"effort": " HIGH ", "thinking_budget_tokens": "4096"})
    model.refresh_from_db()
    assert model.options == {"effort": "high", "thinking_budget_tokens": 4096}


def test_unknown_option_keys_are_refused_naming_the_key(make_model):
    with pytest.raises(ValidationError) as error:
        make_model("gpt-x", "openai", options={"effort": "high"})
    assert "effort: Unknown option 'effort'" in error.value.message_dict["options"][0]
    assert not ModelConfig.objects.exists()


def test_bedrock_models_take_anthropic_options_and_azure_openai_options(make_model):
    assert make_model("anthropic.claude", "aws-bedrock", options={"effort": "max"}).options == {
        "effort": "max"
    }
    azure = make_model(
        "gpt-4o",
        "azure-openai",
        options={"reasoning_effort": "Minimal", "parallel_tool_calls": "false"},
    )
    assert azure.options == {"reasoning_effort": "minimal", "parallel_tool_calls": False}


def test_identifier_is_unique_per_provider_but_not_across_providers(make_model):
    make_model("shared-id", "openai")
    make_model("shared-id", "openrouter")
    with pytest.raises(ValidationError) as error:
        make_model("shared-id", "openai")
    assert "already has a model with this identifier" in str(error.value)


def test_prices_keep_their_decimals_and_unset_is_not_zero(make_model):
    model = make_model(input_price=Decimal("0.000125"), output_price=Decimal("0"))
    model.refresh_from_db()
    assert model.input_price == Decimal("0.000125")
    assert model.output_price == Decimal("0") and model.output_price is not None
    assert model.cache_read_price is None
    assert model.price_summary == "$0.000125 in · $0 out per 1M"


def test_a_model_without_prices_says_so(make_model):
    assert make_model().price_summary == "no price set"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("context_limit", None, "cannot be null"),
        ("context_limit", 0, "Context limit must be at least 1"),
        ("compression_threshold", 101, "Compression threshold must be at most 100"),
        ("temperature", 2.5, "Temperature must be at most 2"),
        ("top_p", -0.1, "Top P must be at least 0"),
        ("presence_penalty", -3, "Presence penalty must be at least -2"),
        ("input_price", Decimal("-1"), "Input price must be at least 0"),
        ("identifier", " padded", "has no spaces"),
        ("identifier", "claude opus", "has no spaces"),
        ("display_name", "   ", "Enter a display name"),
        ("display_name", "name\u202egnp", "invisible text-direction"),
        ("display_name", "", "cannot be blank"),
    ],
)
def test_model_validation_names_the_field(make_model, field, value, message):
    with pytest.raises(ValidationError) as error:
        make_model(**{field: value})
    assert any(message in m for m in error.value.message_dict[field])


def test_the_compression_threshold_defaults_to_70(make_model):
    assert make_model().compression_threshold == 70


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "column, value, constraint",
    [
        ("compression_threshold", 101, "models_catalog_compression_threshold_percent"),
        ("context_limit", 0, "models_catalog_context_limit_positive"),
        ("input_price", -1, "models_catalog_input_price_not_negative"),
    ],
)
def test_database_constraints_refuse_bad_values(make_model, column, value, constraint):
    model = make_model()
    with (
        pytest.raises(
            IntegrityError,
            match=constraint if connection.vendor == "postgresql" else "CHECK constraint failed",
        ),
        transaction.atomic(),
    ):
        ModelConfig.objects.filter(pk=model.pk).update(**{column: value})


def test_saving_unchanged_records_nothing(make_model):
    from audit.models import AuditEntry

    model = make_model()
    before = AuditEntry.objects.count()
    model_save(
        model=model,
        provider=model.provider,
        fields={"display_name": model.display_name},
        options=model.options,
        actor=None,
    )
    assert AuditEntry.objects.count() == before


def test_a_duplicate_that_slips_past_validation_is_still_a_clear_error(make_model, monkeypatch):
    """As when two admins save the same identifier at the same moment."""
    model = make_model("dup")
    monkeypatch.setattr(ModelConfig, "validate_constraints", lambda self, exclude=None: None)
    with pytest.raises(ValidationError) as error:
        model_save(
            model=None,
            provider=model.provider,
            fields={"identifier": "dup", "display_name": "Dup", "context_limit": 1},
            options={},
            actor=None,
        )
    assert "already has a model with this identifier" in error.value.message_dict["identifier"][0]

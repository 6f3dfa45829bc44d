import itertools

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from providers.crypto import Secret
from providers.models import KEY_POLICY_RULE, Provider, key_policy_is_valid
from providers.registry import REGISTRY, ProviderType, parse_provider_type
from providers.validators import MAX_KEY_BYTES, validate_api_key, validate_base_url

# The key policy rule, row by row, written out (not computed): (central, user, fallback).
VALID_POLICIES = {
    (True, False, False): True,
    (False, True, False): True,
    (True, True, False): True,
    (True, True, True): True,
    (False, False, False): False,  # no credential source at all
    (False, False, True): False,
    (True, False, True): False,  # fallback needs user keys on
    (False, True, True): False,  # fallback needs the central key on
}
POLICIES = list(itertools.product([True, False], repeat=3))


def expected_valid(central: bool, user: bool, fallback: bool) -> bool:
    return VALID_POLICIES[(central, user, fallback)]


def test_the_registry_has_the_eight_provider_types_of_the_seed():
    assert [spec.label for spec in REGISTRY.values()] == [
        "Anthropic",
        "OpenAI",
        "Google",
        "Azure OpenAI",
        "AWS Bedrock",
        "OpenAI Compatible",
        "OpenRouter",
        "Vercel AI Gateway",
    ]
    assert REGISTRY[ProviderType.AZURE_OPENAI].base_url_required
    assert REGISTRY[ProviderType.OPENAI_COMPATIBLE].base_url_required
    assert not REGISTRY[ProviderType.ANTHROPIC].base_url_required


def test_provider_types_parse_from_slugs_and_labels():
    assert parse_provider_type("Azure OpenAI") is ProviderType.AZURE_OPENAI
    assert parse_provider_type("vercel_ai_gateway") is ProviderType.VERCEL_AI_GATEWAY
    with pytest.raises(ValueError, match="unknown provider type 'nope'"):
        parse_provider_type("nope")


def test_new_providers_default_to_central_key_only():
    provider = Provider(type="openai")
    assert (
        provider.central_key_enabled,
        provider.user_keys_allowed,
        provider.central_key_fallback,
    ) == (True, False, False)


@pytest.mark.parametrize("central, user, fallback", POLICIES)
def test_key_policy_rule_matches_the_design(central, user, fallback):
    assert (
        key_policy_is_valid(central=central, user=user, fallback=fallback)
        is VALID_POLICIES[(central, user, fallback)]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("central, user, fallback", POLICIES)
def test_model_clean_enforces_the_key_policy(central, user, fallback):
    provider = Provider(
        type="openai",
        central_key_enabled=central,
        user_keys_allowed=user,
        central_key_fallback=fallback,
        api_key=Secret("sk-x"),
    )
    if expected_valid(central, user, fallback):
        provider.full_clean()
    else:
        with pytest.raises(ValidationError) as error:
            provider.full_clean()
        said = [m for messages in error.value.message_dict.values() for m in messages]
        assert any(KEY_POLICY_RULE in m for m in said)
        # The real cause first: no source at all, or a fallback without what it needs.
        if not central and not user:
            cause = "Neither the central key nor user keys are on"
        elif not central:
            cause = "The fallback to the central key needs the central key on"
        else:
            cause = "The fallback to the central key only applies when user keys are allowed"
        assert any(m.startswith(cause) for m in said), said


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("central, user, fallback", POLICIES)
def test_the_database_check_constraint_refuses_a_bad_policy(central, user, fallback):
    insert = (
        "INSERT INTO providers_provider (type, api_key, base_url, enabled, central_key_enabled,"
        " user_keys_allowed, central_key_fallback, region, created_at, updated_at)"
        " VALUES (%s, '', '', %s, %s, %s, %s, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    params = ["openai", True, central, user, fallback]
    if expected_valid(central, user, fallback):
        with connection.cursor() as cursor:
            cursor.execute(insert, params)
    else:
        with (
            pytest.raises(IntegrityError, match="providers_provider_key_policy_valid"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(insert, params)


@pytest.mark.django_db
def test_one_row_per_provider_type(make_provider):
    make_provider("openai")
    with pytest.raises(IntegrityError), transaction.atomic():
        Provider.objects.create(type="openai", api_key=Secret("sk-2"))


@pytest.mark.django_db
def test_central_key_on_requires_a_stored_key():
    with pytest.raises(ValidationError) as error:
        Provider(type="openai").full_clean()
    assert "central API key is on, so a key is required" in error.value.message_dict["api_key"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("provider_type", ["azure-openai", "openai-compatible"])
def test_types_without_a_default_endpoint_require_a_base_url(provider_type):
    with pytest.raises(ValidationError) as error:
        Provider(type=provider_type, api_key=Secret("k")).full_clean()
    assert "has no default endpoint; enter its base URL" in error.value.message_dict["base_url"][0]


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "Enter an API key."),
        (" sk-abc", "starts or ends with whitespace"),
        ("sk-abc\n", "starts or ends with whitespace"),
        ("sk-a\nbc", "control characters"),
        ("x" * (MAX_KEY_BYTES + 1), "longer than 10,240 bytes"),
        ("é" * (MAX_KEY_BYTES // 2 + 1), "longer than 10,240 bytes"),
    ],
)
def test_key_rules_give_clear_messages(raw, message):
    with pytest.raises(ValidationError, match=message) as error:
        validate_api_key(raw)
    if raw.strip():
        assert raw.strip() not in str(error.value)


def test_a_key_of_exactly_the_limit_is_accepted():
    validate_api_key("x" * MAX_KEY_BYTES)


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com", "must start with http:// or https://"),
        ("example.com/v1", "must start with http:// or https://"),
        ("https://", "needs a host name"),
        ("https://user:pass@example.com", "Credentials are not allowed"),
        ("https://token@example.com", "Credentials are not allowed"),
        ("http://169.254.169.254/latest", "Link-local and cloud metadata"),
        ("http://[fd00:ec2::254]/", "Link-local and cloud metadata"),
        ("http://[fe80::1]/", "Link-local and cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "Link-local and cloud metadata"),
        ("http://metadata.google.internal/", "Link-local and cloud metadata"),
        ("https://example.com:99999", "valid URL"),
        ("https://example.com/v1?key=1", "query string"),
    ],
)
def test_base_url_rules(url, message):
    with pytest.raises(ValidationError, match=message):
        validate_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1",
        "http://10.0.0.5:8080/v1",
        "http://192.168.1.20/v1",
        "http://localhost:11434/v1",
        "https://[2001:db8::1]/v1",
    ],
)
def test_private_ranges_stay_allowed_for_self_hosted_models(url):
    validate_base_url(url)


@override_settings(ALLOW_LINK_LOCAL_BASE_URLS=True)
def test_link_local_can_be_allowed_explicitly():
    validate_base_url("http://169.254.10.10/v1")


@pytest.mark.django_db
def test_repr_and_str_of_a_provider_never_show_its_key(make_provider):
    provider = make_provider(api_key="sk-canary-model-repr")
    for shown in (repr(provider), str(provider), repr(provider.__dict__)):
        assert "sk-canary-model-repr" not in shown


@pytest.mark.django_db
def test_a_concurrent_create_of_the_same_type_is_a_clear_error(make_provider, monkeypatch):
    from providers.services import provider_save

    make_provider("openai")
    # As if the other admin's row appeared after this request looked for it.
    monkeypatch.setattr(Provider, "validate_constraints", lambda self, exclude=None: None)
    monkeypatch.setattr(
        Provider.objects, "select_for_update", lambda: Provider.objects.none(), raising=False
    )
    with pytest.raises(ValidationError, match="was just configured by someone else"):
        provider_save(provider_type="openai", actor=None, changes={}, api_key="sk-2")


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["sk bad\nkey", "sk bad key", " sk-padded", "sk-\u00e9t\u00e9"])
def test_the_model_refuses_an_invalid_key_without_a_form(raw):
    provider = Provider(type="openai", api_key=Secret(raw))
    with pytest.raises(ValidationError) as error:
        provider.full_clean()
    assert "api_key" in error.value.message_dict
    assert raw not in repr(error.value.message_dict)

"""The route builder, mirroring the routing change's test list."""

import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from models_catalog.models import ModelConfig, Purpose
from models_catalog.services import purpose_model_set
from providers.models import Provider
from providers.registry import ProviderType
from routing.credentials import CredentialSource
from routing.deployment import RoutePath
from routing.errors import ModelUnavailable, NoActiveApiKey, NoUsableModel, OverrideUnusable
from routing.routes import ModelRequest, build_route
from tokens.services import token_create, token_revoke
from userkeys.models import UserKey

pytestmark = pytest.mark.django_db

USER_KEY = "sk-user-CANARY-route-1234567890"
CENTRAL_KEY = "sk-central-CANARY-route-0987654321"


@pytest.fixture
def token(developer):
    return token_create(
        user=developer, name="session", lifetime=timedelta(days=1), actor=developer
    ).token


@pytest.fixture
def direct(settings):
    settings.AI_GATEWAY_CHAT_ROUTING = False


def route_for(user, model, token=None, purpose=Purpose.CHAT):
    return build_route(
        ModelRequest(
            user=user, model=model, purpose=purpose, api_key_id=token.pk if token else None
        )
    )


# Header name and value prefix of each provider type's own auth (PROVIDERS.md), written out.
PROVIDER_AUTH = {
    "anthropic": ("x-api-key", ""),
    "openai": ("Authorization", "Bearer "),
    "google": ("x-goog-api-key", ""),
    "azure-openai": ("api-key", ""),
    "aws-bedrock": ("Authorization", "Bearer "),
    "openai-compatible": ("Authorization", "Bearer "),
    "openrouter": ("Authorization", "Bearer "),
    "vercel-ai-gateway": ("Authorization", "Bearer "),
}


@pytest.mark.parametrize("provider_type", PROVIDER_AUTH)
@pytest.mark.parametrize("path", [RoutePath.DIRECT, RoutePath.GATEWAY])
def test_a_user_key_travels_in_the_providers_own_auth_header(
    settings, provider_type, path, make_provider, make_model, save_user_key, developer, token
):
    settings.AI_GATEWAY_CHAT_ROUTING = path == RoutePath.GATEWAY
    provider = make_provider(provider_type, api_key=None)
    save_user_key(developer, provider, USER_KEY)
    model = make_model("m-1", provider_type)
    route = route_for(developer, model, token)
    name, prefix = PROVIDER_AUTH[provider_type]
    sent = route.headers.reveal()
    assert sent[name] == f"{prefix}{USER_KEY}"
    assert route.credential_source == CredentialSource.USER and route.path == path
    if provider_type == "anthropic":
        assert sent["anthropic-version"] == "2023-06-01"
    if path == RoutePath.GATEWAY:
        assert sent["X-Coder-AI-Governance-Token"] == "delegated"
        assert route.base_url == f"http://ai-gateway.in-process/api/v2/aibridge/{provider_type}/v1"
        assert route.identity.user_id == developer.pk and route.identity.api_key_id == token.pk
    else:
        assert "X-Coder-AI-Governance-Token" not in sent and route.identity is None


def test_direct_routes_go_to_each_providers_api_root(direct, make_provider, make_model, developer):
    expected = {
        "anthropic": "https://api.anthropic.com/v1",
        "openai": "https://api.openai.com/v1",
        "google": "https://generativelanguage.googleapis.com/v1beta",
        "openrouter": "https://openrouter.ai/api/v1",
        "vercel-ai-gateway": "https://ai-gateway.vercel.sh/v1",
        "openai-compatible": "https://llm.internal.example/v1",
    }
    for provider_type, url in expected.items():
        model = make_model(f"m-{provider_type}", provider_type)
        assert route_for(developer, model).base_url == url


def test_bedrock_uses_the_providers_region_or_its_base_url(
    direct, make_provider, make_model, developer
):
    provider = make_provider("aws-bedrock", region="eu-central-1")
    model = make_model("anthropic.claude-sonnet-4-5", "aws-bedrock")
    assert (
        route_for(developer, model).base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    )
    provider.base_url = "https://bedrock.proxy.example"
    provider.save()
    model.refresh_from_db()
    assert route_for(developer, model).base_url == "https://bedrock.proxy.example"


def test_a_gateway_route_with_the_central_key_carries_no_provider_credential(
    make_provider, make_model, developer, token
):
    make_provider("openai", api_key=CENTRAL_KEY)
    model = make_model("gpt-5", "openai")
    route = route_for(developer, model, token)
    assert route.path == RoutePath.GATEWAY and route.credential_source == CredentialSource.CENTRAL
    sent = route.headers.reveal()
    assert CENTRAL_KEY not in repr(sent)
    assert not {"Authorization", "x-api-key", "x-goog-api-key", "api-key"} & set(sent)
    assert "X-Coder-AI-Governance-Token" not in sent
    assert route.identity.api_key_id == token.pk


def test_the_deployment_fallback_key_is_never_forwarded(
    make_provider, make_model, developer, token
):
    make_provider(
        "anthropic", api_key=CENTRAL_KEY, user_keys_allowed=True, central_key_fallback=True
    )
    model = make_model("claude-sonnet-4-5", "anthropic")
    route = route_for(developer, model, token)
    assert route.credential_source == CredentialSource.CENTRAL
    assert CENTRAL_KEY not in repr(route.headers.reveal())
    assert set(route.headers.reveal()) == {"anthropic-version"}


def test_a_direct_route_needs_no_api_key_id(direct, make_provider, make_model, developer):
    make_provider("openai", api_key=CENTRAL_KEY)
    route = route_for(developer, make_model("gpt-5", "openai"), token=None)
    assert route.path == RoutePath.DIRECT
    assert route.headers.reveal()["Authorization"] == f"Bearer {CENTRAL_KEY}"


@pytest.mark.parametrize("ai_gateway_enabled", [True, False])
@pytest.mark.parametrize("chat_routing", [True, False])
@pytest.mark.parametrize("byok", [True, False])
def test_both_deployment_settings_decide_the_path(
    settings,
    ai_gateway_enabled,
    chat_routing,
    byok,
    make_provider,
    make_model,
    save_user_key,
    developer,
    token,
):
    settings.AI_GATEWAY_ENABLED = ai_gateway_enabled
    settings.AI_GATEWAY_CHAT_ROUTING = chat_routing
    provider = make_provider("openai", api_key=CENTRAL_KEY, user_keys_allowed=byok)
    if byok:
        save_user_key(developer, provider, USER_KEY)
    route = route_for(developer, make_model("gpt-5", "openai"), token)
    through_gateway = ai_gateway_enabled and chat_routing
    assert route.path == (RoutePath.GATEWAY if through_gateway else RoutePath.DIRECT)
    sent = route.headers.reveal()
    if byok:
        assert sent["Authorization"] == f"Bearer {USER_KEY}"
        assert (sent.get("X-Coder-AI-Governance-Token") == "delegated") is through_gateway
    elif through_gateway:
        assert "Authorization" not in sent
    else:
        assert sent["Authorization"] == f"Bearer {CENTRAL_KEY}"


def test_routes_hide_credentials_in_every_default_string_form(
    make_provider, make_model, save_user_key, developer, token, caplog
):
    provider = make_provider("openai", api_key=None)
    save_user_key(developer, provider, USER_KEY)
    route = route_for(developer, make_model("gpt-5", "openai"), token)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("route %s headers %r", route, route.headers)
    logging.getLogger("test").info("fmt %(route)s", {"route": route})
    try:
        raise RuntimeError(f"call failed for {route} with {route.headers}")
    except RuntimeError as error:
        message = str(error)
    forms = [
        repr(route),
        str(route),
        f"{route}",
        f"{route.headers}",
        f"{route.headers!r}",
        "%s" % route,
        "%r" % (route.headers,),
        str(vars(route)),
        repr(dict(route.headers)),
        str(route.explain()),
        message,
        caplog.text,
    ]
    for text in forms:
        assert USER_KEY not in text and USER_KEY[:20] not in text
    assert "********" in repr(route)
    assert route.headers.reveal()["Authorization"] == f"Bearer {USER_KEY}"


@pytest.mark.parametrize("case", ["missing", "expired", "revoked", "other-user", "deactivated"])
def test_gateway_routes_fail_closed_without_an_active_key_of_this_user(
    case, make_provider, make_model, developer, other_developer, token, no_network
):
    make_provider("openai")
    model = make_model("gpt-5", "openai")
    api_key = token
    if case == "missing":
        api_key = None
    elif case == "expired":
        token.expires_at = timezone.now() - timedelta(seconds=1)
        token.save()
    elif case == "revoked":
        token_revoke(token=token, actor=developer)
    elif case == "other-user":
        api_key = token_create(
            user=other_developer, name="x", lifetime=timedelta(days=1), actor=None
        ).token
    elif case == "deactivated":
        User.objects.filter(pk=developer.pk).update(is_active=False)
    with pytest.raises(NoActiveApiKey) as error:
        route_for(developer, model, api_key)
    expected = {
        "missing": "api_key_missing",
        "expired": "api_key_expired",
        "revoked": "api_key_revoked",
        "other-user": "api_key_not_yours",
        "deactivated": "user_deactivated",
    }[case]
    assert error.value.code == expected
    assert "sign in again" in error.value.message.lower() or case == "deactivated"
    assert no_network == []


def test_an_unusable_chat_model_is_a_typed_error_saying_what_to_do(
    make_provider, make_model, developer, token, direct
):
    make_provider("openai", api_key=None)  # user keys only
    model = make_model("gpt-5", "openai")
    with pytest.raises(ModelUnavailable) as error:
        route_for(developer, model, token)
    assert error.value.code == "user_api_key_required"
    assert "Settings → API Keys" in error.value.message and error.value.user_can_fix
    Provider.objects.filter(type="openai").update(central_key_enabled=True, user_keys_allowed=False)
    with pytest.raises(ModelUnavailable) as error:
        route_for(developer, model, token)
    assert error.value.code == "missing_api_key"
    assert "Contact an administrator" in error.value.message and not error.value.user_can_fix


def test_the_next_call_reflects_a_removed_key_a_policy_flag_and_a_disabled_provider(
    make_provider, make_model, save_user_key, developer, token
):
    provider = make_provider(
        "openai", api_key=CENTRAL_KEY, user_keys_allowed=True, central_key_fallback=True
    )
    save_user_key(developer, provider, USER_KEY)
    model = make_model("gpt-5", "openai")
    assert route_for(developer, model, token).credential_source == CredentialSource.USER
    UserKey.objects.all().delete()
    assert route_for(developer, model, token).credential_source == CredentialSource.CENTRAL
    Provider.objects.filter(pk=provider.pk).update(central_key_fallback=False)
    with pytest.raises(ModelUnavailable, match="personal"):
        route_for(developer, model, token)
    Provider.objects.filter(pk=provider.pk).update(central_key_fallback=True, enabled=False)
    with pytest.raises(ModelUnavailable) as error:
        route_for(developer, model, token)
    assert error.value.code == "provider_disabled"


def test_building_a_route_takes_a_constant_number_of_queries(
    big_deployment, developer, token, django_assert_max_num_queries
):
    model = ModelConfig.objects.usable().filter(provider__type="anthropic").first()
    for purpose in Purpose:
        with django_assert_max_num_queries(5):
            route = route_for(developer, model, token, purpose=purpose)
            route.explain()


# -- purposes ------------------------------------------------------------------------------


@pytest.fixture
def catalog(make_provider, make_model):
    make_provider("anthropic")
    make_provider("openai")
    make_provider("google")
    return {
        "opus": make_model("claude-opus-4-6", "anthropic"),
        "haiku": make_model("claude-haiku-4-5", "anthropic"),
        "gpt": make_model("gpt-5", "openai"),
        "mini": make_model("gpt-5-mini", "openai"),
        "gemini": make_model("gemini-2.5-pro", "google"),
        "flash": make_model("gemini-2.5-flash", "google"),
    }


def chosen(developer, token, chat_model, purpose):
    return route_for(developer, chat_model, token, purpose=purpose).model.identifier


def test_chat_uses_the_chats_model(catalog, developer, token):
    assert chosen(developer, token, catalog["gpt"], Purpose.CHAT) == "gpt-5"


def test_title_prefers_a_small_model_of_the_chats_provider(catalog, developer, token):
    assert chosen(developer, token, catalog["opus"], Purpose.TITLE) == "claude-haiku-4-5"
    assert chosen(developer, token, catalog["gpt"], Purpose.TITLE) == "gpt-5-mini"
    assert chosen(developer, token, catalog["gemini"], Purpose.TITLE) == "gemini-2.5-flash"


def test_title_falls_back_to_another_small_model_then_the_chats_model(catalog, developer, token):
    ModelConfig.objects.filter(identifier__in=["gpt-5-mini"]).update(enabled=False)
    assert chosen(developer, token, catalog["gpt"], Purpose.TITLE) == "claude-haiku-4-5"
    ModelConfig.objects.filter(identifier__in=["claude-haiku-4-5", "gemini-2.5-flash"]).update(
        enabled=False
    )
    assert chosen(developer, token, catalog["gpt"], Purpose.TITLE) == "gpt-5"


def test_title_uses_the_admins_override_when_usable(catalog, developer, token):
    purpose_model_set(purpose=Purpose.TITLE, model=catalog["gemini"], actor=None)
    assert chosen(developer, token, catalog["opus"], Purpose.TITLE) == "gemini-2.5-pro"
    Provider.objects.filter(type="google").update(enabled=False)
    assert chosen(developer, token, catalog["opus"], Purpose.TITLE) == "claude-haiku-4-5"


def test_quick_generation_follows_title_with_temperature_zero(catalog, developer, token):
    ModelConfig.objects.filter(pk=catalog["haiku"].pk).update(temperature=0.7)
    route = route_for(developer, catalog["opus"], token, purpose=Purpose.QUICK)
    assert route.model.identifier == "claude-haiku-4-5"
    assert route.options["temperature"] == 0


@pytest.mark.parametrize("purpose", [Purpose.ADVISOR, Purpose.SUBAGENT])
def test_advisor_and_subagent_use_their_override_when_usable(purpose, catalog, developer, token):
    assert chosen(developer, token, catalog["opus"], purpose) == "claude-opus-4-6"
    purpose_model_set(purpose=purpose, model=catalog["gpt"], actor=None)
    assert chosen(developer, token, catalog["opus"], purpose) == "gpt-5"


@pytest.mark.parametrize("purpose", [Purpose.ADVISOR, Purpose.SUBAGENT])
def test_an_override_unusable_for_this_user_falls_back_to_the_chats_model(
    purpose, catalog, developer, token
):
    purpose_model_set(purpose=purpose, model=catalog["gpt"], actor=None)
    Provider.objects.filter(type="openai").update(central_key_enabled=False, user_keys_allowed=True)
    assert chosen(developer, token, catalog["opus"], purpose) == "claude-opus-4-6"
    ModelConfig.objects.filter(pk=catalog["opus"].pk).update(enabled=False)
    with pytest.raises(OverrideUnusable) as error:
        route_for(developer, catalog["opus"], token, purpose=purpose)
    assert "GPT 5" in error.value.message or "gpt" in error.value.message.lower()
    assert "Choose another model" in error.value.message


def test_computer_use_picks_by_provider_type_anthropic_first(catalog, developer, token):
    assert chosen(developer, token, catalog["gpt"], Purpose.COMPUTER_USE).startswith("claude-")
    assert chosen(developer, token, catalog["haiku"], Purpose.COMPUTER_USE) == "claude-haiku-4-5"
    Provider.objects.filter(type="anthropic").update(enabled=False)
    assert chosen(developer, token, catalog["gemini"], Purpose.COMPUTER_USE) == "gpt-5"
    Provider.objects.filter(type="openai").update(enabled=False)
    with pytest.raises(NoUsableModel, match="can use a computer"):
        route_for(developer, catalog["gemini"], token, purpose=Purpose.COMPUTER_USE)


# -- provider request options --------------------------------------------------------------


def options_for(make_provider, make_model, developer, provider_type, options=None, **general):
    model = make_model("m-opts", provider_type, options=options or {}, **general)
    return route_for(developer, model).options


SAMPLING = {
    "max_output_tokens": 1000,
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
}


@pytest.mark.parametrize(
    "provider_type, options, expected",
    [
        (
            "anthropic",
            {"thinking_budget_tokens": 2048, "effort": "high"},
            {
                "max_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 40,
                "thinking": {"type": "enabled", "budget_tokens": 2048},
                "output_config": {"effort": "high"},
            },
        ),
        (
            "aws-bedrock",
            {"thinking_budget_tokens": 1024},
            {
                "max_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 40,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
            },
        ),
        (
            "openai",
            {"reasoning_effort": "low", "parallel_tool_calls": False},
            {
                "max_completion_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "reasoning_effort": "low",
                "parallel_tool_calls": False,
            },
        ),
        (
            "azure-openai",
            {"max_completion_tokens": 4000},
            {
                "max_completion_tokens": 4000,
                "temperature": 0.5,
                "top_p": 0.9,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
            },
        ),
        (
            "openai-compatible",
            {},
            {
                "max_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
            },
        ),
        (
            "openrouter",
            {"reasoning_enabled": True, "reasoning_effort": "medium"},
            {
                "max_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 40,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "reasoning": {"enabled": True, "effort": "medium"},
            },
        ),
        (
            "vercel-ai-gateway",
            {"reasoning_effort": "high"},
            {
                "max_tokens": 1000,
                "temperature": 0.5,
                "top_p": 0.9,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "reasoning": {"effort": "high"},
            },
        ),
        (
            "google",
            {"thinking_budget": 512, "include_thoughts": True},
            {
                "generationConfig": {
                    "maxOutputTokens": 1000,
                    "temperature": 0.5,
                    "topP": 0.9,
                    "topK": 40,
                    "presencePenalty": 0.1,
                    "frequencyPenalty": 0.2,
                    "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
                }
            },
        ),
    ],
)
def test_options_map_to_each_apis_own_names(
    direct, provider_type, options, expected, make_provider, make_model, developer
):
    got = options_for(make_provider, make_model, developer, provider_type, options, **SAMPLING)
    assert got == expected


def test_a_model_without_options_sends_none(direct, make_provider, make_model, developer):
    for provider_type in ProviderType.values:
        model = make_model(f"plain-{provider_type}", provider_type)
        assert route_for(developer, model).options == {}

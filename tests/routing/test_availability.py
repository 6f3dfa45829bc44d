import json

import pytest
from django.urls import reverse

from models_catalog.services import model_set_default
from providers.models import Provider
from providers.services import provider_save
from routing.availability import availability_for

pytestmark = pytest.mark.django_db

API = reverse("routing:available-models")


def test_availability_takes_three_queries_at_scale(
    big_deployment, developer, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        availability = availability_for(developer)
        models = availability.models
        labels = [g.provider.label for g in availability.groups]
        reasons = sorted((u.provider.type, u.reason.value) for u in availability.unavailable)
    # big_deployment: anthropic, azure, openrouter central only; openai, bedrock, vercel user
    # keys only; google, openai-compatible with fallback. The developer's one key is for
    # Anthropic, which takes no user keys. Model i belongs to provider i % 8 and is off when
    # i % 10 == 0: 50 + 63 + 50 + 62 + 50 usable models.
    assert labels == ["Anthropic", "Azure OpenAI", "Google", "OpenAI Compatible", "OpenRouter"]
    assert reasons == [
        ("aws-bedrock", "user_api_key_required"),
        ("openai", "user_api_key_required"),
        ("vercel-ai-gateway", "user_api_key_required"),
    ]
    assert len(models) == 275


def test_the_api_takes_a_constant_number_of_queries(
    big_deployment, developer_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):  # session + user + session token + 3
        response = developer_client.get(API)
    assert response.status_code == 200


def test_only_enabled_models_of_available_providers_are_listed(
    make_provider, make_model, save_user_key, developer
):
    make_model("claude", "anthropic")
    make_model("claude-off", "anthropic", enabled=False)
    make_model("gpt", "openai")
    make_provider("google", api_key=None)
    make_model("gemini", "google")
    provider_save(provider_type="openai", actor=None, changes={"enabled": False})
    availability = availability_for(developer)
    assert [m.identifier for m in availability.models] == ["claude"]
    assert [(u.provider.type, u.reason.value) for u in availability.unavailable] == [
        ("google", "user_api_key_required")
    ]
    save_user_key(developer, Provider.objects.get(type="google"))
    assert [m.identifier for m in availability_for(developer).models] == ["claude", "gemini"]


def test_grouped_only_when_several_providers_are_active(make_model, developer):
    make_model("claude", "anthropic")
    assert availability_for(developer).grouped is False
    make_model("gpt", "openai")
    assert availability_for(developer).grouped is True


def test_preselection_last_used_then_default_then_first(make_model, developer):
    a = make_model("a-model", display_name="Alpha")
    b = make_model("b-model", display_name="Bravo")
    c = make_model("c-model", display_name="Charlie")
    assert availability_for(developer).preselect() == a
    model_set_default(model=b, actor=None)
    availability = availability_for(developer)
    assert availability.preselect() == b
    assert availability.preselect(last_used=str(c.pk)) == c
    assert availability.preselect(last_used="999999") == b  # no longer available
    assert availability.preselect(last_used="not-a-number") == b


def test_a_default_the_user_cannot_use_is_not_preselected(make_model, make_provider, developer):
    make_provider("openai", api_key=None)
    gpt = make_model("gpt", "openai")
    claude = make_model("claude", "anthropic")
    model_set_default(model=gpt, actor=None)
    availability = availability_for(developer)
    assert availability.default_model is None
    assert availability.preselect() == claude


def test_nothing_usable_tells_the_user_how_to_fix_it_or_whom_to_ask(
    make_provider, make_model, developer
):
    assert availability_for(developer).empty_message() == (
        "No models are available to you. Contact an administrator."
    )
    make_provider("anthropic", api_key=None)
    make_model("claude", "anthropic")
    message = availability_for(developer).empty_message() or ""
    assert "Add your personal API key for Anthropic in Settings → API Keys" in message


def test_the_api_returns_the_selector_data(make_model, make_provider, developer_client):
    claude = make_model("claude", "anthropic", display_name="Claude")
    make_model("gpt", "openai", display_name="GPT")
    make_provider("google", api_key=None)
    model_set_default(model=claude, actor=None)
    data = json.loads(developer_client.get(API).content)
    assert data["grouped"] is True
    assert [g["provider"] for g in data["groups"]] == ["anthropic", "openai"]
    assert data["groups"][0]["models"][0] == {
        "id": claude.pk,
        "identifier": "claude",
        "display_name": "Claude",
        "context_limit": 200000,
        "default": True,
    }
    assert data["default_model_id"] == data["selected_model_id"] == claude.pk
    assert data["unavailable_providers"] == [
        {
            "provider": "google",
            "label": "Google",
            "reason": "user_api_key_required",
            "action": "add_personal_key",
            "url": reverse("userkeys:list"),
        }
    ]
    assert data["message"] is None
    gpt_id = data["groups"][1]["models"][0]["id"]
    assert (
        json.loads(developer_client.get(API, {"last_used": gpt_id}).content)["selected_model_id"]
        == gpt_id
    )


def test_the_api_needs_a_signed_in_user(client):
    response = client.get(API)
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] == "not_authenticated"


def test_the_agents_page_shows_the_selector_or_what_to_do(
    developer_client, make_model, make_provider
):
    page = reverse("chats:agents")
    assert b"Contact an administrator" in developer_client.get(page).content
    make_model("claude", "anthropic", display_name="Claude")
    make_model("gpt", "openai", display_name="GPT")
    content = developer_client.get(page).content.decode()
    assert '<optgroup label="Anthropic">' in content
    assert "Claude · 200K context</option>" in content


def test_missing_api_key_tells_developers_to_contact_an_administrator(
    developer_client, make_provider, make_model
):
    from cryptography.fernet import Fernet
    from django.test import override_settings

    with override_settings(ENCRYPTION_KEYS=f"lost:{Fernet.generate_key().decode()}"):
        make_provider("openai")  # its central key can no longer be decrypted
    make_model("gpt-5", "openai")
    page = developer_client.get(reverse("chats:agents")).content.decode()
    assert "No models are available to you. Contact an administrator." in page
    assert "not available: contact an administrator." in page
    assert reverse("userkeys:list") + '">' not in page.split("Unavailable providers")[1]
    data = json.loads(developer_client.get(API).content)
    assert data["unavailable_providers"] == [
        {
            "provider": "openai",
            "label": "OpenAI",
            "reason": "missing_api_key",
            "action": "contact_administrator",
            "url": None,
        }
    ]
    assert data["message"] == "No models are available to you. Contact an administrator."

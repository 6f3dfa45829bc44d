"""The default star's warnings (Models tab and `manage.py check`) and the reach counts."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from models_catalog.services import model_set_default, model_set_enabled
from providers.models import Provider
from providers.services import provider_save
from routing.reach import default_model_warnings, provider_reach

pytestmark = pytest.mark.django_db


def _star(make_model, provider_type="anthropic", **provider):
    model = make_model("claude-opus-4-6", provider_type, display_name="Claude Opus")
    if provider:
        provider_save(provider_type=provider_type, actor=None, changes=provider)
    model_set_default(model=model, actor=None)
    model.refresh_from_db()
    return model


def _check_output() -> str:
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


def test_a_usable_default_has_no_warning(make_model, developer):
    _star(make_model)
    assert default_model_warnings() == []
    assert "routing.W001" not in _check_output()


def test_no_default_has_no_warning(make_model):
    make_model()
    assert default_model_warnings() == []


def test_a_disabled_default_is_warned_about(make_model, developer):
    model = _star(make_model)
    # Disabling through the service moves the star; a default disabled some other way
    # (the Django admin, a data migration) still has to be noticed.
    type(model).objects.filter(pk=model.pk).update(enabled=False)
    [warning] = default_model_warnings()
    assert "Claude Opus is disabled" in warning
    assert "routing.W001" in _check_output() and "Claude Opus is disabled" in _check_output()


def test_a_default_whose_provider_is_disabled_is_warned_about(make_model, developer):
    _star(make_model)
    Provider.objects.filter(type="anthropic").update(enabled=False)
    [warning] = default_model_warnings()
    assert "belongs to Anthropic, which is disabled" in warning


def test_a_default_nobody_can_use_is_warned_about(make_model, developer):
    _star(make_model, "openai", user_keys_allowed=True)  # own key required, nobody has one
    [warning] = default_model_warnings()
    assert warning.startswith("Nobody can use the default model Claude Opus now")
    assert "needs a personal key and nobody has saved one" in warning


def test_a_default_with_no_usable_central_key_says_so(make_model, developer):
    _star(make_model)
    Provider.objects.filter(type="anthropic").update(api_key=None)
    [warning] = default_model_warnings()
    assert "Anthropic has no usable central key" in warning


def test_a_default_only_personal_key_users_can_use_is_warned_about(
    make_model, developer, other_developer, save_user_key
):
    _star(make_model, "openai", user_keys_allowed=True)
    save_user_key(developer, Provider.objects.get(type="openai"))
    [warning] = default_model_warnings()
    assert warning.startswith("Only the 1 person with a personal OpenAI key")
    # Once everyone has a key, nobody is left out.
    save_user_key(other_developer, Provider.objects.get(type="openai"))
    assert default_model_warnings() == []


def test_the_models_tab_shows_the_star_warning(staff_client, make_model):
    _star(make_model, "openai", user_keys_allowed=True)
    page = staff_client.get(reverse("models:list")).content.decode()
    assert 'data-testid="star-warnings"' in page and "Nobody can use the default model" in page


def test_the_models_tab_shows_no_warning_for_a_healthy_star(staff_client, make_model):
    model = _star(make_model)
    model_set_enabled(model=model, enabled=True, actor=None)
    assert "star-warnings" not in staff_client.get(reverse("models:list")).content.decode()


def test_reach_counts_in_two_queries_whatever_the_size(
    make_provider, developer, other_developer, save_user_key, django_assert_num_queries
):
    providers = [make_provider(t, api_key=None) for t in ("openai", "google", "openrouter")]
    for provider in providers:
        save_user_key(developer, provider)
    with django_assert_num_queries(2):
        reach = provider_reach(providers)
    assert {str(r) for r in reach.values()} == {"1 of 2 people"}

"""Findings 1 and 3 of the hardening probe, and the star never on a disabled provider."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from models_catalog.models import ModelConfig
from models_catalog.services import model_set_default
from providers.services import provider_save

from .test_views import model_data

pytestmark = pytest.mark.django_db

# "٣٣٣٣٣٣٣" is Arabic-Indic digits, which int() reads (as 3333333): no provider has that id,
# where a single "٣" meant provider 3 whenever the test's provider happened to get id 3.
ODD_IDS = ["²", "①", "٣٣٣٣٣٣٣", "1" * 4301, "9" * 30, "-1", "1.0", " ", "0x10", "1e3"]


@pytest.mark.parametrize("value", ODD_IDS, ids=lambda v: f"{v[:6]}-{len(v)}")
def test_finding_1_odd_provider_ids_are_never_a_500(staff_client, make_model, value):
    model = make_model()
    add = reverse("models:add")
    assert staff_client.get(add, {"provider": value}).status_code == 200
    response = staff_client.get(
        add, {"provider": value}, headers={"HX-Request": "true", "HX-Target": "provider-options"}
    )
    assert response.status_code == 200
    response = staff_client.post(add, model_data(model.provider, provider=value))
    assert response.status_code == 422 and "provider" in response.context["form"].errors
    edit = reverse("models:edit", args=[model.pk])
    response = staff_client.post(edit, model_data(model.provider, provider=value))
    assert response.status_code == 422
    assert ModelConfig.objects.count() == 1


def test_finding_3_a_blank_display_name_is_refused_by_the_command_as_by_the_form(
    staff_client, make_model
):
    model = make_model("claude-opus-4-6", display_name="Claude Opus")
    with pytest.raises(CommandError, match="display_name: This field cannot be blank"):
        call_command(
            "model_set",
            "anthropic",
            "claude-opus-4-6",
            "--display-name",
            "   ",
            stdout=io.StringIO(),
        )
    response = staff_client.post(
        reverse("models:edit", args=[model.pk]), model_data(model.provider, display_name="   ")
    )
    assert response.status_code == 422 and "display_name" in response.context["form"].errors
    model.refresh_from_db()
    assert model.display_name == "Claude Opus"


def test_the_star_cannot_be_set_on_a_model_of_a_disabled_provider(staff_client, make_model):
    model = make_model()
    provider_save(provider_type="anthropic", actor=None, changes={"enabled": False})
    with pytest.raises(ValidationError, match="its provider is disabled"):
        model_set_default(model=model, actor=None)
    response = staff_client.post(reverse("models:star", args=[model.pk]), follow=True)
    assert b"its provider is disabled" in response.content
    with pytest.raises(CommandError, match="its provider is disabled"):
        call_command("model_set_default", "anthropic", model.identifier, stdout=io.StringIO())
    assert not ModelConfig.objects.filter(is_default=True).exists()


def test_disabling_a_provider_moves_the_star_to_an_enabled_provider_only(staff_client, make_model):
    claude = make_model("claude", "anthropic")
    make_model("claude-2", "anthropic")
    bedrock = make_model("bedrock-claude", "aws-bedrock")
    gpt = make_model("gpt", "openai")
    model_set_default(model=claude, actor=None)
    provider_save(provider_type="aws-bedrock", actor=None, changes={"enabled": False})
    response = staff_client.post(
        reverse("providers:edit", args=["anthropic"]),
        {"enabled": "", "central_key_enabled": "on"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert f"the default is now {gpt}" in response.content.decode()
    assert ModelConfig.objects.get(is_default=True) == gpt
    assert not ModelConfig.objects.filter(pk=bedrock.pk, is_default=True).exists()
    listed = staff_client.get(reverse("models:list")).content.decode()
    assert f"Default: <strong>{gpt}</strong>" in listed


def test_deleting_the_default_never_moves_the_star_to_a_disabled_provider(make_model):
    from models_catalog.services import model_delete

    claude = make_model("claude", "anthropic")
    make_model("bedrock-claude", "aws-bedrock")
    model_set_default(model=claude, actor=None)
    provider_save(provider_type="aws-bedrock", actor=None, changes={"enabled": False})
    moved = model_delete(model=claude, actor=None)
    assert moved.current is None
    assert not ModelConfig.objects.filter(is_default=True).exists()

import pytest

from audit.models import AuditEntry
from providers.models import Provider

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_the_key_state_and_never_the_key(staff_client, make_provider):
    provider = make_provider("anthropic", api_key="sk-admin-secret")
    response = staff_client.get(f"/django-admin/providers/provider/{provider.pk}/change/")
    content = response.content.decode()
    assert 'type="password" name="api_key"' in content
    assert "sk-admin-secret" not in content
    assert '<div class="readonly">set</div>' in content


def test_a_typed_key_is_not_echoed_after_an_error(staff_client, make_provider):
    provider = make_provider("anthropic", api_key="sk-admin-secret")
    url = f"/django-admin/providers/provider/{provider.pk}/change/"
    typed = "sk-ant-TYPED-in-the-admin-0042"
    response = staff_client.post(url, {"api_key": typed, "base_url": "ftp://wrong"})
    assert response.status_code == 200
    assert "base_url" in response.context["adminform"].form.errors
    assert typed not in response.content.decode()
    add = staff_client.post(
        "/django-admin/providers/provider/add/",
        {
            "type": "openai",
            "api_key": typed,
            "base_url": "ftp://wrong",
            "central_key_enabled": "on",
        },
    )
    assert add.status_code == 200 and typed not in add.content.decode()
    provider.refresh_from_db()
    assert provider.api_key.reveal() == "sk-admin-secret"


def test_changes_through_the_django_admin_are_validated_and_audited(staff_client, make_provider):
    provider = make_provider("anthropic")
    url = f"/django-admin/providers/provider/{provider.pk}/change/"
    bad = staff_client.post(url, {"enabled": "on"})
    assert bad.status_code == 200
    assert "At least one credential source must be on" in bad.content.decode()
    good = staff_client.post(
        url, {"enabled": "on", "central_key_enabled": "on", "base_url": "https://eu.example.com"}
    )
    assert good.status_code == 302
    provider.refresh_from_db()
    assert provider.base_url == "https://eu.example.com"
    assert provider.api_key.reveal() == "sk-test-central-key"
    assert AuditEntry.objects.filter(action="update", changed_fields=["base_url"]).exists()


def test_deleting_through_the_django_admin_is_audited(staff_client, make_provider):
    provider = make_provider("openai")
    staff_client.post(f"/django-admin/providers/provider/{provider.pk}/delete/", {"post": "yes"})
    assert not Provider.objects.exists()
    assert AuditEntry.objects.filter(action="delete", object_repr="OpenAI").exists()


def test_developers_cannot_open_the_django_admin(developer_client):
    response = developer_client.get("/django-admin/providers/provider/")
    assert response.status_code == 302


def test_bulk_deleting_providers_is_audited_and_moves_the_star(staff_client, make_model):
    from models_catalog.models import ModelConfig
    from models_catalog.services import model_set_default

    claude = make_model("claude", "anthropic")
    gpt = make_model("gpt", "openai")
    make_model("gemini", "google")
    model_set_default(model=claude, actor=None)
    ids = list(
        Provider.objects.filter(type__in=["anthropic", "openai"]).values_list("pk", flat=True)
    )
    response = staff_client.post(
        "/django-admin/providers/provider/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert set(Provider.objects.values_list("type", flat=True)) == {"google"}
    deleted = set(AuditEntry.objects.filter(action="delete").values_list("object_repr", flat=True))
    assert {"Anthropic", "OpenAI"} <= deleted
    assert ModelConfig.objects.get(is_default=True).identifier == "gemini"
    assert not ModelConfig.objects.filter(pk=gpt.pk).exists()


def test_deleting_a_user_key_in_the_django_admin_is_audited(
    staff_client, make_provider, developer, save_user_key
):
    from userkeys.models import UserKey

    key = save_user_key(developer, make_provider("openai", user_keys_allowed=True))
    response = staff_client.post(
        f"/django-admin/userkeys/userkey/{key.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not UserKey.objects.exists()
    entry = AuditEntry.objects.get(action="clear_key")
    assert entry.actor.username == "alice" and "OpenAI" in entry.object_repr


def test_saving_a_model_in_the_django_admin_goes_through_the_service(staff_client, make_model):
    from models_catalog.models import ModelConfig
    from models_catalog.services import model_set_default

    model = make_model("claude", "anthropic")
    model_set_default(model=model, actor=None)
    url = f"/django-admin/models_catalog/modelconfig/{model.pk}/change/"
    data = {
        "provider": model.provider.pk,
        "identifier": "claude",
        "display_name": "Claude",
        "context_limit": "100000",
        "compression_threshold": "70",
        "enabled": "on",
        "option_effort": "ultra",
    }
    bad = staff_client.post(url, data)
    assert bad.status_code == 200 and "option_effort" in bad.context["adminform"].form.errors
    good = staff_client.post(url, {**data, "option_effort": "high", "is_default": ""})
    assert good.status_code == 302
    model.refresh_from_db()
    assert (model.context_limit, model.options) == (100_000, {"effort": "high"})
    assert model.is_default  # not editable there: a posted value cannot clear the star
    assert AuditEntry.objects.filter(
        action="update", object_id=str(model.pk), changed_fields=["context_limit", "options"]
    ).exists()
    staff_client.post(url, {**data, "option_effort": "", "enabled": ""})
    assert not ModelConfig.objects.filter(is_default=True).exists()  # disabling moved it


def test_deleting_the_default_model_in_the_django_admin_moves_the_star(staff_client, make_model):
    from models_catalog.models import ModelConfig
    from models_catalog.services import model_set_default

    first, second = make_model("a-model"), make_model("b-model")
    model_set_default(model=first, actor=None)
    url = f"/django-admin/models_catalog/modelconfig/{first.pk}/delete/"
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    assert ModelConfig.objects.get(is_default=True) == second
    assert AuditEntry.objects.filter(action="set_default", object_id=str(second.pk)).exists()

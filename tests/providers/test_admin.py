import pytest

from audit.models import AuditEntry
from providers.models import Provider

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_the_key_state_and_an_empty_password_field(
    staff_client, make_provider
):
    provider = make_provider("anthropic", api_key="sk-admin-secret")
    response = staff_client.get(f"/django-admin/providers/provider/{provider.pk}/change/")
    content = response.content.decode()
    assert 'type="password" name="api_key"' in content
    assert 'name="api_key" value' not in content
    assert "sk-admin-secret" not in content
    assert '<div class="readonly">set</div>' in content


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

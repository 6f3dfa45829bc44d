import pytest
from django.urls import reverse

from audit.models import AuditEntry
from providers.services import provider_save

pytestmark = pytest.mark.django_db


def test_each_provider_change_records_actor_action_object_and_field_names(
    make_provider, admin_user
):
    make_provider("anthropic", actor=admin_user, api_key="sk-audit-secret")
    provider_save(provider_type="anthropic", actor=admin_user, changes={"user_keys_allowed": True})
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.actor_label, e.action, e.object_repr) for e in entries] == [
        ("alice", "create", "Anthropic"),
        ("alice", "update", "Anthropic"),
    ]
    assert entries[0].changed_fields == ["api_key"]
    assert entries[1].changed_fields == ["user_keys_allowed"]
    assert "sk-audit-secret" not in repr(list(AuditEntry.objects.values()))


def test_a_save_that_changes_nothing_records_nothing(make_provider):
    make_provider("anthropic", api_key="sk-same")
    provider_save(provider_type="anthropic", actor=None, changes={"enabled": True})
    assert AuditEntry.objects.count() == 1


def test_entries_keep_the_actor_name_after_the_user_is_deleted(make_provider, admin_user):
    make_provider("openai", actor=admin_user)
    admin_user.delete()
    entry = AuditEntry.objects.get()
    assert entry.actor is None and entry.actor_label == "alice"


def test_admins_read_the_log_newest_first_and_paginated(staff_client, make_provider, admin_user):
    for index in range(60):
        make_provider("openai", actor=admin_user, enabled=index % 2 == 0)
    response = staff_client.get(reverse("audit:list"))
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 50
    assert b"Page 1 of 2" in response.content
    assert staff_client.get(reverse("audit:list") + "?page=2").status_code == 200
    assert staff_client.get(reverse("audit:list") + "?page=zzz").status_code == 200


def test_the_log_has_an_empty_state(staff_client):
    assert b"No changes recorded yet." in staff_client.get(reverse("audit:list")).content


def test_the_audit_log_is_read_only_in_the_django_admin(staff_client, make_provider):
    make_provider("openai")
    entry = AuditEntry.objects.get()
    assert staff_client.get("/django-admin/audit/auditentry/add/").status_code == 403
    response = staff_client.post(
        f"/django-admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEntry.objects.exists()

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


def test_entries_hold_old_and_new_values_but_a_key_only_in_words(make_provider, admin_user):
    make_provider("anthropic", actor=admin_user, api_key="sk-audit-canary-0001")
    provider_save(
        provider_type="anthropic",
        actor=admin_user,
        changes={"base_url": "https://proxy.example/v1"},
        api_key="sk-audit-canary-0002",
    )
    provider_save(
        provider_type="anthropic",
        actor=admin_user,
        changes={"central_key_enabled": False, "user_keys_allowed": True},
        api_key=None,
    )
    created, updated, cleared = AuditEntry.objects.order_by("id")
    assert created.changes["api_key"] == ["not set", "set"]
    assert updated.changes == {
        "base_url": ["", "https://proxy.example/v1"],
        "api_key": ["set", "replaced"],
    }
    assert cleared.changes["api_key"] == ["set", "cleared"]
    assert cleared.changes["central_key_enabled"] == [True, False]
    assert "sk-audit-canary" not in repr(list(AuditEntry.objects.values()))


def test_model_changes_show_prices_as_entered_and_human_field_names(
    make_model, staff_client, admin_user
):
    from decimal import Decimal

    from models_catalog.services import model_save

    model = make_model("gpt-5", "openai", input_price=Decimal("15"))
    model_save(
        model=model,
        provider=model.provider,
        fields={"input_price": Decimal("2.5")},
        options=model.options,
        actor=admin_user,
    )
    entry = AuditEntry.objects.filter(object_type="models_catalog.modelconfig").first()
    assert entry.changes["input_price"] == ["15", "2.5"]
    page = staff_client.get(reverse("audit:list")).content.decode()
    assert "Input price" in page and "15 → 2.5" in page
    assert "models_catalog.modelconfig" not in page.split("<tbody>")[1]


def test_people_and_group_changes_are_recorded(admin_user, developer):
    from accounts.services import group_add_member, group_create, user_deactivate, user_set_role

    user_set_role(user=developer, role="admin", actor=admin_user)
    user_deactivate(user=developer, actor=admin_user)
    group = group_create(name="Platform", actor=admin_user)
    group_add_member(group=group, user=developer, actor=admin_user)
    recorded = [(e.object_repr, e.changes) for e in AuditEntry.objects.order_by("id")]
    assert ("dev", {"role": ["Developer", "Admin"]}) in recorded
    assert ("dev", {"is_active": [True, False]}) in recorded
    assert ("Platform", {"members": [None, "+ dev"]}) in recorded


def test_the_log_filters_by_actor_type_action_and_day(staff_client, make_provider, admin_user):
    make_provider("openai", actor=admin_user)
    make_provider("anthropic", actor=None)
    url = reverse("audit:list")

    def shown(query):
        return [e.object_repr for e in staff_client.get(url + query).context["page"].object_list]

    assert shown("?actor=alice") == ["OpenAI"]
    assert shown("?type=providers.provider&action=create") == ["Anthropic", "OpenAI"]
    assert shown("?action=delete") == []
    assert shown("?since=2999-01-01") == []
    assert shown("?until=2000-01-01") == []
    # Anything a user can type is answered, never a 500.
    for query in ("?since=2024-13-45", "?until=garbage", "?type=<b>", "?action=nope"):
        assert staff_client.get(url + query).status_code == 200
    assert b"No changes recorded that match." in staff_client.get(url + "?action=delete").content


def test_the_csv_export_follows_the_filters_and_defuses_formulas(
    staff_client, make_provider, admin_user
):
    import csv
    import io

    from accounts.services import group_create

    group_create(name="=HYPERLINK(1)", actor=admin_user)
    make_provider("anthropic", actor=None)
    response = staff_client.get(reverse("audit:list") + "?actor=alice&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:3] == ["time (UTC)", "who", "action"]
    assert {row[1] for row in table[1:]} == {"alice"}
    assert all(not cell.startswith("=") for row in table for cell in row)
    assert any(row[4] == "'=HYPERLINK(1)" for row in table[1:])


def test_times_carry_a_machine_readable_utc_stamp_for_the_local_time_script(
    staff_client, make_provider
):
    make_provider("openai")
    page = staff_client.get(reverse("audit:list")).content.decode()
    assert "data-local" in page and "UTC" in page and "js/localtime.js" in page


def test_created_entries_show_the_values_they_were_created_with(staff_client, admin_user):
    """Not only the field names: what an invitation, a group and a token were made with."""
    from datetime import timedelta

    from accounts.services import group_create, invitation_create
    from tokens.services import token_create

    group = group_create(name="platform", actor=admin_user)
    invitation_create(email="ada@example.com", role="admin", groups=[group], actor=admin_user)
    token_create(user=admin_user, name="ci", lifetime=timedelta(days=1), actor=admin_user)
    changes = {entry.object_type: entry.changes for entry in AuditEntry.objects.all()}
    assert changes["auth.group"] == {"name": [None, "platform"]}
    assert changes["accounts.invitation"]["email"] == [None, "ada@example.com"]
    assert changes["accounts.invitation"]["groups"] == [None, "platform"]
    assert changes["tokens.apitoken"]["name"] == [None, "ci"]
    page = staff_client.get(reverse("audit:list")).content.decode()
    assert "ada@example.com" in page and "platform" in page

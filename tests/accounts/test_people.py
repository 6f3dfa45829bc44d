"""Admin -> People: invitations, roles, deactivation, deletion and groups, and their commands."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Invitation
from audit.models import AuditEntry
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db

PEOPLE = reverse("accounts:people")
NEW_PASSWORD = "a-long-new-password-42"


def invite(staff_client, **data):
    payload = {"email": "", "username": "", "role": "developer", "days": 7, **data}
    return staff_client.post(reverse("accounts:invite"), payload)


def test_an_invitation_link_is_shown_once_and_stored_hashed(staff_client, caplog):
    response = invite(staff_client, email="new@example.com")
    assert response.status_code == 201
    link = response.context["invite_link"]
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token.encode() in response.content
    stored = repr(list(Invitation.objects.values())) + repr(list(AuditEntry.objects.values()))
    assert token not in stored and token.split(".")[1] not in stored
    assert token not in staff_client.get(PEOPLE).content.decode()
    assert token not in caplog.text
    assert "new@example.com" in staff_client.get(PEOPLE).content.decode()  # pending


def test_accepting_creates_the_account_with_its_role_and_groups_once(staff_client, client):
    group = Group.objects.create(name="platform")
    response = invite(staff_client, email="new@example.com", role="admin", groups=[group.pk])
    link = urlparse_path(response.context["invite_link"])
    page = client.get(link)
    assert page.status_code == 200 and 'value="new"' in page.content.decode()
    done = client.post(link, {"username": "newbie", "password1": NEW_PASSWORD,
                              "password2": NEW_PASSWORD})  # fmt: skip
    assert done.status_code == 302 and done.url == "/"
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "new@example.com" and user.is_staff and user.check_password(NEW_PASSWORD)
    assert [g.name for g in user.groups.all()] == ["platform"]
    assert client.get("/agents/").status_code == 200
    again = Client().get(link)
    assert again.status_code == 410 and b"already used" in again.content


def urlparse_path(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).path


def test_expired_revoked_and_forged_invitations_cannot_be_used(staff_client, client):
    expired = invite(staff_client, email="late@example.com")
    Invitation.objects.filter(email="late@example.com").update(expires_at=timezone.now())
    assert b"expired" in client.get(urlparse_path(expired.context["invite_link"])).content
    revoked = invite(staff_client, email="nope@example.com")
    invitation = Invitation.objects.get(email="nope@example.com")
    staff_client.post(reverse("accounts:invitation-revoke", args=[invitation.pk]))
    assert b"withdrawn" in client.get(urlparse_path(revoked.context["invite_link"])).content
    for forged in ("abc", "a" * 12 + ".x", "\u202e.x"):
        response = client.get(f"/invite/{forged}/")
        assert response.status_code in (400, 410)
    assert not get_user_model().objects.filter(email__in=["late@example.com"]).exists()


def test_a_bad_acceptance_shows_errors_and_keeps_the_invitation(staff_client, client):
    response = invite(staff_client, email="new@example.com")
    link = urlparse_path(response.context["invite_link"])
    weak = client.post(link, {"username": "newbie", "password1": "123", "password2": "123"})
    assert weak.status_code == 422 and "password1" in weak.context["form"].errors
    taken = client.post(link, {"username": "alice", "password1": NEW_PASSWORD,
                               "password2": NEW_PASSWORD})  # fmt: skip
    assert taken.status_code == 422 and "is taken" in str(taken.context["form"].errors)
    assert Invitation.objects.get().state() == "pending"


def test_an_invitation_can_be_e_mailed(staff_client):
    response = invite(staff_client, email="new@example.com", send_email="on")
    assert response.status_code == 201
    [message] = mail.outbox
    assert message.to == ["new@example.com"]
    assert urlparse_path(response.context["invite_link"]) in message.body


def test_an_invitation_whose_e_mail_cannot_be_sent_stands_and_says_so(staff_client, settings):
    """No mail server: the page says so by the link (no 500), the command in one stderr line
    (no traceback) after printing the link; the invitations stand."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    response = invite(staff_client, email="new@example.com", send_email="on")
    assert response.status_code == 201
    page = response.content.decode()
    assert 'data-testid="mail-problem"' in page and "could not be sent" in page
    assert "EMAIL_HOST" in page and 'data-testid="invite-link"' in page
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "user_invite", "--email", "other@example.com", "--send-email", stdout=out, stderr=err
        )
    assert str(refused.value).startswith("invitation made, but the e-mail could not be sent")
    assert len(str(refused.value).splitlines()) == 1
    assert "/invite/" in out.getvalue()
    assert Invitation.objects.count() == 2


def test_inviting_an_existing_address_or_nobody_is_refused(staff_client, developer):
    developer.email = "dev@example.com"
    developer.save()
    response = invite(staff_client, email="DEV@example.com")
    assert response.status_code == 422 and "already has an account" in response.content.decode()
    assert invite(staff_client).status_code == 422
    assert not Invitation.objects.exists()


def test_the_last_active_admin_cannot_be_demoted_deactivated_or_deleted(admin_user, developer):
    with pytest.raises(ValidationError, match="last active admin"):
        services.user_set_role(user=admin_user, role="developer", actor=admin_user)
    with pytest.raises(ValidationError, match="last active admin"):
        services.user_deactivate(user=admin_user, actor=None)
    with pytest.raises(ValidationError, match="last active admin"):
        services.user_delete(user=admin_user, actor=None)
    services.user_set_role(user=developer, role="admin", actor=admin_user)
    assert services.user_set_role(user=admin_user, role="developer", actor=developer) is True
    admin_user.refresh_from_db()
    assert not admin_user.is_staff and not admin_user.is_superuser


def test_deactivation_signs_out_everywhere_and_revokes_tokens_on_the_next_request(
    staff_client, developer
):
    browser = Client()
    browser.force_login(developer)
    assert browser.get("/agents/").status_code == 200
    api = token_create(user=developer, name="ci", lifetime=timedelta(days=1), actor=None)
    headers = {"Authorization": f"Bearer {api.secret}"}
    assert Client().get("/api/models/available", headers=headers).status_code == 200
    staff_client.post(reverse("accounts:person-deactivate", args=[developer.pk]))
    assert browser.get("/agents/").status_code == 302
    assert Client().get("/api/models/available", headers=headers).status_code == 401
    assert not ApiToken.objects.filter(user=developer, revoked_at__isnull=True).exists()
    developer.refresh_from_db()
    assert not developer.is_active
    staff_client.post(reverse("accounts:person-reactivate", args=[developer.pk]))
    developer.refresh_from_db()
    assert developer.is_active


def test_deleting_says_what_goes_and_keeps_usage_history(staff_client, developer, make_model):
    from chats.services import chat_start
    from gateway.models import UsageRecord

    chat_start(user=developer, model=make_model(), text="hi", api_key=None)
    UsageRecord.objects.create(
        created_at=timezone.now(), user=developer, username="dev", provider_type="anthropic",
        endpoint="messages", route="external", status=200, latency_ms=1,
    )  # fmt: skip
    confirm = staff_client.get(reverse("accounts:person-delete", args=[developer.pk]))
    assert (
        "1 chat" in confirm.content.decode() and "usage history is kept" in confirm.content.decode()
    )
    staff_client.post(reverse("accounts:person-delete", args=[developer.pk]))
    assert not get_user_model().objects.filter(username="dev").exists()
    row = UsageRecord.objects.get()
    assert row.user_id is None and row.username == "dev"


def test_groups_are_created_renamed_joined_left_and_deleted(staff_client, developer):
    staff_client.post(reverse("accounts:group-create"), {"name": "platform"})
    group = Group.objects.get()
    duplicate = staff_client.post(reverse("accounts:group-create"), {"name": "PLATFORM"})
    assert duplicate.status_code == 422 and "exists already" in duplicate.content.decode()
    staff_client.post(reverse("accounts:group", args=[group.pk]), {"name": "platform-team"})
    staff_client.post(reverse("accounts:group-members", args=[group.pk]), {"user": developer.pk})
    group.refresh_from_db()
    assert group.name == "platform-team" and list(group.user_set.all()) == [developer]
    filtered = staff_client.get(PEOPLE, {"group": group.pk}).content.decode()
    assert "dev" in filtered and "alice</a>" not in filtered
    staff_client.post(reverse("accounts:group-members", args=[group.pk]),
                      {"user": developer.pk, "action": "remove"})  # fmt: skip
    assert not group.user_set.exists()
    staff_client.post(reverse("accounts:group-delete", args=[group.pk]))
    assert not Group.objects.exists()
    assert AuditEntry.objects.filter(object_type="auth.group").count() >= 4


def test_the_people_list_searches_filters_and_takes_constant_queries(
    staff_client, django_assert_max_num_queries
):
    group = Group.objects.create(name="ml")
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{i:03}", email=f"u{i}@example.com", is_active=i % 5 != 0)
        for i in range(120)
    )
    group.user_set.add(*users[:10])
    with django_assert_max_num_queries(12):
        page = staff_client.get(PEOPLE).content.decode()
    assert "user000" in page and "Page 1 of 3" in page
    found = staff_client.get(PEOPLE, {"q": "u7@", "status": "active"}).content.decode()
    assert "user007" in found and "user008" not in found
    admins = staff_client.get(PEOPLE, {"role": "admin"}).content.decode()
    assert "alice" in admins and "user001" not in admins


# -- commands ---------------------------------------------------------------------------------


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_people_commands(admin_user, developer):
    created = json.loads(run("user_invite", "--email", "cli@example.com", "--json"))
    assert created["link"].startswith("http://127.0.0.1:8000/invite/")
    assert json.loads(run("group_create", "platform", "--json"))["name"] == "platform"
    assert json.loads(run("group_add_member", "platform", "dev", "--json"))["changed"] is True
    assert json.loads(run("groups_list", "--json")) == [
        {"id": Group.objects.get().pk, "name": "platform", "members": ["dev"]}
    ]
    run("group_rename", "platform", "platform-team")
    run("group_remove_member", "platform-team", "dev")
    assert json.loads(run("user_set_role", "dev", "admin", "--json"))["role"] == "admin"
    assert json.loads(run("user_deactivate", "dev", "--json"))["active"] is False
    assert json.loads(run("user_reactivate", "dev", "--json"))["active"] is True
    people = json.loads(run("users_list", "--json"))
    assert {p["username"] for p in people} == {"alice", "dev"}
    with pytest.raises(CommandError, match="add --yes"):
        run("user_delete", "dev")
    run("user_delete", "dev", "--yes")
    run("group_delete", "platform-team", "--yes")
    assert not Group.objects.exists() and not get_user_model().objects.filter(username="dev")


@pytest.mark.parametrize(
    "args, message",
    [
        (("user_set_role", "alice", "developer"), "last active admin"),
        (("user_deactivate", "alice"), "last active admin"),
        (("user_delete", "alice", "--yes"), "last active admin"),
        (("user_invite",), "Give an e-mail address or a username"),
        (("user_invite", "--email", "not-an-address"), "Enter a valid email address"),
        (("user_invite", "--email", "x@example.com", "--days", "99"), "1 to 30 days"),
        (("group_add_member", "nope", "alice"), "no group named 'nope'"),
        (("group_create", "  "), "Give the group a name"),
        (("user_set_role", "ghost", "admin"), "no user named 'ghost'"),
    ],
)
def test_people_commands_refuse_in_one_line(admin_user, args, message):
    with pytest.raises(CommandError, match=message) as error:
        run(*args)
    assert "\n" not in str(error.value)

"""The Django admin's user pages keep the People rules: activation, role and groups change
only on Admin → People, and people are deleted there."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group

from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def change_form(user, **fields):
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    data.update(fields)
    return data


def test_unticking_active_in_the_django_admin_changes_nothing(staff_client, developer):
    token = token_create(user=developer, name="agent", lifetime=timedelta(days=1), actor=None)
    response = staff_client.post(
        f"/django-admin/auth/user/{developer.pk}/change/", change_form(developer, first_name="D")
    )
    assert response.status_code == 302
    developer.refresh_from_db()
    assert developer.first_name == "D"  # the rest of the form still saves
    assert developer.is_active
    assert ApiToken.objects.get(pk=token.token.pk).revoked_at is None


def test_the_last_admin_cannot_untick_their_own_staff_status(staff_client, admin_user):
    response = staff_client.post(
        f"/django-admin/auth/user/{admin_user.pk}/change/", change_form(admin_user)
    )
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_superuser and admin_user.is_active


def test_ticking_staff_or_groups_in_the_django_admin_changes_nothing(staff_client, developer):
    group = Group.objects.create(name="platform")
    staff_client.post(
        f"/django-admin/auth/user/{developer.pk}/change/",
        change_form(developer, is_staff="on", is_superuser="on", groups=[group.pk]),
    )
    developer.refresh_from_db()
    assert not developer.is_staff and not developer.is_superuser
    assert not developer.groups.exists()


def test_the_django_admin_shows_the_rule_fields_read_only_and_says_where_to_change_them(
    staff_client, developer
):
    page = staff_client.get(f"/django-admin/auth/user/{developer.pk}/change/").content.decode()
    assert 'name="is_active"' not in page and 'name="is_staff"' not in page
    assert "Admin → People" in page


def test_people_are_not_deleted_in_the_django_admin(staff_client, developer):
    assert staff_client.get(f"/django-admin/auth/user/{developer.pk}/delete/").status_code == 403
    assert staff_client.post(f"/django-admin/auth/user/{developer.pk}/delete/").status_code == 403
    developer.refresh_from_db()

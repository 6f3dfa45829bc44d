import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_login_page_says_how_to_make_the_first_admin_when_nobody_can_sign_in(
    client, django_user_model
):
    assert 'data-testid="no-admin"' in client.get(reverse("login")).content.decode()
    django_user_model.objects.create_user("first", password="x")
    assert 'data-testid="no-admin"' not in client.get(reverse("login")).content.decode()


def test_the_login_page_renders_and_signs_in(client, developer):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "dev", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("home")


def test_a_wrong_password_shows_an_error_and_keeps_the_username(client, developer):
    response = client.post(reverse("login"), {"username": "dev", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b'value="dev"' in response.content


def test_anonymous_home_goes_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_everyone_lands_on_the_agents_page_and_only_admins_see_admin(client, admin_user, developer):
    client.force_login(admin_user)
    response = client.get(reverse("home"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("chats:agents")
    assert b'href="/admin/providers/"' in response.content
    client.force_login(developer)
    response = client.get(reverse("home"), follow=True)
    assert response.status_code == 200 and b'<h1 id="chat-title">Agents</h1>' in response.content
    assert b'href="/admin/providers/"' not in response.content


def test_sign_out_is_a_post(staff_client):
    refused = staff_client.get(reverse("logout"))
    assert refused.status_code == 405
    assert staff_client.get(reverse("providers:list")).status_code == 200  # still signed in
    response = staff_client.post(reverse("logout"))
    assert response.status_code == 302
    assert staff_client.get(reverse("providers:list")).status_code == 302


def test_unknown_pages_are_a_friendly_404(staff_client):
    response = staff_client.get("/no/such/page/")
    assert response.status_code == 404 and b"There is nothing at this address." in response.content


def test_ensure_admin_creates_the_first_admin_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root-admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-password-1")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "Created admin user root-admin." in out.getvalue()
    user = User.objects.get()
    assert user.is_superuser and user.is_staff and user.check_password("a-long-password-1")
    call_command("ensure_admin", stdout=out)
    assert User.objects.count() == 1


def test_ensure_admin_needs_no_email_and_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root-admin")
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "123")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD refused: This password"):
        call_command("ensure_admin", stdout=io.StringIO())
    assert not User.objects.exists()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-password-1")
    call_command("ensure_admin", stdout=io.StringIO())
    assert User.objects.get().is_superuser


def test_ensure_admin_without_a_terminal_or_environment_says_what_to_do(monkeypatch, piped_stdin):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    piped_stdin("")
    err = io.StringIO()
    call_command("ensure_admin", stdout=io.StringIO(), stderr=err)
    assert "set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD" in err.getvalue()
    assert not User.objects.exists()

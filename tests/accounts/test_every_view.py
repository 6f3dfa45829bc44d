"""Sign-in, admin-only and CSRF rules for every view, generated from the URL configuration."""

import pytest
from django.test import Client

from tests.urlconf import every_view

pytestmark = pytest.mark.django_db

VIEWS = every_view()
PRIVATE = [v for v in VIEWS if not v.public]
ADMIN_ONLY = [v for v in VIEWS if v.admin_only]


def test_the_url_configuration_was_read():
    names = {v.name for v in VIEWS}
    assert {"chats:agents", "userkeys:save", "models:star", "tokens:new"} <= names


@pytest.mark.parametrize("view", PRIVATE, ids=lambda v: v.name)
def test_anonymous_users_are_sent_to_sign_in(client, view):
    for method in ("get", "post"):
        response = getattr(client, method)(view.url)
        if view.url.startswith("/api/"):
            assert response.status_code == 401, (method, view)
        else:
            assert response.status_code == 302, (method, view)
            assert response.url.startswith("/login/?next="), (method, view)


@pytest.mark.parametrize("view", ADMIN_ONLY, ids=lambda v: v.name)
def test_developers_are_refused_admin_views(developer_client, view):
    for method in ("get", "post"):
        assert getattr(developer_client, method)(view.url).status_code == 403, (method, view)


@pytest.mark.parametrize("view", PRIVATE, ids=lambda v: v.name)
def test_every_post_needs_a_csrf_token(admin_user, view):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(view.url, {"api_key": "sk-x", "name": "x", "enabled": "false"})
    assert response.status_code == 403, view
    assert b"CSRF" in response.content or response.headers.get("HX-Trigger") is not None


@pytest.mark.parametrize(
    "view", [v for v in VIEWS if v.url not in ("/logout/",)], ids=lambda v: v.name
)
def test_every_html_page_sends_csp_hsts_and_no_store(staff_client, view):
    response = staff_client.get(view.url, secure=True, follow=False)
    if response.get("Content-Type", "").startswith("text/html"):
        assert "default-src 'self'" in response["Content-Security-Policy"], view
        assert response["Strict-Transport-Security"].startswith("max-age=31536000"), view
        assert "no-store" in response.get("Cache-Control", ""), view

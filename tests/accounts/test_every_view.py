"""Sign-in, admin-only, platform-token and CSRF rules for every view, generated from the URL
configuration and checked against the access table (config.access)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import get_resolver

from config.access import PLATFORM_TOKEN_URL_NAMES, URL_ACCESS, Access
from providers.models import Provider
from tests.urlconf import django_admin_views, every_view
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db

VIEWS = every_view()
PRIVATE = [v for v in VIEWS if not v.public]
ADMIN_ONLY = [v for v in VIEWS if v.admin_only]
SIGNED_IN = [v for v in VIEWS if v.access in (Access.SESSION, Access.SESSION_OR_TOKEN)]
EVERY_URL = VIEWS + django_admin_views()


def test_the_url_configuration_was_read():
    names = {v.name for v in VIEWS}
    assert {"chats:agents", "userkeys:save", "models:star", "tokens:new"} <= names
    assert len(django_admin_views()) > 30


def test_every_view_is_in_the_access_table_and_the_table_names_only_views():
    assert [v.name for v in VIEWS if v.access is None] == []
    named = {v.name for v in VIEWS}
    assert set(URL_ACCESS) - named == set()
    assert get_resolver().reverse_dict  # the resolver is populated (sanity)


@pytest.mark.parametrize("view", PRIVATE, ids=lambda v: v.name)
def test_anonymous_users_are_sent_to_sign_in(client, view):
    for method in ("get", "post"):
        response = getattr(client, method)(view.url)
        if view.url.startswith("/api/"):
            assert response.status_code == 401, (method, view)
        else:
            assert response.status_code == 302, (method, view)
            assert response["Location"].startswith("/login/?next="), (method, view)


@pytest.mark.parametrize("view", ADMIN_ONLY, ids=lambda v: v.name)
def test_developers_are_refused_admin_views(developer_client, view):
    for method in ("get", "post"):
        assert getattr(developer_client, method)(view.url).status_code == 403, (method, view)


@pytest.mark.parametrize("view", SIGNED_IN, ids=lambda v: v.name)
def test_developers_open_every_view_the_table_gives_them(developer_client, view):
    response = developer_client.get(view.url)
    assert response.status_code not in (401, 403), view
    assert not (response.status_code == 302 and response.url.startswith("/login/")), view


@pytest.fixture
def admin_token(admin_user):
    return token_create(user=admin_user, name="agent", lifetime=timedelta(days=1), actor=None)


def _outcome(response):
    return response.status_code, response.headers.get("Location")


@pytest.mark.parametrize("view", EVERY_URL, ids=lambda v: v.name)
def test_a_platform_token_opens_only_the_documented_json_endpoints(admin_token, view):
    """An admin's coding-agent token, sent as a tool would, gets what no credential gets on
    every page, form and Django admin URL (GET and POST, with CSRF checked as a browser's
    would be): only the table's token endpoints take it."""
    anonymous = Client(enforce_csrf_checks=True)
    bearer = Client(
        enforce_csrf_checks=True, headers={"Authorization": f"Bearer {admin_token.secret}"}
    )
    for method in ("get", "post"):
        with_token = getattr(bearer, method)(view.url)
        without = getattr(anonymous, method)(view.url)
        if view.name in PLATFORM_TOKEN_URL_NAMES and method == "get":
            assert with_token.status_code == 200, view
        else:
            assert _outcome(with_token) == _outcome(without), (method, view)


def test_the_token_endpoints_are_the_documented_ones():
    assert {"routing:available-models"} == PLATFORM_TOKEN_URL_NAMES


def test_an_admins_token_cannot_point_a_provider_at_another_address(admin_token, make_provider):
    make_provider("openai", base_url="https://api.openai.com/v1")
    bearer = Client(headers={"Authorization": f"Bearer {admin_token.secret}"})
    response = bearer.post(
        "/admin/providers/openai/",
        {"base_url": "https://attacker.example/v1", "enabled": "on", "central_key_enabled": "on"},
    )
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Provider.objects.get(type="openai").base_url == "https://api.openai.com/v1"


def test_a_developers_token_cannot_mint_tokens(developer):
    token = token_create(user=developer, name="agent", lifetime=timedelta(days=1), actor=None)
    bearer = Client(headers={"Authorization": f"Bearer {token.secret}"})
    response = bearer.post("/settings/tokens/new/", {"name": "minted", "lifetime_days": 365})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not ApiToken.objects.filter(name="minted").exists()


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
        assert "camera=()" in response["Permissions-Policy"], view

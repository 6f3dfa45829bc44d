"""Single sign-on against a real OpenID Connect provider on a loopback port."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import get_user_model

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Person, running_provider

pytestmark = pytest.mark.django_db

PEOPLE = {
    "ada": Person("sub-ada", "ada@example.com", name="Ada Lovelace", groups=["platform", "ml"]),
    "root": Person("sub-root", "root@example.com", groups=["llm-admins"]),
    "eve": Person("sub-eve", "dev@example.com", email_verified=False),
    "mallory": Person("sub-mallory", "mallory@evil.example"),
}


@pytest.fixture
def idp(settings):
    with running_provider(PEOPLE) as provider:
        settings.OIDC_ISSUER = provider.issuer
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_PROVIDER_NAME = "Test IdP"
        settings.OIDC_GROUPS_CLAIM = "groups"
        settings.OIDC_ADMIN_GROUPS = ["llm-admins"]
        settings.OIDC_ALLOWED_EMAIL_DOMAINS = ["example.com"]
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "accounts.oidc.Backend",
        ]
        yield provider


def sign_in(client, idp, person="ada", tamper=None):
    """The code flow as a browser walks it; returns the callback's response."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    authorize = urlparse(start.url)
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert authorize.geturl().startswith(f"{idp.issuer}/authorize")
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    approved = requests.post(
        f"{idp.issuer}/authorize", data={**query, "person": person}, allow_redirects=False
    )
    callback = urlparse(approved.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    if tamper:
        tamper(client, params)
    return client.get(callback.path, params)


def test_discovery_code_flow_with_pkce_creates_the_user_with_mapped_groups(client, idp):
    response = sign_in(client, idp)
    assert response.status_code == 302 and response.url == "/"
    user = get_user_model().objects.get(email="ada@example.com")
    assert user.username == "ada" and user.first_name == "Ada" and not user.is_staff
    assert sorted(g.name for g in user.groups.all()) == ["ml", "platform"]
    assert client.get("/agents/").status_code == 200  # signed in, with a session token
    [exchange] = idp.token_requests
    assert len(exchange["code_verifier"]) >= 43  # PKCE verifier sent, and checked by the IdP


def test_groups_and_the_admin_role_follow_the_claims_on_every_sign_in(client, idp):
    sign_in(client, idp, "root")
    root = get_user_model().objects.get(email="root@example.com")
    assert root.is_staff and [g.name for g in root.groups.all()] == ["llm-admins"]
    PEOPLE["ada"].groups = ["platform"]
    try:
        sign_in(client, idp, "ada")
        assert [g.name for g in get_user_model().objects.get(username="ada").groups.all()] == [
            "platform"
        ]
    finally:
        PEOPLE["ada"].groups = ["platform", "ml"]


def test_an_existing_account_is_linked_through_a_verified_email_only(client, idp, developer):
    developer.email = "ada@example.com"
    developer.save()
    sign_in(client, idp, "ada")
    assert get_user_model().objects.filter(email__iexact="ada@example.com").count() == 1
    assert client.session["_auth_user_id"] == str(developer.pk)
    client.logout()
    developer.email = "dev@example.com"
    developer.save()
    response = sign_in(client, idp, "eve")  # same address, not verified by the provider
    assert response.url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("verified", ["false", "no", 1, "true", None])
def test_an_email_verified_claim_that_is_not_json_true_links_nobody(
    client, idp, developer, verified
):
    """Some providers send the claim as a string or a number: only JSON true links."""
    developer.email = "dev@example.com"
    developer.save()
    PEOPLE["eve"].email_verified = verified
    try:
        response = sign_in(client, idp, "eve")
    finally:
        PEOPLE["eve"].email_verified = False
    assert response.url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session
    assert get_user_model().objects.filter(email__iexact="dev@example.com").count() == 1


@pytest.mark.parametrize("fault", ["wrong_key", "wrong_nonce", "wrong_audience", "wrong_issuer"])
def test_a_token_that_fails_a_check_signs_nobody_in(client, idp, fault):
    idp.fault = fault
    response = sign_in(client, idp)
    assert response.url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(email="ada@example.com").exists()


def test_a_tampered_state_or_verifier_signs_nobody_in(client, idp):
    def bad_state(client, params):
        params["state"] = "forged"

    assert sign_in(client, idp, tamper=bad_state).url == "/login/?sso=failed"

    def bad_verifier(client, params):
        session = client.session
        for state in session["oidc_states"].values():
            state["code_verifier"] = "x" * 64
        session.save()

    assert sign_in(client, idp, tamper=bad_verifier).url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session


def test_outside_the_allowed_domains_or_deactivated_nobody_signs_in(client, idp):
    assert sign_in(client, idp, "mallory").url == "/login/?sso=failed"
    sign_in(client, idp, "ada")
    client.logout()
    get_user_model().objects.filter(email="ada@example.com").update(is_active=False)
    assert sign_in(client, idp, "ada").url == "/login/?sso=failed"


def test_password_sign_in_can_be_kept_for_break_glass_admins_only(
    client, idp, settings, developer, admin_user
):
    from conftest import PASSWORD

    settings.PASSWORD_SIGN_IN = "break_glass"
    settings.BREAK_GLASS_USERS = ["alice"]
    page = client.get("/login/").content.decode()
    assert "Sign in with Test IdP" in page and "Emergency sign-in with a password" in page
    refused = client.post("/login/", {"username": "dev", "password": PASSWORD})
    assert "Password sign-in is turned off here. Sign in with Test IdP." in refused.content.decode()
    refused = client.post("/django-admin/login/", {"username": "dev", "password": PASSWORD})
    assert "Password sign-in is turned off here" in refused.content.decode()
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_without_configuration_there_is_no_single_sign_on(client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert "Sign in with" not in client.get("/login/").content.decode()


def test_an_unreachable_provider_is_a_clear_message(client, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9/"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    response = client.get("/oidc/authenticate/")
    assert response.url == "/login/?sso=failed"
    assert "Single sign-on did not complete" in client.get(response.url).content.decode()

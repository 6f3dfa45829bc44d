import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from providers.models import Provider
from tokens import token_format
from tokens.models import ApiToken, TokenKind
from tokens.services import SESSION_TOKEN_KEY, authenticate_token, token_revoke, token_touch

pytestmark = pytest.mark.django_db

PAGE = reverse("tokens:list")
NEW = reverse("tokens:new")
API = reverse("routing:available-models")


def every_stored_value() -> str:
    """Every column of every row of the tables a token could end up in, as one text."""
    dump = []
    with connection.cursor() as cursor:
        for table in ("tokens_apitoken", "audit_auditentry", "django_session"):
            cursor.execute(f"SELECT * FROM {table}")
            dump.append(repr(cursor.fetchall()))
    return "\n".join(dump)


def test_creating_a_token_shows_it_once_and_stores_only_a_hash(developer_client, caplog):
    caplog.set_level(logging.DEBUG)
    response = developer_client.post(NEW, {"name": "Claude Code", "lifetime_days": 30})
    assert response.status_code == 201
    secret = response.context["new"].secret
    assert secret.startswith("llmcp_") and secret.encode() in response.content
    assert b"It is shown only this once" in response.content
    token = ApiToken.objects.get(kind=TokenKind.API)
    assert token.secret_hash == token_format.hash_token(secret) != secret
    assert secret not in every_stored_value()
    assert secret[len("llmcp_") + 8 :] not in every_stored_value()
    assert secret.encode() not in developer_client.get(PAGE).content
    assert secret not in caplog.text
    assert "no-store" in response["Cache-Control"]


def test_the_token_works_as_a_bearer_token_until_revoked(client, developer, make_token):
    new = make_token(developer)
    auth = {"Authorization": f"Bearer {new.secret}"}
    assert client.get(API, headers=auth).status_code == 200
    token_revoke(token=new.token, actor=developer)
    assert client.get(API, headers=auth).status_code == 401


def test_an_expired_token_is_refused_on_the_next_request(client, developer, make_token):
    new = make_token(developer)
    auth = {"Authorization": f"Bearer {new.secret}"}
    assert client.get(API, headers=auth).status_code == 200
    ApiToken.objects.filter(pk=new.token.pk).update(expires_at=timezone.now())
    assert client.get(API, headers=auth).status_code == 401


def test_a_deactivated_users_tokens_are_refused(client, developer, make_token):
    new = make_token(developer)
    User.objects.filter(pk=developer.pk).update(is_active=False)
    assert authenticate_token(new.secret) is None
    assert client.get(API, headers={"Authorization": f"Bearer {new.secret}"}).status_code == 401


def test_a_right_lookup_id_with_a_wrong_secret_is_refused(developer, make_token):
    new = make_token(developer)
    forged = new.secret[:-4] + ("AAAA" if not new.secret.endswith("AAAA") else "BBBB")
    assert authenticate_token(forged) is None
    assert authenticate_token(new.secret) == new.token
    for junk in ("", "llmcp_", "Bearer x", new.secret + "x", new.secret.upper(), "\x00" * 64):
        assert authenticate_token(junk) is None


def test_secrets_are_compared_in_constant_time(developer, make_token, monkeypatch):
    calls = []
    real = token_format.hmac.compare_digest

    def spy(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(token_format.hmac, "compare_digest", spy)
    new = make_token(developer)
    assert authenticate_token(new.secret) == new.token
    assert calls == [1]


def test_last_used_is_written_at_most_once_a_minute(
    developer, make_token, django_assert_num_queries
):
    token = make_token(developer).token
    now = timezone.now()
    with django_assert_num_queries(1):
        token_touch(token, now=now)
    with django_assert_num_queries(0):
        for seconds in range(0, 60, 5):
            token_touch(token, now=now + timedelta(seconds=seconds))
    with django_assert_num_queries(1):
        token_touch(token, now=now + timedelta(seconds=61))
    # Another process holding an old copy writes nothing within the minute either.
    stale = ApiToken.objects.get(pk=token.pk)
    stale.last_used_at = now - timedelta(hours=1)
    token_touch(stale, now=now + timedelta(seconds=62))
    assert ApiToken.objects.get(pk=token.pk).last_used_at == now + timedelta(seconds=61)


def test_a_user_cannot_see_or_revoke_anothers_token(developer_client, other_developer, make_token):
    theirs = make_token(other_developer, name="their-secret-tool").token
    assert b"their-secret-tool" not in developer_client.get(PAGE).content
    url = reverse("tokens:revoke", args=[theirs.pk])
    assert developer_client.get(url).status_code == 404
    assert developer_client.post(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoking_asks_first_then_revokes(developer_client, developer, make_token):
    token = make_token(developer, name="ci").token
    url = reverse("tokens:revoke", args=[token.pk])
    confirm = developer_client.get(url)
    assert confirm.status_code == 200 and b"Revoke \xe2\x80\x9cci\xe2\x80\x9d" in confirm.content
    token.refresh_from_db()
    assert token.revoked_at is None
    assert developer_client.post(url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = AuditEntry.objects.get(action="revoke")
    assert entry.object_type == "tokens.apitoken"


def test_signing_in_creates_a_session_token_and_signing_out_revokes_it(client, developer):
    from conftest import PASSWORD

    client.post(reverse("login"), {"username": "dev", "password": PASSWORD})
    token = ApiToken.objects.get(kind=TokenKind.SESSION)
    assert client.session[SESSION_TOKEN_KEY] == token.pk
    assert token.user == developer and token.is_active
    assert token.expires_at == pytest.approx(client.session.get_expiry_date(), abs=timedelta(5))
    response = client.get(PAGE)
    assert response.wsgi_request.api_token == token
    client.post(reverse("logout"))
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_revoking_a_session_token_signs_that_browser_out(developer_client, developer):
    developer_client.get(PAGE)
    token = ApiToken.objects.get(kind=TokenKind.SESSION)
    token_revoke(token=token, actor=developer)
    response = developer_client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response.url


def test_deactivating_a_user_signs_their_browser_out(developer_client, developer):
    assert developer_client.get(PAGE).status_code == 200
    User.objects.filter(pk=developer.pk).update(is_active=False)
    response = developer_client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response.url


def test_sign_out_other_sessions_keeps_this_one(client, developer):
    from django.test import Client

    other = Client()
    other.force_login(developer)
    client.force_login(developer)
    client.get(PAGE)
    response = client.post(reverse("tokens:sign-out-others"), follow=True)
    assert b"Signed out 1 other session." in response.content
    assert client.get(PAGE).status_code == 200
    assert other.get(PAGE).status_code == 302


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("bad\x00name", "Null characters are not allowed"),
        ("rtl\u202ename", "invisible text-direction character"),
        ("x" * 101, "at most 100 characters"),
    ],
    ids=["empty", "blank", "nul", "bidi", "too-long"],
)
def test_a_bad_name_is_an_error_next_to_the_field(developer_client, name, message):
    response = developer_client.post(NEW, {"name": name, "lifetime_days": 30})
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors["name"])
    assert not ApiToken.objects.filter(kind=TokenKind.API).exists()


def test_a_lifetime_beyond_the_limit_is_refused(developer_client, settings):
    settings.API_TOKEN_MAX_LIFETIME_DAYS = 30
    response = developer_client.post(NEW, {"name": "x", "lifetime_days": 365})
    assert response.status_code == 422 and "lifetime_days" in response.context["form"].errors


def test_two_active_tokens_cannot_share_a_name(developer_client, developer, make_token):
    make_token(developer, name="ci")
    response = developer_client.post(NEW, {"name": "ci", "lifetime_days": 30})
    assert response.status_code == 422
    assert "already have an active token with this name" in str(response.context["form"].errors)


def test_admins_list_and_revoke_anyones_tokens(
    staff_client, developer, other_developer, make_token
):
    mine = make_token(developer, name="dev-tool").token
    make_token(other_developer, name="other-tool")
    page = staff_client.get(reverse("tokens:admin-list"))
    assert b"dev-tool" in page.content and b"other-tool" in page.content
    filtered = staff_client.get(reverse("tokens:admin-list"), {"q": "stranger"})
    assert b"other-tool" in filtered.content and b"dev-tool" not in filtered.content
    response = staff_client.post(
        reverse("tokens:admin-revoke", args=[mine.pk]), {"next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response.url == reverse("tokens:admin-list")
    mine.refresh_from_db()
    assert mine.revoked_at is not None


def test_developers_cannot_open_the_admin_token_list(developer_client, other_developer, make_token):
    token = make_token(other_developer).token
    assert developer_client.get(reverse("tokens:admin-list")).status_code == 403
    assert developer_client.post(reverse("tokens:admin-revoke", args=[token.pk])).status_code == 403


def connect_rows(response) -> dict[str, str]:
    """The "Point your tools" table: provider type -> the row's text."""
    import re

    rows = re.findall(
        r'<tr data-provider-type="([^"]+)">(.*?)</tr>', response.content.decode(), re.S
    )
    return {provider_type: re.sub(r"<[^>]+>", "", cells) for provider_type, cells in rows}


def test_the_page_gives_each_usable_provider_its_base_url_for_tools(
    developer_client,
    developer,
    make_provider,
    make_model,
    save_user_key,
    django_assert_max_num_queries,
):
    make_model("gpt-x", provider_type="openai")  # a central key
    make_model("claude-x", provider_type="anthropic")
    make_model("gemini-x", provider_type="google")
    # Needs a personal key, which the developer has for OpenRouter but not for Bedrock.
    make_provider("openrouter", api_key=None)
    make_model("vendor/model", provider_type="openrouter")
    save_user_key(developer, Provider.objects.get(type="openrouter"))
    make_provider("aws-bedrock", api_key=None)
    make_model("anthropic.claude-x-v1:0", provider_type="aws-bedrock")

    with django_assert_max_num_queries(12):
        response = developer_client.get(PAGE)

    rows = connect_rows(response)
    assert set(rows) == {"openai", "anthropic", "google", "openrouter"}
    base = "http://testserver/api/v2/aibridge"
    # OpenAI's SDKs take the base URL with /v1; Anthropic's and Google's add the version.
    assert f"{base}/openai/v1" in rows["openai"] and "OPENAI_BASE_URL" in rows["openai"]
    assert f"{base}/openrouter/v1" in rows["openrouter"]
    assert (
        f"{base}/anthropic" in rows["anthropic"] and f"{base}/anthropic/v1" not in rows["anthropic"]
    )
    assert "ANTHROPIC_BASE_URL" in rows["anthropic"] and "ANTHROPIC_API_KEY" in rows["anthropic"]
    assert f"{base}/google" in rows["google"] and "GOOGLE_GEMINI_BASE_URL" in rows["google"]


def test_the_page_says_why_no_tool_can_connect(
    developer_client, make_provider, make_model, settings
):
    response = developer_client.get(PAGE)
    assert connect_rows(response) == {}
    assert b"No provider is available to you yet. Contact an administrator." in response.content
    make_provider("anthropic", api_key=None)  # personal keys only
    make_model("claude-x", provider_type="anthropic")
    response = developer_client.get(PAGE)
    assert b"Add your personal API key in" in response.content
    settings.AI_GATEWAY_ENABLED = False
    response = developer_client.get(PAGE)
    assert b"The AI Gateway is turned off on this deployment" in response.content


def test_creating_a_token_over_htmx_does_not_work_out_the_providers(
    developer_client, make_model, django_assert_max_num_queries
):
    make_model("claude-x", provider_type="anthropic")
    with django_assert_max_num_queries(12) as queries:
        response = developer_client.post(
            NEW, {"name": "cli", "lifetime_days": 7}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 201
    assert not [q for q in queries.captured_queries if "providers_provider" in q["sql"]]

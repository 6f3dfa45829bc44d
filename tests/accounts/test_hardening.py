"""Findings 5 to 8 of the hardening probe."""

import logging
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

from conftest import PASSWORD
from tests.servers import database_url

pytestmark = pytest.mark.django_db


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LLMCP_READ_DOTENV": "false",  # a developer's local .env is not production
        "DATABASE_URL": database_url(),
        "DATABASE_POOL": "false",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=settings.BASE_DIR,
        timeout=60,
        check=False,
    )


PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "LLMCP_ENCRYPTION_KEYS": settings.ENCRYPTION_KEYS,
    "ALLOWED_HOSTS": "llm.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://llm.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


@pytest.mark.django_db(transaction=True)
def test_finding_5_the_readmes_production_settings_pass_check_deploy():
    result = manage("manage.py", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_finding_5_behind_a_tls_proxy_an_https_origin_is_accepted(client, settings, developer):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = ["https://llm.example.com"]
    settings.ALLOWED_HOSTS = ["llm.example.com"]
    from django.test import Client

    browser = Client(enforce_csrf_checks=True, HTTP_HOST="llm.example.com")
    page = browser.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    token = page.cookies[settings.CSRF_COOKIE_NAME].value
    response = browser.post(
        reverse("login"),
        {"username": "dev", "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_ORIGIN="https://llm.example.com",
        HTTP_REFERER="https://llm.example.com/login/",
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "url", ["/login/", "/django-admin/login/"], ids=["our-sign-in", "django-admin"]
)
def test_finding_6_sign_in_is_throttled_per_account(client, developer, url):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": "dev", "password": "wrong"})
        assert response.status_code == 200
    response = client.post(url, {"username": "dev", "password": "wrong"})
    assert response.status_code == 429
    response = client.post(url, {"username": "dev", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_finding_6_sign_in_is_throttled_per_address(client, developer):
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": f"guess-{i}", "password": "wrong"})
    response = client.post("/login/", {"username": "dev", "password": PASSWORD})
    assert response.status_code == 429
    # Another address is not affected.
    response = client.post(
        "/login/", {"username": "dev", "password": PASSWORD}, REMOTE_ADDR="10.9.8.7"
    )
    assert response.status_code == 302


def test_finding_6_a_forged_forwarded_for_header_does_not_reset_the_count(client, developer):
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/login/", {"username": "dev", "password": "no"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        )
    response = client.post(
        "/login/", {"username": "dev", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.1.1.1"
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    "keys, message",
    [("", "LLMCP_ENCRYPTION_KEYS is empty"), ("bad", "must look like 'id:fernetkey'")],
    ids=["empty", "malformed"],
)
def test_finding_7_the_server_refuses_to_start_without_a_usable_keyring(keys, message):
    env = {"SECRET_KEY": "x" * 50, "LLMCP_ENCRYPTION_KEYS": keys}
    for args in (("manage.py", "check"), ("-c", "import config.asgi")):
        result = manage(*args, **env)
        assert result.returncode == 1, args
        assert result.stderr.strip().splitlines() == [f"Configuration error: {message}"] or (
            len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
        ), result.stderr
        assert "Traceback" not in result.stderr


def test_finding_8_a_403_is_one_log_line(developer_client, developer, caplog):
    caplog.set_level(logging.INFO)
    developer_client.get(reverse("providers:list"))
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    record = records[0]
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage() == (
        f"GET /admin/providers/ 403 user={developer.pk} "
        "reason='Only administrators can open this page.'"
    )


def test_a_load_balancers_probe_naming_a_replicas_own_address_is_answered(client, settings):
    """Load balancers and Kubernetes probes call a replica by its address (Host:
    10.0.3.7:8000), which ALLOWED_HOSTS does not list: /healthz answers them (a 400 would
    take every replica out of service), while every page still refuses that host."""
    settings.ALLOWED_HOSTS = ["llm.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client.raise_request_exception = False
    for host in ("10.0.3.7:8000", "llm.example.com"):
        probe = client.get("/healthz", HTTP_HOST=host)
        assert probe.status_code == 200 and probe.content == b"ok\n"
        assert "no-cache" in probe["Cache-Control"]
    assert client.head("/healthz", HTTP_HOST="[fd00::7]:8000").status_code == 200
    assert client.get("/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.get("/healthz/x", HTTP_HOST="10.0.3.7:8000").status_code == 400

"""SITE_URL: the address people and tools reach the server at, in every link it makes."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from lib.site import LOCAL
from tests.accounts.test_hardening import PRODUCTION, manage
from tests.accounts.test_people import invite

pytestmark = pytest.mark.django_db
SITE = "https://llm.example.com"


def test_invitation_links_use_the_site_url_when_set(staff_client, settings):
    answer = invite(staff_client, email="a@example.com")
    assert answer.context["invite_link"].startswith("http://testserver/invite/")
    settings.SITE_URL = SITE + "/"
    answer = invite(staff_client, email="b@example.com")
    assert answer.context["invite_link"].startswith(f"{SITE}/invite/")


def test_the_tools_base_urls_use_the_site_url_when_set(developer_client, make_model, settings):
    make_model("gpt-x", provider_type="openai")
    settings.SITE_URL = SITE
    page = developer_client.get(reverse("tokens:list")).content.decode()
    assert f"{SITE}/api/v2/aibridge/openai/v1" in page and "testserver" not in page


def test_user_invite_links_use_the_site_url_else_the_local_address(settings):
    out = io.StringIO()
    call_command("user_invite", "--email", "c@example.com", stdout=out)
    assert f"{LOCAL}/invite/" in out.getvalue()
    settings.SITE_URL = SITE
    out = io.StringIO()
    call_command("user_invite", "--email", "d@example.com", stdout=out)
    assert f"{SITE}/invite/" in out.getvalue()
    out = io.StringIO()
    call_command("user_invite", "--email", "e@example.com", "--base-url", "http://x:1", stdout=out)
    assert "http://x:1/invite/" in out.getvalue()


def test_a_site_url_that_is_not_a_web_address_is_one_line_at_start():
    result = manage("manage.py", "check", **{**PRODUCTION, "SITE_URL": "llm.example.com"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: SITE_URL must start with http:// or https://."
    ], result.stderr

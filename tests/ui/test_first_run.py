"""The first run: what `make run` writes and serves before anything is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from django.urls import reverse

from config import bootstrap_env

pytestmark = pytest.mark.django_db


def test_the_local_env_runs_without_debug_over_plain_http(tmp_path: Path):
    target = tmp_path / ".env"
    assert bootstrap_env.main(str(target)) == 0
    text = target.read_text()
    parsed = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert parsed["DEBUG"] == "false"
    assert parsed["SECURE_SSL_REDIRECT"] == parsed["SESSION_COOKIE_SECURE"] == "false"
    assert parsed["SECURE_HSTS_SECONDS"] == "0"
    assert len(parsed["SECRET_KEY"]) > 50 and parsed["LLMCP_ENCRYPTION_KEYS"].startswith("local1:")
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    # A second run keeps the file and its keys.
    assert bootstrap_env.main(str(target)) == 0
    assert target.read_text() == text


def test_an_env_written_with_debug_on_is_upgraded_keeping_its_keys(tmp_path: Path):
    target = tmp_path / ".env"
    old = bootstrap_env.HEADER + "DEBUG=true\nSECRET_KEY=kept\nLLMCP_ENCRYPTION_KEYS=local1:k\n"
    target.write_text(old)
    bootstrap_env.main(str(target))
    text = target.read_text()
    assert "DEBUG=true" not in text and "\nDEBUG=false\n" in text
    assert "SECRET_KEY=kept\n" in text and "LLMCP_ENCRYPTION_KEYS=local1:k\n" in text
    # A file the operator wrote is left as it is.
    own = "DEBUG=true\nSECRET_KEY=mine\n"
    target.write_text(own)
    bootstrap_env.main(str(target))
    assert target.read_text() == own


@override_settings(DEBUG=False)
def test_an_unknown_address_shows_nothing_internal(client):
    response = client.get("/no/such/page/")
    content = response.content.decode()
    assert response.status_code == 404
    assert "There is nothing at this address." in content
    assert "urlpatterns" not in content.lower() and "URLconf" not in content


def test_admin_goes_to_the_admin_dialog(client, admin_user, developer):
    assert client.get("/admin/").url.startswith(reverse("login"))
    client.force_login(developer)
    assert client.get("/admin/").status_code == 403
    client.force_login(admin_user)
    response = client.get("/admin/")
    assert response.status_code == 302 and response.url == reverse("providers:list")


def test_every_page_has_a_favicon(developer_client):
    page = developer_client.get(reverse("home"), follow=True).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    found = finders.find("favicon.svg")
    assert found and Path(str(found)).read_text().lstrip().startswith("<svg")


@pytest.mark.parametrize("flag, read", [("false", False), ("true", True)])
def test_the_suites_settings_never_read_the_env_make_run_wrote(monkeypatch, flag, read):
    """After `make run` (which writes .env for a plain-HTTP local server), `make test` must
    still test the production defaults: the test settings turn reading .env off."""
    import importlib
    import os

    import environ

    import config.settings.base as base

    assert os.environ["LLMCP_READ_DOTENV"] == "false"
    calls: list[object] = []
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: p.name == ".env" or real_exists(p))
    monkeypatch.setattr(environ.Env, "read_env", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setenv("LLMCP_READ_DOTENV", flag)
    try:
        importlib.reload(base)
        assert bool(calls) is read
    finally:
        monkeypatch.undo()
        importlib.reload(base)

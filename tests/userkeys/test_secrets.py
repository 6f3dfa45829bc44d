"""A user's key is write-only everywhere: resolution, pages, commands, audit, error reports."""

import io
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import AuditEntry
from routing.credentials import CredentialSource, Unavailable, resolve_for_user
from tests.servers import database_url
from userkeys import services as userkey_services
from userkeys.models import UserKey

pytestmark = pytest.mark.django_db

CANARY = "sk-user-CANARY-7f3a9c1e5b2d8046"


def substrings(secret: str, length: int = 4) -> set[str]:
    return {secret[i : i + length] for i in range(len(secret) - length + 1)}


def test_an_undecryptable_user_key_is_not_used_and_asks_for_re_entry(
    developer_client, developer, make_provider, save_user_key
):
    provider = make_provider("openai", user_keys_allowed=True, central_key_fallback=True)
    with override_settings(ENCRYPTION_KEYS=f"lost:{Fernet.generate_key().decode()}"):
        save_user_key(developer, provider, CANARY)
    assert UserKey.objects.get().api_key.needs_reentry
    resolved = resolve_for_user(developer, provider)
    assert resolved.source == CredentialSource.CENTRAL
    assert resolved.secret.reveal() == "sk-test-central-key"
    card = developer_client.get(reverse("userkeys:list")).content.decode()
    assert "Key needs re-entry" in card and "Key saved" not in card
    assert "Until then the shared key is used." in card
    provider.central_key_fallback = False
    provider.save()
    assert isinstance(resolve_for_user(developer, provider), Unavailable)


def key_command(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "LLMCP_ENCRYPTION_KEYS": settings.ENCRYPTION_KEYS,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=settings.BASE_DIR,
        timeout=60,
        check=False,
    )


KEY_COMMANDS = [
    ("provider_set", "anthropic", "--key-stdin"),
    ("provider_set_key", "anthropic"),
    ("user_key_set", "dev", "openai"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", KEY_COMMANDS, ids=lambda c: c[0])
def test_key_commands_never_print_the_key_and_refuse_it_as_an_argument(
    make_provider, developer, command
):
    make_provider("anthropic")
    make_provider("openai", user_keys_allowed=True)
    result = key_command(*command, stdin=CANARY.encode() + b"\n")
    assert result.returncode == 0, result.stderr
    assert CANARY.encode() not in result.stdout + result.stderr
    for argv in ([*command, "--key", CANARY], [*command, CANARY], [*command, f"--key={CANARY}"]):
        refused = key_command(*argv)
        assert refused.returncode == 2, argv
        assert CANARY.encode() not in refused.stdout + refused.stderr, argv
        assert b"not shown, in case one is a key" in refused.stderr


def test_no_audit_entry_holds_any_four_characters_of_a_key(
    developer_client, developer, make_provider, piped_stdin
):
    make_provider("openai", user_keys_allowed=True)
    developer_client.post(reverse("userkeys:save", args=["openai"]), {"api_key": CANARY})
    piped_stdin(CANARY + "\n")
    from django.core.management import call_command

    call_command("user_key_set", "dev", "openai", stdout=io.StringIO())
    key = UserKey.objects.get()
    developer_client.post(reverse("userkeys:remove", args=[key.pk]))
    entries = repr(list(AuditEntry.objects.values()))
    key_entries = AuditEntry.objects.filter(object_type="userkeys.userkey")
    assert list(key_entries.values_list("action", flat=True)) == [
        "clear_key",
        "set_key",
        "set_key",
    ], entries
    leaked = {part for part in substrings(CANARY) if part in entries}
    # "sk-u", "user", "-use"... are words of the entries themselves, not of the secret part.
    assert not leaked - substrings("sk-user-CANARY"), leaked


@pytest.fixture
def failing_save(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(userkey_services.UserKey, "full_clean", explode)


def test_the_debug_error_page_never_shows_a_key(developer, make_provider, failing_save, settings):
    settings.DEBUG = True
    make_provider("openai", user_keys_allowed=True)
    client = Client(raise_request_exception=False)
    client.force_login(developer)
    response = client.post(reverse("userkeys:save", args=["openai"]), {"api_key": CANARY})
    assert response.status_code == 500
    page = response.content.decode()
    assert "the database went away" in page and "raw_key" in page  # the real technical page
    assert CANARY not in page and CANARY[8:] not in page


def test_a_mailed_error_report_never_shows_a_key(developer, make_provider, failing_save, settings):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    make_provider("openai", user_keys_allowed=True)
    client = Client(raise_request_exception=False)
    client.force_login(developer)
    response = client.post(reverse("userkeys:save", args=["openai"]), {"api_key": CANARY})
    assert response.status_code == 500
    assert CANARY not in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    html = str(message.alternatives[0][0]) if message.alternatives else ""
    assert "raw_key" in html
    for part in (str(message.subject), str(message.body), html):
        assert CANARY not in part and CANARY[8:] not in part

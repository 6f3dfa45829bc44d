import io
import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from audit.models import AuditEntry
from providers.models import Provider

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_providers_list_prints_every_type(make_provider):
    make_provider("anthropic")
    out = run("providers_list")
    lines = out.splitlines()
    assert lines[0].split() == ["TYPE", "STATUS", "KEY", "POLICY", "BASE", "URL"]
    assert len(lines) == 9
    assert "anthropic          configured      set      central" in out
    assert "azure-openai       not configured  not set  -        (required)" in out


def test_providers_list_json(make_provider):
    make_provider("openai", user_keys_allowed=True, central_key_fallback=True)
    rows = json.loads(run("providers_list", "--json"))
    openai = next(r for r in rows if r["type"] == "openai")
    assert openai["status"] == "configured" and openai["key"] == "set"
    assert openai["central_key_fallback"] is True
    assert "api_key" not in openai


def test_provider_set_creates_with_a_key_from_stdin(piped_stdin):
    piped_stdin("sk-from-stdin\n")
    out = run(
        "provider_set",
        "anthropic",
        "--key-stdin",
        "--base-url",
        "https://p.example.com",
    )
    assert out.strip() == "Anthropic: configured, key set"
    provider = Provider.objects.get()
    assert provider.api_key.reveal() == "sk-from-stdin"
    assert provider.base_url == "https://p.example.com"
    assert AuditEntry.objects.get().actor_label == "manage.py"


def test_provider_set_updates_only_the_flags_given(make_provider):
    make_provider("openai", base_url="https://keep.example.com")
    run("provider_set", "OpenAI", "--user-keys", "--fallback")
    provider = Provider.objects.get()
    assert (
        provider.central_key_enabled,
        provider.user_keys_allowed,
        provider.central_key_fallback,
    ) == (True, True, True)
    assert provider.base_url == "https://keep.example.com"
    assert provider.api_key.reveal() == "sk-test-central-key"


def test_provider_set_key_reads_a_key_file(make_provider, tmp_path):
    make_provider("google")
    key_file = tmp_path / "key"
    key_file.write_text("AIza-from-file\n")
    assert run("provider_set_key", "google", "--key-file", str(key_file)).strip() == (
        "Google: key set."
    )
    assert Provider.objects.get().api_key.reveal() == "AIza-from-file"


def test_provider_clear_key_and_delete(make_provider):
    make_provider("openrouter", central_key_enabled=False, user_keys_allowed=True)
    run("provider_clear_key", "openrouter")
    assert Provider.objects.get().api_key is None
    run("provider_delete", "openrouter", "--yes")
    assert not Provider.objects.exists()


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("provider_set", "openai"), None, "central API key is on, so a key is required"),
        (("provider_set", "openai", "--no-central-key"), None, "At least one credential source"),
        (("provider_set", "azure-openai", "--key-stdin"), "k", "has no default endpoint"),
        (
            ("provider_set", "openai", "--key-stdin", "--base-url", "http://169.254.169.254"),
            "k",
            "cloud metadata",
        ),
        (("provider_set", "openai", "--key-stdin"), " padded ", "starts or ends with whitespace"),
        (("provider_set", "openai", "--key-stdin"), "", "no key given"),
        (("provider_set_key", "openai"), "k", "OpenAI is not configured"),
        (("provider_clear_key", "anthropic"), None, "central API key is on"),
        (("provider_delete", "anthropic"), None, "add --yes to confirm"),
        (
            ("provider_set_key", "anthropic", "--key-file", "/nonexistent/key"),
            None,
            "cannot read the file given to --key-file: No such file or directory",
        ),
    ],
)
def test_bad_input_is_one_clear_line(make_provider, piped_stdin, args, stdin, message):
    make_provider("anthropic")
    before = Provider.objects.count()
    with pytest.raises(CommandError, match=message) as error:
        if stdin is not None:
            piped_stdin(stdin)
        run(*args)
    assert "\n" not in str(error.value)
    assert Provider.objects.count() == before


def command_line(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.BASE_DIR,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("provider_set", "nope"),
        ("provider_set", "openai", "--central-key", "--bogus"),
        ("provider_set", "openai", "--key-stdin", "--key-file", "x"),
        ("provider_set_key",),
    ],
)
def test_argument_errors_exit_non_zero_with_one_line_on_stderr(args):
    result = command_line(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error:" in result.stderr


@pytest.mark.parametrize("flag", ["--key", "--api-key", "--key=sk-secret-CANARY-42"])
def test_provider_set_key_refuses_a_key_given_as_an_argument(flag):
    """Keys never on a command line (shell history, process lists): not even as a flag."""
    args = [flag] if "=" in flag else [flag, "sk-secret-CANARY-42"]
    result = command_line("provider_set_key", "openai", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "CANARY" not in result.stderr + result.stdout


def test_rotate_encryption_key_prints_counts(make_provider):
    make_provider("anthropic")
    with override_settings(
        ENCRYPTION_KEYS=f"n2:{Fernet.generate_key().decode()},{settings.ENCRYPTION_KEYS}"
    ):
        assert run("rotate_encryption_key").strip() == (
            "Re-encrypted 1, already current 0, empty 0."
        )
        assert run("rotate_encryption_key").strip() == (
            "Re-encrypted 0, already current 1, empty 0."
        )
    rotations = AuditEntry.objects.filter(action="rotate")
    assert [(e.object_type, e.object_repr) for e in rotations] == [
        ("keyring", "1 stored keys re-encrypted under key id 'n2'")
    ]


def test_rotate_refuses_with_a_wrong_keyring(make_provider):
    make_provider("anthropic")
    with (
        override_settings(ENCRYPTION_KEYS=f"other:{Fernet.generate_key().decode()}"),
        pytest.raises(CommandError, match=r"nothing changed: 1 stored key\(s\) cannot be"),
    ):
        run("rotate_encryption_key")


def test_check_passes_on_a_good_configuration(make_provider):
    make_provider("anthropic")
    assert "no issues" in run("check")


def test_check_explains_every_misconfiguration(make_provider):
    with override_settings(ENCRYPTION_KEYS=f"gone:{Fernet.generate_key().decode()}"):
        make_provider("anthropic")
    make_provider("openrouter", api_key=None, central_key_enabled=False, user_keys_allowed=True)
    Provider.objects.filter(type="openrouter").update(
        central_key_enabled=True, user_keys_allowed=True
    )
    make_provider("azure-openai")
    Provider.objects.filter(type="azure-openai").update(base_url="")
    with pytest.raises(SystemCheckError) as error:
        run("check")
    text = str(error.value)
    assert "Anthropic: (providers.E002) The stored API key cannot be decrypted" in text
    assert "key id 'gone' is not in the keyring" in text
    assert "OpenRouter: (providers.E003) The central API key is on but no key is stored." in text
    assert "Azure OpenAI: (providers.E004) A base URL is required" in text


def test_check_reports_a_missing_keyring():
    with (
        override_settings(ENCRYPTION_KEYS=""),
        pytest.raises(SystemCheckError, match=r"providers\.E001"),
    ):
        run("check")


def test_check_refuses_an_unusable_proxy_without_showing_it(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://alice:proxy-canary@proxy.corp:1080")
    with pytest.raises(SystemCheckError) as error:
        run("check")
    text = str(error.value)
    assert "(providers.E006) HTTPS_PROXY: an outbound proxy must be an http:// URL" in text
    assert "proxy-canary" not in text and "proxy.corp" not in text


def test_check_of_an_app_that_does_not_exist_is_one_line_not_a_traceback(tmp_path):
    """Django's own check ends in a LookupError traceback, and exit status 0, for a label
    it does not know (a typo of an operator's)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "provider"],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        },
        cwd=settings.BASE_DIR,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "CommandError: No installed app is labelled 'provider'."
    assert run("check", "providers").strip() == "System check identified no issues (0 silenced)."


def test_migrate_on_a_fresh_database_says_nothing_about_unreadable_providers(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.BASE_DIR,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Cannot read providers" not in result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_turning_the_central_key_off_with_the_fallback_on_names_the_fallback(make_provider):
    make_provider("openai", user_keys_allowed=True, central_key_fallback=True)
    with pytest.raises(CommandError) as error:
        run("provider_set", "openai", "--no-central-key", "--user-keys")
    refused = str(error.value)
    assert "The fallback to the central key needs the central key on" in refused
    assert "\n" not in refused


def test_provider_set_key_takes_key_stdin_as_provider_set_does(make_provider, piped_stdin):
    make_provider("openai")
    piped_stdin("sk-new-key-123456\n")
    assert "key set" in run("provider_set_key", "openai", "--key-stdin")
    result = command_line("provider_set_key", "openai", "--key-stdin", "--key-file", "/x")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr

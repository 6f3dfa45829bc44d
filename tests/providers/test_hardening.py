"""Findings 1-3 of the hardening probe, one test (or table) per finding."""

import io
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from providers.models import Provider
from tests.servers import database_url

pytestmark = pytest.mark.django_db

ADMIN_ADD = "/django-admin/providers/provider/add/"


# -- finding 1: 500s on bad input ------------------------------------------------------------


@pytest.mark.parametrize("provider_type", ["", "nope", None, "\u202eanthropic"])
def test_finding_1_django_admin_add_with_a_bad_type_is_a_form_error(staff_client, provider_type):
    data = {"api_key": "sk-x", "central_key_enabled": "on", "enabled": "on"}
    if provider_type is not None:
        data["type"] = provider_type
    response = staff_client.post(ADMIN_ADD, data)
    assert response.status_code == 200
    assert "type" in response.context["adminform"].form.errors
    assert b"sk-x" not in response.content
    assert not Provider.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/django-admin/audit/auditentry/?action__exact=%00",
        "/django-admin/providers/provider/?q=%00",
        "/admin/models/add/?provider=%00",
        "/admin/audit/?page=%00",
        "/settings/api-keys/%00/",
    ],
)
def test_finding_1_a_nul_byte_anywhere_in_the_address_is_a_clear_400(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 400
    assert b"NUL byte" in response.content


def test_finding_1_a_nul_byte_in_a_cookie_is_a_clear_400(client):
    # A quoted cookie value may spell bytes in octal; Django decodes them.
    octal_nul = "\\000"
    forged = f'{settings.SESSION_COOKIE_NAME}="{octal_nul * 8}"'
    response = client.get(reverse("login"), HTTP_COOKIE=forged)
    assert response.status_code == 400


# -- finding 2: invalid base URLs ------------------------------------------------------------

METADATA_NOTATIONS = [
    "http://2852039166/",
    "http://0xA9FEA9FE/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://[::169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal./",
    "http://METADATA.google.internal/",
    "http://metadata\u3002google\u3002internal/",
    "http://100.100.100.200/latest",
    # Unicode notations resolvers and browsers read as 169.254.169.254.
    "http://169\u3002254\u3002169\u3002254/",
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",
    "http://169\uff0e254\uff0e169\uff0e254/latest",
    "http://0\uff58a9fea9fe/",
    # The whole of fe80::/10 is link-local, not only fe80::/64.
    "http://[febf:ffff::1]/",
    "http://[fe80:1::1]/",
]
CONTROL_CHARACTERS = [
    "http://api.example.com/v1\r\nX-Injected: 1",
    "http://api.exa\nmple.com/",
    "http://api.example.com/\tv1",
    "http://api.example.com/\x1b[31m",
    "http://api.exa\u202emple.com/",
    "http://api exa mple.com/",
    "http://api.example.com/\x00",
    "file:///etc/passwd",
    "file://fileserver/etc/passwd",
    "gopher://api.example.com/",
]
BAD_BASE_URLS = METADATA_NOTATIONS + CONTROL_CHARACTERS
METADATA_MESSAGE = "Link-local and cloud metadata addresses are not allowed as a base URL."


def expected_message(base_url):
    """Each refusal for its own reason: a metadata address is refused as one."""
    if base_url in METADATA_NOTATIONS:
        return METADATA_MESSAGE
    if base_url.startswith(("file:", "gopher:")):
        return "The base URL must start with http:// or https://."
    return "invisible characters" if "\x00" not in base_url else "Null characters"


def form(base_url):
    return {"api_key": "sk-x", "base_url": base_url, "central_key_enabled": "on", "enabled": "on"}


@pytest.mark.parametrize("base_url", BAD_BASE_URLS)
def test_finding_2_the_providers_tab_refuses_the_base_url(staff_client, base_url):
    url = reverse("providers:edit", args=["openai"])
    for headers in ({}, {"HX-Request": "true"}):
        response = staff_client.post(url, form(base_url), headers=headers)
        assert response.status_code == (200 if headers else 422)
        if headers:
            row = response.context["row"]
        else:
            row = next(r for r in response.context["rows"] if r.type == "openai")
        assert any(expected_message(base_url) in e for e in row.form.errors["base_url"])
    assert not Provider.objects.exists()


@pytest.mark.parametrize("base_url", BAD_BASE_URLS)
def test_finding_2_the_django_admin_refuses_the_base_url(staff_client, base_url):
    response = staff_client.post(ADMIN_ADD, {"type": "openai", **form(base_url)})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["base_url"]
    assert any(expected_message(base_url) in e for e in errors), errors
    assert not Provider.objects.exists()


@pytest.mark.parametrize("base_url", BAD_BASE_URLS)
def test_finding_2_provider_set_refuses_the_base_url(piped_stdin, base_url):
    piped_stdin("sk-x\n")
    with pytest.raises(CommandError) as error:
        call_command("provider_set", "openai", "--key-stdin", "--base-url", base_url)
    assert "\n" not in str(error.value)
    if "\x00" in base_url:
        assert str(error.value) == "arguments cannot contain a NUL byte"
    else:
        assert str(error.value).startswith("base_url: ")
        assert expected_message(base_url) in str(error.value)
    assert not Provider.objects.exists()


def test_finding_2_private_and_loopback_endpoints_stay_allowed(piped_stdin):
    for base_url in ("http://10.0.0.5:8000/v1", "http://127.0.0.1:11434/v1", "http://[::1]/v1"):
        piped_stdin("sk-x\n")
        call_command(
            "provider_set",
            "openai-compatible",
            "--key-stdin",
            "--base-url",
            base_url,
            stdout=io.StringIO(),
        )
        assert Provider.objects.get().base_url == base_url


# -- finding 3: keys that are not printable ASCII, blank names ------------------------------

NOT_PRINTABLE_ASCII = [
    b"\xff\xfe-not-utf8",
    b"sk-\xc3\x28-broken",
    "sk-😀-emoji".encode(),
    "sk-\u202e-rtl".encode(),
    "sk-ключ".encode(),
    b"sk-with space",
]


def run_command_line(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", NOT_PRINTABLE_ASCII, ids=lambda k: k[:8].hex())
def test_finding_3_commands_refuse_a_key_that_is_not_printable_ascii(
    make_provider, developer, tmp_path, key
):
    make_provider("anthropic")
    make_provider("openai", user_keys_allowed=True)
    key_file = tmp_path / "key"
    key_file.write_bytes(key)
    invocations = [
        (("provider_set_key", "anthropic"), key),
        (("user_key_set", "dev", "openai", "--key-file", str(key_file)), b""),
    ]
    if key in (NOT_PRINTABLE_ASCII[0], NOT_PRINTABLE_ASCII[2]):
        # Every command and way in, for one key that is not UTF-8 and one that is: the other
        # keys take the same path once read (each start of manage.py costs ~1 s in CI).
        invocations += [
            (("provider_set_key", "anthropic", "--key-file", str(key_file)), b""),
            (("provider_set", "google", "--key-stdin"), key),
            (("provider_set", "google", "--key-file", str(key_file)), b""),
            (("user_key_set", "dev", "openai"), key),
        ]
    for args, stdin in invocations:
        result = run_command_line(*args, stdin=stdin)
        assert result.returncode != 0, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert b"Traceback" not in result.stderr
        assert b"printable ASCII" in result.stderr
        assert key not in result.stderr + result.stdout
    assert Provider.objects.get(type="anthropic").api_key.reveal() == "sk-test-central-key"
    assert not Provider.objects.filter(type="google").exists()


@pytest.mark.parametrize("key", ["sk-😀-emoji", "sk-\u202e-rtl", "sk-ключ", "sk-with space"])
def test_finding_3_web_forms_refuse_a_key_that_is_not_printable_ascii(
    staff_client, client, developer, make_provider, key
):
    response = staff_client.post(
        reverse("providers:edit", args=["anthropic"]), form("") | {"api_key": key}
    )
    assert response.status_code == 422
    assert key.encode() not in response.content
    make_provider("openai", user_keys_allowed=True)
    client.force_login(developer)
    response = client.post(reverse("userkeys:save", args=["openai"]), {"api_key": key})
    assert response.status_code == 422
    assert b"printable ASCII" in response.content
    assert not Provider.objects.filter(type="anthropic").exists()

"""Plant a canary key through every way in, then look for it everywhere a key could leak."""

import io
import logging

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEntry
from providers.models import Provider

pytestmark = pytest.mark.django_db

CANARY_UI = "sk-ant-CANARY-ui-5d1e0c9b"
CANARY_CLI = "sk-CANARY-cli-77aa21f0"
CANARY_ADMIN = "sk-CANARY-djadmin-0b3e"


def every_page(client) -> list[bytes]:
    urls = [
        reverse("providers:list"),
        reverse("audit:list"),
        "/django-admin/",
        "/django-admin/providers/provider/",
        "/django-admin/audit/auditentry/",
    ]
    for provider in Provider.objects.all():
        urls += [
            reverse("providers:edit", args=[provider.type]),
            reverse("providers:delete", args=[provider.type]),
            f"/django-admin/providers/provider/{provider.pk}/change/",
            f"/django-admin/providers/provider/{provider.pk}/history/",
            f"/django-admin/providers/provider/{provider.pk}/delete/",
        ]
    bodies = []
    for url in urls:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            bodies.append(response.content)
    return bodies


def test_a_canary_key_appears_in_no_page_log_audit_entry_or_command_output(
    staff_client, piped_stdin, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    outputs = []

    # In through the Providers tab, with a bad save first (errors re-render the form).
    edit = reverse("providers:edit", args=["anthropic"])
    bad = staff_client.post(
        edit,
        {"api_key": CANARY_UI, "base_url": "ftp://x", "central_key_enabled": "on", "enabled": "on"},
    )
    assert bad.status_code == 422
    outputs.append(bad.content)
    good = staff_client.post(
        edit,
        {"api_key": CANARY_UI, "central_key_enabled": "on", "enabled": "on"},
        headers={"HX-Request": "true"},
    )
    outputs.append(good.content)

    # In through the command, from stdin.
    piped_stdin(CANARY_CLI + "\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("provider_set", "openai", "--key-stdin", stdout=out, stderr=err)
    outputs += [out.getvalue().encode(), err.getvalue().encode()]

    # In through the Django admin.
    response = staff_client.post(
        "/django-admin/providers/provider/add/",
        {"type": "google", "api_key": CANARY_ADMIN, "central_key_enabled": "on", "enabled": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Provider.objects.get(type="google").api_key.reveal() == CANARY_ADMIN

    for command in (
        ("providers_list",),
        ("providers_list", "--json"),
        ("check",),
        ("rotate_encryption_key",),
    ):
        out = io.StringIO()
        call_command(*command, stdout=out, stderr=out)
        outputs.append(out.getvalue().encode())

    outputs += every_page(staff_client)
    outputs += [repr(p).encode() + repr(vars(p)).encode() for p in Provider.objects.all()]
    outputs += [repr(list(AuditEntry.objects.values())).encode()]
    from django.contrib.admin.models import LogEntry

    outputs += [repr(list(LogEntry.objects.values())).encode()]
    captured = capsys.readouterr()
    outputs += [caplog.text.encode(), captured.out.encode(), captured.err.encode()]

    for canary in (CANARY_UI, CANARY_CLI, CANARY_ADMIN):
        for output in outputs:
            assert canary.encode() not in output
    assert Provider.objects.count() == 3

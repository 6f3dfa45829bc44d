"""A provider's several central keys: added, listed and removed from the Providers tab and
by command, audited without the key, rotated with the keyring, never shown."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from audit.models import AuditEntry
from providers.models import MAX_CENTRAL_KEYS, KeyHealth, Provider, ProviderKey
from providers.rotation import rotate_encryption_key
from providers.services import provider_clear_key, provider_key_add, provider_key_remove
from providers.validators import validate_key_label

pytestmark = pytest.mark.django_db

CANARY = "sk-further-CANARY-31337"
LIST = "/admin/providers/"


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def labels(provider_type="openai"):
    provider = Provider.objects.prefetch_related("further_keys").get(type=provider_type)
    return [key.key_label for key in provider.central_keys()]


def test_keys_are_added_in_order_and_audited_without_the_key(make_provider):
    provider = make_provider("openai")
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    provider_key_add(provider=provider, label="spare", raw_key="sk-spare-0001", actor=None)
    assert labels() == ["primary", "team-b", "spare"]
    assert ProviderKey.objects.get(key_label="team-b").api_key.reveal() == CANARY
    entries = " ".join(str(e.changes) + e.object_repr for e in AuditEntry.objects.all())
    assert "team-b" in entries and CANARY not in entries


def test_a_label_is_unique_per_provider_and_keys_are_bounded(make_provider):
    provider = make_provider("openai")
    with pytest.raises(ValidationError) as taken:
        provider_key_add(provider=provider, label="Primary", raw_key="sk-x-1", actor=None)
    assert "already has a key labelled" in str(taken.value)
    with pytest.raises(ValidationError) as bad:
        provider_key_add(provider=provider, label=" a|b", raw_key=" sk ", actor=None)
    assert set(bad.value.message_dict) == {"key_label", "api_key"}
    for number in range(MAX_CENTRAL_KEYS - 1):
        provider_key_add(provider=provider, label=f"k{number}", raw_key=f"sk-{number}", actor=None)
    with pytest.raises(ValidationError, match="the most it may have"):
        provider_key_add(provider=provider, label="one-more", raw_key="sk-more", actor=None)


@given(st.text(max_size=60))
def test_a_label_is_accepted_only_as_the_rule_says(text):
    try:
        validate_key_label(text)
    except ValidationError:
        return
    assert 1 <= len(text) <= 40 and "|" not in text and "\n" not in text
    assert text == text.strip()


def test_removing_the_providers_own_key_moves_the_next_one_into_its_place(make_provider):
    provider = make_provider("openai")
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    ProviderKey.objects.filter(key_label="team-b").update(key_attention="refused (401)")
    provider_key_remove(provider=provider, label="primary", actor=None)
    provider = Provider.objects.get(type="openai")
    assert labels() == ["team-b"] and provider.api_key.reveal() == CANARY
    assert provider.key_health() == KeyHealth.NEEDS_ATTENTION  # its state came along
    with pytest.raises(ValidationError, match="central API key is on"):
        provider_key_remove(provider=provider, label="team-b", actor=None)
    with pytest.raises(ValidationError, match="no key labelled 'nope'"):
        provider_key_remove(provider=provider, label="nope", actor=None)


def test_clearing_the_key_from_the_form_keeps_the_further_ones(make_provider):
    provider = make_provider("openai", user_keys_allowed=True, central_key_fallback=True)
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    provider_clear_key(provider=provider, actor=None)
    assert labels() == ["team-b"]


def test_rotation_re_encrypts_every_further_key(make_provider, settings):
    provider = make_provider("openai")
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    new = Fernet.generate_key().decode()
    with override_settings(ENCRYPTION_KEYS=f"new:{new},{settings.ENCRYPTION_KEYS}"):
        report = rotate_encryption_key()
        assert report.reencrypted >= 2
        further = ProviderKey.objects.get()
        assert further.api_key.key_id == "new" and further.api_key.reveal() == CANARY


def test_the_commands_add_list_and_remove_keys(make_provider, piped_stdin):
    make_provider("openai")
    piped_stdin(CANARY + "\n")
    out = run("provider_key_add", "openai", "team-b", "--key-stdin")
    assert "key 'team-b' added (2 central keys)" in out and CANARY not in out
    ProviderKey.objects.update(key_last_error="rate-limited (429)")
    table = run("provider_keys")
    assert "team-b" in table and "active" in table and "rate-limited (429)" in table
    assert CANARY not in table
    rows = json.loads(run("provider_keys", "openai", "--json"))
    assert [row["label"] for row in rows] == ["primary", "team-b"]
    assert rows[1]["state"] == "active"
    out = run("provider_key_remove", "openai", "team-b")
    assert "removed (1 central key left)" in out
    with pytest.raises(CommandError, match="no key labelled"):
        run("provider_key_remove", "openai", "team-b")
    piped_stdin("sk-x\n")
    with pytest.raises(CommandError, match="A label is 1 to 40"):
        run("provider_key_add", "openai", "bad|label")


def test_the_card_lists_adds_and_removes_keys_never_showing_one(staff_client, make_provider):
    make_provider("openai")
    added = staff_client.post(
        "/admin/providers/openai/keys/",
        {"key_label": "team-b", "api_key": CANARY},
        headers={"HX-Request": "true"},
    )
    assert added.status_code == 200
    html = added.content.decode()
    assert "Key &#x27;team-b&#x27; added." in html and 'data-key="team-b"' in html
    assert CANARY not in html
    page = staff_client.get(LIST).content.decode()
    assert "2 central keys" in page and CANARY not in page
    refused = staff_client.post(
        "/admin/providers/openai/keys/",
        {"key_label": "team-b", "api_key": "sk-other"},
        headers={"HX-Request": "true"},
    )
    assert "already has a key labelled" in refused.content.decode()
    assert 'id="openai-newkey-key_label"' in refused.content.decode()
    removed = staff_client.post(
        "/admin/providers/openai/keys/remove/",
        {"key_label": "team-b"},
        headers={"HX-Request": "true"},
    )
    assert "Key &#x27;team-b&#x27; removed." in removed.content.decode()
    assert labels() == ["primary"]


def test_a_key_that_needs_attention_is_shown_and_can_be_marked_fixed(staff_client, make_provider):
    provider = make_provider("openai")
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    ProviderKey.objects.update(key_attention="refused by the provider (401) at 03:04")
    page = staff_client.get(LIST).content.decode()
    assert "Needs attention" in page and "refused by the provider (401)" in page
    fixed = staff_client.post(
        "/admin/providers/openai/keys/fixed/",
        {"key_label": "team-b"},
        headers={"HX-Request": "true"},
    )
    assert "is active again" in fixed.content.decode()
    assert ProviderKey.objects.get().key_attention == ""
    fixes = [e for e in AuditEntry.objects.all() if e.changed_fields == ["key_attention"]]
    assert len(fixes) == 1 and "team-b" in fixes[0].object_repr


def test_the_key_pages_are_for_staff_only(developer_client, make_provider):
    make_provider("openai")
    for url in ("/admin/providers/openai/keys/", "/admin/providers/openai/keys/remove/"):
        assert developer_client.post(url, {"key_label": "primary"}).status_code in (302, 403)
    assert labels() == ["primary"]


def test_a_direct_call_takes_a_further_key_while_the_first_rests(make_provider):
    from datetime import timedelta

    from django.utils import timezone

    from routing.credentials import resolve_credential

    provider = make_provider("openai")
    provider_key_add(provider=provider, label="team-b", raw_key=CANARY, actor=None)
    provider = Provider.objects.get(type="openai")
    assert resolve_credential(provider, None).secret.reveal() == "sk-test-central-key"
    Provider.objects.filter(pk=provider.pk).update(
        key_cooling_until=timezone.now() + timedelta(seconds=30)
    )
    provider = Provider.objects.get(type="openai")
    assert resolve_credential(provider, None).secret.reveal() == CANARY
    ProviderKey.objects.update(key_attention="refused (401)")
    assert resolve_credential(provider, None).secret.reveal() == "sk-test-central-key"

"""Any input to the API Keys page and user_key_set: an error or a valid key, never a crash."""

import pytest
from django.urls import reverse
from django.utils.html import escape
from hypothesis import given

from providers.validators import validate_api_key
from tests.properties import property_settings, raw_bytes, rolled_back, run_command, texts
from userkeys.models import UserKey

pytestmark = pytest.mark.django_db


def stored_keys_are_valid() -> None:
    for key in UserKey.objects.all():
        validate_api_key(key.api_key.reveal())


@property_settings
@given(key=texts)
def test_the_api_keys_page_never_crashes_or_saves_an_invalid_key(
    developer_client, make_provider, key
):
    make_provider("openai", user_keys_allowed=True) if not UserKey.objects.exists() else None
    with rolled_back():
        for headers in ({}, {"HX-Request": "true"}):
            response = developer_client.post(
                reverse("userkeys:save", args=["openai"]), {"api_key": key}, headers=headers
            )
            assert response.status_code in (200, 302, 422)
            # Write-only: whatever was typed is never put back into the page.
            assert f'value="{escape(key)}"'.encode() not in response.content or not key
        stored_keys_are_valid()


@property_settings
@given(key=raw_bytes, username=texts)
def test_user_key_set_answers_in_one_line(make_provider, developer, key, username):
    make_provider("openai", user_keys_allowed=True) if not UserKey.objects.exists() else None
    with rolled_back():
        result = run_command("user_key_set", "dev", "openai", stdin=key)
        if isinstance(result, tuple):
            typed = key.strip().decode("ascii", "replace")
            assert len(typed) < 12 or typed not in "".join(result)
        run_command("user_key_set", username, "openai", stdin=b"sk-valid-key")
        run_command("user_key_remove", username, "openai")
        stored_keys_are_valid()

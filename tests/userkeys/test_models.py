import io

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.test import override_settings

from audit.models import AuditEntry
from providers.crypto import Secret, key_id_of
from providers.services import provider_delete
from userkeys.models import UserKey
from userkeys.services import user_key_save

pytestmark = pytest.mark.django_db


def test_one_key_per_user_and_provider(make_provider, developer, save_user_key):
    provider = make_provider("openai", api_key=None)
    save_user_key(developer, provider)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserKey.objects.create(user=developer, provider=provider, api_key=Secret("sk-2"))


@pytest.mark.parametrize("raw", ["", " x", "x" * 10_241])
def test_user_keys_follow_the_same_rules(make_provider, developer, raw):
    provider = make_provider("openai", api_key=None)
    with pytest.raises(ValidationError) as error:
        user_key_save(user=developer, provider=provider, raw_key=raw, actor=developer)
    assert "api_key" in error.value.message_dict


def test_a_provider_that_does_not_allow_user_keys_refuses_them(make_provider, developer):
    provider = make_provider("openai")
    with pytest.raises(ValidationError, match="does not accept personal API keys"):
        user_key_save(user=developer, provider=provider, raw_key="sk-x", actor=developer)


def test_keys_go_with_their_user_and_their_provider(
    make_provider, developer, other_developer, save_user_key
):
    openai = make_provider("openai", api_key=None)
    google = make_provider("google", api_key=None)
    save_user_key(developer, openai)
    save_user_key(other_developer, openai)
    save_user_key(other_developer, google)
    developer.delete()
    assert UserKey.objects.count() == 2
    provider_delete(provider=openai, actor=None)
    assert list(UserKey.objects.values_list("provider__type", flat=True)) == ["google"]


def test_rotation_covers_user_keys(make_provider, developer, save_user_key):
    provider = make_provider("openai", user_keys_allowed=True)
    save_user_key(developer, provider, "sk-rotate-me")
    keyring = f"next:{Fernet.generate_key().decode()},{settings.ENCRYPTION_KEYS}"
    with override_settings(ENCRYPTION_KEYS=keyring):
        out = io.StringIO()
        call_command("rotate_encryption_key", stdout=out)
        assert out.getvalue().strip() == "Re-encrypted 2, already current 0, empty 0."
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT api_key FROM userkeys_userkey")
            assert key_id_of(cursor.fetchone()[0]) == "next"
    with override_settings(ENCRYPTION_KEYS=keyring.split(",")[0]):
        assert UserKey.objects.get().api_key.reveal() == "sk-rotate-me"


def test_check_counts_user_keys_that_cannot_be_decrypted(make_provider, developer, save_user_key):
    provider = make_provider("openai", api_key=None)
    with override_settings(ENCRYPTION_KEYS=f"gone:{Fernet.generate_key().decode()}"):
        save_user_key(developer, provider)
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "providers.W002) 1 user keys cannot be decrypted" in out.getvalue()


def test_support_commands_set_and_remove_a_users_key(make_provider, developer, piped_stdin):
    make_provider("openai", api_key=None)
    piped_stdin("sk-support-set\n")
    out = io.StringIO()
    call_command("user_key_set", "dev", "openai", stdout=out)
    assert out.getvalue().strip() == "dev: OpenAI key saved."
    assert UserKey.objects.get().api_key.reveal() == "sk-support-set"
    call_command("user_key_remove", "dev", "openai", stdout=out)
    assert not UserKey.objects.exists()
    assert [e.actor_label for e in AuditEntry.objects.filter(object_type="userkeys.userkey")] == [
        "manage.py",
        "manage.py",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (("user_key_set", "nobody", "openai"), "no user named 'nobody'"),
        (("user_key_set", "dev", "google"), "Google is not configured"),
        (("user_key_set", "dev", "anthropic"), "does not accept personal API keys"),
        (("user_key_remove", "dev", "openai"), "dev has no OpenAI key"),
    ],
)
def test_support_commands_fail_in_one_line(make_provider, developer, piped_stdin, args, message):
    make_provider("openai", api_key=None)
    make_provider("anthropic")
    piped_stdin("sk-x")
    with pytest.raises(CommandError, match=message) as error:
        call_command(*args, stdout=io.StringIO())
    assert "\n" not in str(error.value)


def test_user_availability_explains_each_provider(make_provider, make_model, developer):
    make_model("claude", "anthropic", display_name="Claude")
    make_provider("openai", api_key=None)
    out = io.StringIO()
    call_command("user_availability", "dev", stdout=out)
    assert out.getvalue().splitlines() == [
        "Anthropic: available",
        "  claude  Claude",
        "OpenAI: unavailable (user_api_key_required)",
    ]

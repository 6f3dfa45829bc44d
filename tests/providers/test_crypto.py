import pickle

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from providers.crypto import Keyring, Secret, UndecryptableSecret, get_keyring, key_id_of
from providers.models import KeyState, Provider, ProviderStatus
from providers.rotation import RotationRefused, rotate_encryption_key

CANARY = "sk-canary-7f3a9d-never-show-me"
OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def raw_column(provider: Provider) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider.pk])
        return cursor.fetchone()[0]


def test_secret_never_shows_its_value_in_any_string_form():
    secret = Secret(CANARY)
    for shown in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        "%s" % secret,
        "%r" % (secret,),
        f"{secret}",
        format(secret, ">40"),
    ):
        assert CANARY not in shown
    assert secret.reveal() == CANARY


def test_secret_refuses_to_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(Secret(CANARY))


def test_keyring_encrypts_with_first_key_and_prefixes_its_id():
    keyring = Keyring.parse(f"new:{NEW},old:{OLD}")
    stored = keyring.encrypt(CANARY)
    assert stored.startswith("enc:fernet:new:")
    assert CANARY not in stored
    assert keyring.decrypt(stored) == CANARY


def test_keyring_decrypts_with_any_of_its_keys():
    stored = Keyring.parse(f"old:{OLD}").encrypt(CANARY)
    assert Keyring.parse(f"new:{NEW},old:{OLD}").decrypt(stored) == CANARY


@pytest.mark.parametrize(
    "raw, secret, message",
    [
        ("justakey-9f8e7d6c", "justakey-9f8e7d6c", "must look like 'id:fernetkey'"),
        ("a:not-a-fernet-key-5a4b", "not-a-fernet-key-5a4b", "not a valid Fernet key"),
        (f"a:{OLD},a:{NEW}", NEW, "repeats the key id"),
        (f"a:{OLD},b:{NEW[:-2]}", NEW[:-2], "not a valid Fernet key"),
    ],
    ids=["no-id", "not-fernet", "repeated-id", "truncated"],  # stable: keys are random
)
def test_keyring_configuration_errors_are_clear_and_never_echo_the_key(raw, secret, message):
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        Keyring.parse(raw)
    assert secret not in str(error.value) and OLD not in str(error.value)


def test_an_empty_keyring_cannot_encrypt():
    with pytest.raises(ImproperlyConfigured, match="LLMCP_ENCRYPTION_KEYS is not set"):
        Keyring.parse("").encrypt("x")


def test_the_stored_column_is_ciphertext_carrying_the_key_id(make_provider):
    provider = make_provider(api_key=CANARY)
    raw = raw_column(provider)
    assert CANARY not in raw
    assert key_id_of(raw) == get_keyring().primary_id
    assert Provider.objects.get().api_key.reveal() == CANARY


def test_a_key_from_an_unknown_keyring_loads_as_needs_reentry(make_provider):
    with override_settings(ENCRYPTION_KEYS=f"gone:{OLD}"):
        provider = make_provider(api_key=CANARY)
    loaded = Provider.objects.get(pk=provider.pk)
    assert isinstance(loaded.api_key, UndecryptableSecret)
    assert loaded.key_state == KeyState.NEEDS_REENTRY
    assert loaded.status == ProviderStatus.NEEDS_REENTRY
    assert "gone" in loaded.api_key.reason


def test_saving_an_undecryptable_row_keeps_its_ciphertext(make_provider):
    with override_settings(ENCRYPTION_KEYS=f"gone:{OLD}"):
        provider = make_provider(api_key=CANARY)
    before = raw_column(provider)
    loaded = Provider.objects.get(pk=provider.pk)
    loaded.enabled = False
    loaded.save()
    assert raw_column(provider) == before
    with override_settings(ENCRYPTION_KEYS=f"gone:{OLD}"):
        assert Provider.objects.get(pk=provider.pk).api_key.reveal() == CANARY


def test_rotation_reencrypts_everything_under_the_first_key_and_loses_nothing(make_provider):
    with override_settings(ENCRYPTION_KEYS=f"old:{OLD}"):
        keys = {t: f"{CANARY}-{t}" for t in ("anthropic", "openai", "google")}
        providers = [make_provider(t, api_key=k) for t, k in keys.items()]
        make_provider("openrouter", api_key=None)  # no key stored at all
    with override_settings(ENCRYPTION_KEYS=f"new:{NEW},old:{OLD}"):
        report = rotate_encryption_key()
        assert (report.reencrypted, report.already_current, report.empty) == (3, 0, 1)
        assert all(key_id_of(raw_column(p)) == "new" for p in providers)
        again = rotate_encryption_key()
        assert (again.reencrypted, again.already_current) == (0, 3)
    # The old key can now leave the keyring: everything still decrypts.
    with override_settings(ENCRYPTION_KEYS=f"new:{NEW}"):
        for provider in Provider.objects.exclude(type="openrouter"):
            assert provider.api_key.reveal() == keys[provider.type]


def test_rotation_refuses_and_names_rows_it_cannot_decrypt(make_provider):
    with override_settings(ENCRYPTION_KEYS=f"lost:{OLD}"):
        broken = make_provider("openai", api_key=CANARY)
    good = make_provider("anthropic", api_key="sk-good-key")
    before = raw_column(good)
    with (
        override_settings(ENCRYPTION_KEYS=f"new:{NEW},{settings.ENCRYPTION_KEYS}"),
        pytest.raises(RotationRefused) as error,
    ):
        rotate_encryption_key()
    assert f"provider {broken.pk}" in str(error.value)
    assert "lost" in str(error.value)
    assert CANARY not in str(error.value)
    assert raw_column(good) == before

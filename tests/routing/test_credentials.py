"""The seed's key-policy truth table, row by row, and the cases around it."""

import pickle

import pytest

from providers.crypto import Secret
from providers.services import provider_save
from routing.availability import availability_for
from routing.credentials import (
    Credential,
    CredentialSource,
    Unavailable,
    UnavailableReason,
    resolve_for_user,
)

pytestmark = pytest.mark.django_db

CENTRAL = "sk-central-shared"
PERSONAL = "sk-personal-own"

# central key, user keys allowed, fallback, developer has key -> expected
TRUTH_TABLE = [
    pytest.param(True, False, False, False, CredentialSource.CENTRAL, id="1-central-only"),
    pytest.param(False, True, False, True, CredentialSource.USER, id="2-user-only-with-key"),
    pytest.param(
        False,
        True,
        False,
        False,
        UnavailableReason.USER_API_KEY_REQUIRED,
        id="3-user-only-without-key",
    ),
    pytest.param(True, True, False, True, CredentialSource.USER, id="4-both-no-fallback-key"),
    pytest.param(
        True,
        True,
        False,
        False,
        UnavailableReason.USER_API_KEY_REQUIRED,
        id="5-both-no-fallback-no-key",
    ),
    pytest.param(True, True, True, True, CredentialSource.USER, id="6-fallback-with-key"),
    pytest.param(True, True, True, False, CredentialSource.CENTRAL, id="7-fallback-no-key"),
]


@pytest.mark.parametrize("central, user_keys, fallback, has_key, expected", TRUTH_TABLE)
def test_the_seed_truth_table(
    make_provider,
    save_user_key,
    developer,
    other_developer,
    central,
    user_keys,
    fallback,
    has_key,
    expected,
):
    provider = make_provider(
        "anthropic",
        api_key=CENTRAL if central else None,
        central_key_enabled=central,
        user_keys_allowed=user_keys,
        central_key_fallback=fallback,
    )
    save_user_key(other_developer, provider, "sk-someone-else") if user_keys else None
    if has_key:
        save_user_key(developer, provider, PERSONAL)
    result = resolve_for_user(developer, provider)
    if isinstance(expected, CredentialSource):
        assert isinstance(result, Credential) and result.source == expected
        assert result.secret.reveal() == (PERSONAL if expected == "user" else CENTRAL)
    else:
        assert result == Unavailable(provider, expected)


def test_a_disabled_provider_is_unavailable(make_provider, developer):
    provider = make_provider("openai", enabled=False)
    assert resolve_for_user(developer, provider).reason == UnavailableReason.PROVIDER_DISABLED


def test_central_on_with_its_key_cleared_is_missing_api_key(make_provider, developer):
    provider = make_provider("openai")
    provider.api_key = None  # as a row edited outside the app would be
    provider.save()
    assert resolve_for_user(developer, provider).reason == UnavailableReason.MISSING_API_KEY


def test_a_central_key_that_cannot_be_decrypted_is_missing_api_key(make_provider, developer):
    from cryptography.fernet import Fernet
    from django.test import override_settings

    with override_settings(ENCRYPTION_KEYS=f"gone:{Fernet.generate_key().decode()}"):
        provider = make_provider("openai")
    provider.refresh_from_db()
    assert resolve_for_user(developer, provider).reason == UnavailableReason.MISSING_API_KEY


def test_a_user_key_kept_while_user_keys_are_off_is_not_used(
    make_provider, save_user_key, developer
):
    provider = make_provider("openai", user_keys_allowed=True)
    save_user_key(developer, provider)
    provider = provider_save(
        provider_type="openai", actor=None, changes={"user_keys_allowed": False}
    )
    result = resolve_for_user(developer, provider)
    assert result.source == CredentialSource.CENTRAL


def test_several_providers_with_different_policies(make_provider, save_user_key, developer):
    central = make_provider("openai")
    byok = make_provider("anthropic", api_key=None)
    fallback = make_provider("google", user_keys_allowed=True, central_key_fallback=True)
    save_user_key(developer, byok)
    assert resolve_for_user(developer, central).source == CredentialSource.CENTRAL
    assert resolve_for_user(developer, byok).source == CredentialSource.USER
    assert resolve_for_user(developer, fallback).source == CredentialSource.CENTRAL


def test_saving_then_removing_a_key_flips_resolution_and_availability_each_time(
    make_provider, make_model, save_user_key, developer, other_developer
):
    from userkeys.services import user_key_delete

    provider = make_provider("openai", api_key=None)
    assert isinstance(resolve_for_user(developer, provider), Unavailable)
    make_model("gpt", "openai")

    def usable(user):
        return [m.identifier for m in availability_for(user).models]

    assert usable(developer) == []
    key = save_user_key(developer, provider)
    assert resolve_for_user(developer, provider).source == CredentialSource.USER
    assert usable(developer) == ["gpt"]
    assert isinstance(resolve_for_user(other_developer, provider), Unavailable)
    assert usable(other_developer) == []
    user_key_delete(key=key, actor=developer)
    assert isinstance(resolve_for_user(developer, provider), Unavailable)
    assert usable(developer) == []


def test_resolution_takes_one_query(
    make_provider, save_user_key, developer, django_assert_num_queries
):
    provider = make_provider("openai", user_keys_allowed=True)
    save_user_key(developer, provider)
    with django_assert_num_queries(1):
        resolve_for_user(developer, provider)


def test_a_credential_never_shows_its_key(make_provider):
    provider = make_provider("openai", api_key="sk-CANARY-credential")
    credential = Credential(provider, CredentialSource.CENTRAL, Secret("sk-CANARY-credential"))
    for shown in (
        repr(credential),
        str(credential),
        f"{credential}",
        f"{credential!r}",
        "%s" % (credential,),
        "%r" % (credential,),
        format(credential, ""),
    ):
        assert "sk-CANARY-credential" not in shown
    assert "source='central'" in repr(credential)
    with pytest.raises(TypeError):
        pickle.dumps(credential)

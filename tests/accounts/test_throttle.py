"""Sign-in throttling: a success clears only its own account's failures, and the lockout by
account and address pair keeps others from locking an account out."""

import pytest
from django.conf import settings

from conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_sign_in_as_another_account_does_not_reset_the_admins_failures(
    client, admin_user, developer
):
    """Four wrong admin passwords, then a correct sign-in as oneself from the same address,
    over and over: the admin's failures add up and the lockout comes at the limit."""
    refused_at = None
    for guess in range(1, 25):
        response = sign_in(client, "alice", f"wrong-{guess}")
        if response.status_code == 429:
            refused_at = guess
            break
        if guess % (LIMIT - 1) == 0:
            client.logout()
            assert sign_in(client, "dev", PASSWORD).status_code in (302, 429)
            client.logout()
    assert refused_at is not None and refused_at <= LIMIT
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_a_success_clears_that_accounts_own_failures(client, developer):
    for _ in range(LIMIT - 1):
        assert sign_in(client, "dev", "wrong").status_code == 200
    assert sign_in(client, "dev", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):  # counted from zero again
        assert sign_in(client, "dev", "wrong").status_code == 200


@pytest.fixture
def pair_lockout(settings):
    settings.SIGN_IN_LOCKOUT = "account_and_address"
    settings.AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
    settings.SIGN_IN_ADDRESS_FAILURE_LIMIT = 12


def test_by_account_and_address_nobody_locks_an_account_from_elsewhere(
    client, developer, pair_lockout
):
    for _ in range(LIMIT):
        sign_in(client, "dev", "wrong", address="10.6.6.6")
    assert sign_in(client, "dev", PASSWORD, address="10.6.6.6").status_code == 429
    assert sign_in(client, "dev", PASSWORD, address="10.0.0.2").status_code == 302


def test_by_account_and_address_an_address_is_locked_past_its_own_higher_limit(
    client, developer, pair_lockout
):
    for i in range(settings.SIGN_IN_ADDRESS_FAILURE_LIMIT - 1):
        assert sign_in(client, f"guess-{i}", "wrong", address="10.6.6.6").status_code == 200
    assert sign_in(client, "guess-last", "wrong", address="10.6.6.6").status_code == 429
    assert sign_in(client, "dev", PASSWORD, address="10.6.6.6").status_code == 429
    assert sign_in(client, "dev", PASSWORD, address="10.0.0.2").status_code == 302


def test_the_default_lockout_is_by_account_and_by_address():
    assert settings.SIGN_IN_LOCKOUT == "account"
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]

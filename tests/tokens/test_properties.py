"""Any input to the token form and commands: an error or a valid token, never a crash."""

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tests.properties import (
    assert_all_valid,
    numbers_as_text,
    property_settings,
    rolled_back,
    run_command,
    texts,
)
from tokens.models import ApiToken, TokenKind
from tokens.services import validate_token_name

pytestmark = pytest.mark.django_db


def valid_name(token: ApiToken) -> None:
    if token.kind == TokenKind.API:
        validate_token_name(token.name)


@property_settings
@given(name=texts, lifetime=numbers_as_text)
def test_the_token_form_never_crashes_or_saves_a_bad_token(developer_client, name, lifetime):
    with rolled_back():
        for headers in ({}, {"HX-Request": "true"}):
            response = developer_client.post(
                reverse("tokens:new"), {"name": name, "lifetime_days": lifetime}, headers=headers
            )
            assert response.status_code in (201, 422)
        assert_all_valid(ApiToken.objects.all(), valid_name)


@property_settings
@given(name=texts, days=numbers_as_text, token=st.one_of(texts, numbers_as_text))
def test_token_commands_answer_in_one_line(developer, name, days, token):
    with rolled_back():
        run_command("token_create", "dev", "--name", name, "--expires-in", days)
        run_command("token_revoke", token)
        run_command("tokens_list", "--user", name)
        run_command("route_explain", "dev", name, "--token", token)
        assert_all_valid(ApiToken.objects.all(), valid_name)

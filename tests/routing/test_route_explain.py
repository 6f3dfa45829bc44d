import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tokens.services import token_create, token_revoke

pytestmark = pytest.mark.django_db

USER_KEY = "sk-user-CANARY-explain-1234567890"


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("route_explain", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def setup(make_provider, make_model, save_user_key, developer):
    provider = make_provider("openai", api_key=None)
    save_user_key(developer, provider, USER_KEY)
    make_model("gpt-5", "openai", temperature=0.3)
    return token_create(user=developer, name="cli", lifetime=timedelta(days=1), actor=None)


def test_it_explains_a_delegated_gateway_route_without_showing_the_key(setup):
    out, err = run("dev", "openai/gpt-5")
    assert "path:              gateway" in out
    assert "credential_source: user" in out
    assert "Authorization: ********" in out
    assert "X-Coder-AI-Governance-Token: delegated" in out
    assert "temperature: 0.3" in out
    assert setup.token.display_prefix in out
    data = json.loads(run("dev", "gpt-5", "--json", "--purpose", "title")[0])
    assert data["delegated"] is True and data["purpose"] == "title"
    assert USER_KEY not in out + err + json.dumps(data)


def test_it_prints_the_typed_error_in_one_line(setup, developer):
    token_revoke(token=setup.token, actor=None)
    with pytest.raises(CommandError, match=r"^api_key_missing: .*Sign in again"):
        run("dev", "openai/gpt-5")
    with pytest.raises(CommandError, match=r"^api_key_revoked: "):
        run("dev", "openai/gpt-5", "--token", str(setup.token.pk))


def test_it_explains_a_direct_route(setup, settings):
    settings.AI_GATEWAY_ENABLED = False
    out, _ = run("dev", "gpt-5")
    assert (
        "path:              direct" in out and "base_url:          https://api.openai.com/v1" in out
    )


def test_unknown_user_or_model_is_one_line(setup):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("ghost", "gpt-5")
    with pytest.raises(CommandError, match="no model 'nope'"):
        run("dev", "nope")


def test_model_purpose_lists_and_sets_overrides(setup, make_model):
    make_model("gpt-5-mini", "openai")
    out = io.StringIO()
    call_command("model_purpose", "title", "openai", "gpt-5-mini", stdout=out)
    assert "title      openai/gpt-5-mini" in out.getvalue()
    out = io.StringIO()
    call_command("model_purpose", "title", "--auto", "--json", stdout=out)
    assert json.loads(out.getvalue())[0] == {"purpose": "title", "model": None}
    with pytest.raises(CommandError, match="give PROVIDER IDENTIFIER, or --auto"):
        call_command("model_purpose", "advisor", stdout=io.StringIO())

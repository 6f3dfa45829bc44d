import io
import json
import os
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tokens.models import ApiToken
from tokens.services import authenticate_token

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_token_create_prints_only_the_token_on_stdout(developer):
    out, err = run("token_create", "dev", "--name", "ci")
    secret = out.strip()
    assert authenticate_token(secret).user == developer
    assert secret not in err and "shown only now" in err
    listed, _ = run("tokens_list", "--user", "dev")
    listed_json, _ = run("tokens_list", "--json", "--all")
    for output in (listed, listed_json):
        assert secret not in output and secret[len("llmcp_") :] not in output
    assert json.loads(listed_json)[0]["name"] == "ci"


def test_token_create_can_write_the_token_to_a_new_private_file(developer, tmp_path):
    target = tmp_path / "token"
    out, err = run("token_create", "dev", "--name", "ci", "--output", str(target), "--json")
    secret = target.read_text().strip()
    assert authenticate_token(secret) is not None
    assert secret not in out and secret not in err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(out)["prefix"].startswith("llmcp_")
    with pytest.raises(CommandError, match="already exists"):
        run("token_create", "dev", "--name", "other", "--output", str(target))
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("nobody", "--name", "x"), "no user named 'nobody'"),
        (("dev", "--name", "   "), "Give the token a name"),
        (("dev", "--name", "x", "--expires-in", "0"), "between 1 and 365"),
        (("dev", "--name", "x", "--expires-in", "9999"), "between 1 and 365"),
    ],
    ids=["unknown-user", "blank-name", "zero-days", "too-long"],
)
def test_token_create_refuses_bad_input_in_one_line(developer, args, message):
    with pytest.raises(CommandError, match=message):
        run("token_create", *args)
    assert not ApiToken.objects.exists()


def test_token_revoke_by_prefix_or_id_and_all_of_a_users(developer, make_token):
    first, second = make_token(developer, "a"), make_token(developer, "b")
    out, _ = run("token_revoke", first.token.display_prefix)
    assert "revoked" in out and authenticate_token(first.secret) is None
    out, _ = run("token_revoke", str(first.token.pk))
    assert "already revoked" in out
    out, _ = run("token_revoke", "--user", "dev")
    assert "1 token(s) revoked" in out and authenticate_token(second.secret) is None


def test_token_revoke_refuses_a_whole_token_on_the_command_line(developer, make_token):
    new = make_token(developer)
    with pytest.raises(CommandError, match="never the whole token") as error:
        run("token_revoke", new.secret)
    assert new.secret not in str(error.value)
    assert authenticate_token(new.secret) is not None

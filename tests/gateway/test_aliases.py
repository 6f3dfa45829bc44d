"""Model aliases: a name a coding agent asks for by default (or a pattern of names) answered
by a configured model, resolved in the gateway's one query; an unknown model answered as each
provider answers it, naming what the caller can use."""

from __future__ import annotations

import fnmatch

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEntry
from gateway.store import store
from models_catalog.models import ModelAlias, ModelConfig
from models_catalog.services import alias_delete, alias_set, model_save
from providers.models import Provider

from .conftest import run, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v2/aibridge"


def alias(provider_type: str, pattern: str, identifier: str) -> ModelAlias:
    provider = Provider.objects.get(type=provider_type)
    model = ModelConfig.objects.get(provider=provider, identifier=identifier)
    return alias_set(provider=provider, pattern=pattern, model=model, actor=None)


def message(server: str, token: str, model: str, **extra) -> httpx.Response:
    return httpx.post(
        f"{server}{BASE}/anthropic/v1/messages",
        json={
            "model": model,
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
            **extra,
        },
        headers={"x-api-key": token},
        timeout=15,
    )


def test_a_coding_agents_default_model_reaches_the_model_its_alias_names(
    gateway_server, deployment
):
    alias("anthropic", "claude-opus-4-8", "claude-fake")
    response = message(gateway_server, deployment.token.secret, "claude-opus-4-8")
    assert response.status_code == 200, response.text
    [received] = deployment.fake.calls("/messages")
    assert received.json["model"] == "claude-fake"
    [row] = wait_for_usage(1)
    assert (row.model_identifier, row.model_id) == ("claude-fake", deployment.model("anthropic").pk)
    assert row.cost_usd > 0


def test_the_most_specific_alias_answers_and_a_models_own_name_comes_first(
    gateway_server, deployment
):
    anthropic = Provider.objects.get(type="anthropic")
    model_save(
        model=None,
        provider=anthropic,
        fields={"identifier": "claude-other", "display_name": "Other", "context_limit": 1000},
        options={},
        actor=None,
    )
    alias("anthropic", "claude-*", "claude-other")
    alias("anthropic", "claude-opus-*", "claude-fake")
    alias("anthropic", "claude-opus-4-1", "claude-other")
    token = deployment.token.secret
    for asked in (
        "claude-opus-4-8",
        "claude-opus-4-1",
        "claude-haiku-4-5",
        "claude-fake",
        "Claude-Opus-9",
    ):
        assert message(gateway_server, token, asked).status_code == 200, asked
    sent = [r.json["model"] for r in deployment.fake.calls("/messages")]
    assert sent == ["claude-fake", "claude-other", "claude-other", "claude-fake", "claude-fake"]


def test_an_alias_streams_and_names_its_model_in_a_googles_path(gateway_server, deployment):
    alias("google", "gemini-2.5-pro", "gemini-fake")
    response = httpx.post(
        f"{gateway_server}{BASE}/google/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": deployment.token.secret},
    )
    assert response.status_code == 200 and "finishReason" in response.text
    [received] = deployment.fake.calls()
    assert received.path == "/v1beta/models/gemini-fake:streamGenerateContent"
    assert wait_for_usage(1)[0].model_identifier == "gemini-fake"


def test_an_unknown_model_is_answered_as_each_provider_answers_it(gateway_server, deployment):
    """A 404 in each format (the SDKs raise their not-found error, and agents say the model
    is unknown rather than the key), naming the models the caller can use."""
    from anthropic import Anthropic, NotFoundError
    from google import genai
    from google.genai import errors, types
    from openai import NotFoundError as OpenAINotFound
    from openai import OpenAI

    token = deployment.token.secret
    openai = OpenAI(api_key=token, base_url=f"{gateway_server}{BASE}/openai/v1", max_retries=0)
    with pytest.raises(OpenAINotFound) as chat:
        openai.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert chat.value.body["code"] == "model_not_found"
    assert "`gpt-9` does not exist" in chat.value.body["message"]
    assert "Models you can use here: fake-gpt." in chat.value.body["message"]

    anthropic = Anthropic(
        api_key=token, base_url=f"{gateway_server}{BASE}/anthropic", max_retries=0
    )
    with pytest.raises(NotFoundError) as claude:
        anthropic.messages.create(
            model="claude-opus-4-8", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    error = claude.value.body["error"]
    assert error["type"] == "not_found_error" and error["message"].startswith(
        "model: claude-opus-4-8"
    )
    assert "claude-fake" in error["message"]

    google = genai.Client(
        api_key=token, http_options=types.HttpOptions(base_url=f"{gateway_server}{BASE}/google")
    )
    with pytest.raises(errors.ClientError) as gemini:
        google.models.generate_content(model="gemini-3-pro", contents="x")
    assert gemini.value.code == 404 and "models/gemini-3-pro is not found" in gemini.value.message
    assert deployment.fake.calls() == []
    rows = wait_for_usage(3)
    assert {(r.status, r.error_kind) for r in rows} == {(404, "not_allowed")}


def test_an_alias_whose_model_is_disabled_is_a_model_not_found(gateway_server, deployment):
    alias("anthropic", "claude-opus-4-8", "claude-fake")
    ModelConfig.objects.filter(identifier="claude-fake").update(enabled=False)
    response = message(gateway_server, deployment.token.secret, "claude-opus-4-8")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert deployment.fake.calls() == []


def test_aliases_are_checked_and_audited(deployment, admin_user):
    from django.core.exceptions import ValidationError

    anthropic = Provider.objects.get(type="anthropic")
    made = alias_set(
        provider=anthropic,
        pattern="claude-opus-*",
        model=deployment.model("anthropic"),
        actor=admin_user,
    )
    entries = AuditEntry.objects.filter(object_type="models_catalog.modelalias")
    assert entries.count() == 1 and entries.get().changes == {"answered by": [None, "claude-fake"]}
    with pytest.raises(ValidationError) as other:
        alias_set(provider=anthropic, pattern="x-*", model=deployment.model("openai"), actor=None)
    assert "model" in other.value.message_dict
    with pytest.raises(ValidationError) as shadowed:
        alias_set(
            provider=anthropic,
            pattern="claude-fake",
            model=deployment.model("anthropic"),
            actor=None,
        )
    assert "pattern" in shadowed.value.message_dict
    for pattern in ("*", "**", "claude opus", "claude-\u202eopus"):
        with pytest.raises(ValidationError):
            alias_set(
                provider=anthropic, pattern=pattern, model=deployment.model("anthropic"), actor=None
            )
    alias_delete(alias=made, actor=admin_user)
    assert not ModelAlias.objects.exists() and entries.count() == 2


NAME = st.text(alphabet="ab_%*-.\\C", min_size=1, max_size=8)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(patterns=st.lists(NAME, min_size=1, max_size=4, unique=True), asked=NAME)
def test_the_one_query_resolves_a_name_as_a_plain_reading_of_the_patterns_would(
    deployment, patterns, asked
):
    """``*`` is any text and nothing else is special (not LIKE's % or _); a model's own name
    first, then the pattern that spells out most of the name; case does not matter."""
    ModelAlias.objects.all().delete()
    openai = Provider.objects.get(type="openai")
    targets = {}
    for index, pattern in enumerate(patterns):
        if pattern.strip("*") == "" or pattern == "fake-gpt":
            continue
        model, _ = model_save(
            model=None,
            provider=openai,
            fields={
                "identifier": f"target-{index}",
                "display_name": f"T{index}",
                "context_limit": 10,
            },
            options={},
            actor=None,
        )
        alias_set(provider=openai, pattern=pattern, model=model, actor=None)
        targets[pattern] = model.identifier
    row = run(
        lambda: store().call_row(
            provider_type="openai", model=asked, lookup_id=deployment.token.token.lookup_id
        )
    )
    if asked == "fake-gpt" or asked in {
        m for m in ModelConfig.objects.values_list("identifier", flat=True)
    }:
        expected = asked
    else:
        matching = [p for p in targets if fnmatch.fnmatchcase(asked.lower(), _glob(p.lower()))]
        best = max(matching, key=lambda p: (("*" not in p), len(p.replace("*", ""))), default=None)
        ties = [
            p
            for p in matching
            if best
            and (
                (("*" not in p), len(p.replace("*", "")))
                == (("*" not in best), len(best.replace("*", "")))
            )
        ]
        expected = None if best is None else targets[best]
        if len(ties) > 1:  # the first created of equally specific patterns
            expected = targets[min(ties, key=patterns.index)]
    assert row.model_identifier == expected
    ModelConfig.objects.filter(identifier__startswith="target-").delete()


def _glob(pattern: str) -> str:
    """An alias pattern as fnmatch reads it: only * is special."""
    return "".join("*" if ch == "*" else f"[{ch}]" for ch in pattern)

"""Fallback models: a call its provider fails before the first byte goes to the next usable
fallback (its provider's key policy for the person, its breaker, within the call's budget
hold), the usage row names both, and nothing falls back after a stream has started or for a
caller who brought their own key. What reached the provider is read off the fake."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEntry
from gateway.app import application
from models_catalog.models import ModelConfig
from models_catalog.services import model_fallbacks_set, model_save
from providers.models import Breaker, Provider
from providers.services import provider_save, provider_set_key
from spend.services import budget_set

from .conftest import run, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE: dict[str, object] = {
    "model": "claude-fake",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hello"}],
}


def model(provider_type, identifier=None):
    found = ModelConfig.objects.with_provider().filter(provider__type=provider_type)
    return found.get(identifier=identifier) if identifier else found.get()


def with_fallbacks(deployment, *fallbacks, of=("anthropic", None)):
    model_fallbacks_set(model=model(*of), fallbacks=list(fallbacks), actor=None)


def anthropic(deployment, body=MESSAGE, headers=None, stream=False):
    token = deployment.token.secret

    async def make():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/anthropic/v1/messages",
                json={**body, "stream": stream},
                headers={"x-api-key": token, **(headers or {})},
            )

    return run(make)


def reached(deployment):
    """(path, key) of each call the fake received."""
    return [
        (r.path, r.headers.get("x-api-key") or r.headers.get("authorization", ""))
        for r in deployment.fake.calls()
    ]


def failing_anthropic(key="sk-fail-503-anthropic"):
    provider_set_key(provider=Provider.objects.get(type="anthropic"), raw_key=key, actor=None)


def test_a_5xx_goes_to_the_fallback_on_another_provider_and_the_row_says_both(deployment):
    failing_anthropic()
    with_fallbacks(deployment, model("aws-bedrock"))
    for stream in (False, True):
        deployment.fake.clear()
        answer = anthropic(deployment, stream=stream)
        assert answer.status_code == 200
        text = answer.text if stream else answer.json()["content"][0]["text"]
        assert "You said: hello" in text or "You" in text
        paths = [path for path, _ in reached(deployment)]
        assert paths[0] == "/v1/messages" and "anthropic.claude-fake-v1:0" in paths[1]
    rows = wait_for_usage(2)
    assert {(r.provider_type, r.model_identifier, r.fallback_from, r.status) for r in rows} == {
        ("aws-bedrock", "anthropic.claude-fake-v1:0", "anthropic/claude-fake", 200)
    }
    assert all(r.cost_usd and r.cost_usd > 0 for r in rows)


def test_an_open_breaker_sends_calls_to_the_fallback_without_asking_the_provider(deployment):
    anthropic_provider = Provider.objects.get(type="anthropic")
    Breaker.objects.create(
        provider=anthropic_provider,
        model_identifier="claude-fake",
        failures=10,
        window_started=timezone.now(),
        open_until=timezone.now() + timedelta(seconds=30),
    )
    with_fallbacks(deployment, model("aws-bedrock"))
    assert anthropic(deployment).status_code == 200
    assert all("/model/" in path for path, _ in reached(deployment))  # Bedrock's only


def test_the_first_usable_fallback_in_order_is_taken(deployment):
    failing_anthropic()
    backup, bedrock = model("anthropic"), model("aws-bedrock")
    second, _ = model_save(
        model=None,
        provider=Provider.objects.get(type="anthropic"),
        fields={
            "identifier": "claude-backup",
            "display_name": "Backup",
            "enabled": False,
            "context_limit": 1000,
        },
        options={},
        actor=None,
    )
    model_fallbacks_set(model=backup, fallbacks=[second, bedrock], actor=None)
    assert anthropic(deployment).status_code == 200  # the disabled one skipped
    assert [r.fallback_from for r in wait_for_usage(1)] == ["anthropic/claude-fake"]


def test_no_fallback_after_the_first_byte_of_a_stream(deployment):
    failing_anthropic("sk-reset-anthropic")
    with_fallbacks(deployment, model("aws-bedrock"))
    answer = anthropic(deployment, stream=True)
    assert answer.status_code == 200 and "event: error" in answer.text
    assert [path for path, _ in reached(deployment)] == ["/v1/messages"]
    [row] = wait_for_usage(1)
    assert row.error_kind == "stream_broken" and row.fallback_from == ""


def test_a_fallback_the_person_has_no_credential_for_is_skipped(deployment):
    failing_anthropic()
    provider_save(
        provider_type="aws-bedrock",
        actor=None,
        changes={"central_key_enabled": False, "central_key_fallback": False},
        api_key=None,
    )
    with_fallbacks(deployment, model("aws-bedrock"))
    answer = anthropic(deployment)
    assert answer.status_code == 503  # the provider's own answer, in its format
    assert answer.json()["type"] == "error"
    assert [path for path, _ in reached(deployment)] == ["/v1/messages"]


def test_a_caller_with_its_own_key_never_falls_back_to_a_central_key(deployment, save_user_key):
    with_fallbacks(deployment, model("aws-bedrock"))
    answer = anthropic(
        deployment,
        headers={
            "X-Coder-AI-Governance-Token": deployment.token.secret,
            "x-api-key": "sk-fail-503-my-own",
        },
    )
    assert answer.status_code == 503
    assert reached(deployment) == [("/v1/messages", "sk-fail-503-my-own")]


def test_a_fallback_whose_worst_case_passes_the_budget_hold_is_skipped(deployment):
    failing_anthropic()
    budget_set(
        scope="person",
        user=deployment.developer,
        period="month",
        limit_usd=Decimal("1000"),
        hard=True,
        actor=None,
    )
    bedrock = model("aws-bedrock")
    ModelConfig.objects.filter(pk=bedrock.pk).update(input_price=300, output_price=1500)
    with_fallbacks(deployment, bedrock)
    assert anthropic(deployment).status_code == 503
    assert [path for path, _ in reached(deployment)] == ["/v1/messages"]


def test_a_google_fallback_within_the_same_provider_rewrites_the_path(deployment):
    google = Provider.objects.get(type="google")
    backup, _ = model_save(
        model=None,
        provider=google,
        fields={"identifier": "gemini-backup", "display_name": "Backup", "context_limit": 1000},
        options={},
        actor=None,
    )
    Breaker.objects.create(
        provider=google,
        model_identifier="gemini-fake",
        window_started=timezone.now(),
        open_until=timezone.now() + timedelta(seconds=30),
    )
    with_fallbacks(deployment, backup, of=("google", "gemini-fake"))
    token = deployment.token.secret

    async def make():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/google/v1/models/gemini-fake:generateContent",
                json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                headers={"x-goog-api-key": token},
            )

    assert run(make).status_code == 200
    assert [path for path, _ in reached(deployment)] == [
        "/v1beta/models/gemini-backup:generateContent"
    ]


def test_fallbacks_speak_the_callers_format_and_are_audited(deployment):
    claude = model("anthropic")
    with pytest.raises(Exception, match="speaks another API"):
        model_fallbacks_set(model=claude, fallbacks=[model("openai")], actor=None)
    with pytest.raises(Exception, match="its own fallback"):
        model_fallbacks_set(model=claude, fallbacks=[claude], actor=None)
    model_fallbacks_set(model=claude, fallbacks=[model("aws-bedrock")], actor=None)
    entry = AuditEntry.objects.filter(changed_fields=["fallbacks"]).get()
    assert entry.changes == {"fallbacks": [[], ["aws-bedrock/anthropic.claude-fake-v1:0"]]}


def test_the_command_sets_and_clears_fallbacks(deployment):
    out = io.StringIO()
    call_command(
        "model_set",
        "anthropic",
        "claude-fake",
        "--fallback",
        "aws-bedrock/anthropic.claude-fake-v1:0",
        stdout=out,
    )
    assert "Fallbacks: aws-bedrock/anthropic.claude-fake-v1:0." in out.getvalue()
    assert [m.identifier for m in model("anthropic").fallbacks] == ["anthropic.claude-fake-v1:0"]
    with pytest.raises(CommandError, match="no model 'nope/x'"):
        call_command("model_set", "anthropic", "claude-fake", "--fallback", "nope/x")
    with pytest.raises(CommandError, match="speaks another API"):
        call_command("model_set", "anthropic", "claude-fake", "--fallback", "openai/fake-gpt")
    call_command("model_set", "anthropic", "claude-fake", "--no-fallbacks", stdout=out)
    assert model("anthropic").fallbacks == []


def test_the_model_form_offers_only_models_of_the_same_format(deployment, staff_client):
    claude = model("anthropic")
    page = staff_client.get(f"/admin/models/{claude.pk}/").content.decode()
    assert "First fallback" in page and "anthropic.claude-fake-v1:0" in page
    assert "fake-gpt" not in page.split("First fallback")[1]


def test_the_usage_tab_and_its_csv_say_which_key_and_which_fallback(deployment, staff_client):
    failing_anthropic()
    with_fallbacks(deployment, model("aws-bedrock"))
    assert anthropic(deployment).status_code == 200
    wait_for_usage(1)
    page = staff_client.get("/admin/usage/").content.decode()
    assert "fallback for anthropic/claude-fake" in page and "key primary" in page
    csv = b"".join(staff_client.get("/admin/usage/?format=csv").streaming_content).decode()
    header, row = csv.splitlines()[:2]
    assert "central key,fallback from" in header and "primary,anthropic/claude-fake" in row

"""Test connection and model discovery, against the local fake provider's real wire formats."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from fakeprovider.app import FakeProvider
from fakeprovider.server import running_fake_provider
from lib import outbound
from providers.models import Provider
from providers.probe import Outcome, check_connection, listing_url
from providers.registry import spec_for
from tests.servers import free_port, served_app, signed_in_client

pytestmark = pytest.mark.django_db

# Where each type's base URL points on the fake, and what its listing holds.
SETUPS = {
    "openai": ("/v1", ["fake-gpt", "fake-gpt-mini"]),
    "anthropic": ("", ["claude-fake-haiku"]),
    "google": ("/v1beta", ["gemini-fake-flash"]),
    "aws-bedrock": ("", ["anthropic.claude-fake-sonnet-v1:0"]),  # Anthropic's models only
    "azure-openai": ("/openai/v1", ["fake-gpt", "fake-gpt-mini"]),
    "openai-compatible": ("/v1", ["fake-gpt", "fake-gpt-mini"]),
    "openrouter": ("/api/v1", ["fake-gpt", "fake-gpt-mini"]),
    "vercel-ai-gateway": ("/v1", ["fake-gpt", "fake-gpt-mini"]),
}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeProvider, str]]:
    with running_fake_provider() as running:
        yield running


def probe(provider: Provider, key: str, **kwargs: Any) -> Any:
    async def main() -> Any:
        try:
            return await check_connection(provider, key, **kwargs)
        finally:
            await outbound.close_all()

    return asyncio.run(main())


def provider_at(url: str, provider_type: str = "openai", key: str = "sk-good-key") -> Provider:
    from providers.services import provider_save

    return provider_save(
        provider_type=provider_type,
        actor=None,
        changes={"base_url": url, "user_keys_allowed": True, "central_key_fallback": True},
        api_key=key,
    )


@pytest.mark.parametrize("provider_type", SETUPS)
def test_each_type_tests_with_one_cheap_authenticated_call(fake, provider_type):
    app, url = fake
    app.clear()
    path, listed = SETUPS[provider_type]
    provider = provider_at(url + path, provider_type)
    result = probe(provider, "sk-good-key")
    assert result.outcome is Outcome.WORKS and result.status == 200, result.message
    [call] = app.calls()
    assert call.method == "GET"
    auth = spec_for(provider_type).auth
    name = auth.name.lower()
    assert call.headers[name] == f"{auth.prefix}sk-good-key"
    expected = {"openrouter": "/api/v1/key", "vercel-ai-gateway": "/v1/credits"}
    if provider_type in expected:  # their model lists are public, so they prove nothing
        assert call.path == expected[provider_type]
    discovered = probe(provider, "sk-good-key", discover=True)
    assert [m.identifier for m in discovered.models] == listed
    assert f"{len(listed)} model" in discovered.message


def test_discovery_fills_names_context_and_prices_when_the_provider_gives_them(fake):
    _, url = fake
    result = probe(provider_at(url + "/api/v1", "openrouter"), "sk-good", discover=True)
    gpt = next(m for m in result.models if m.identifier == "fake-gpt")
    assert (gpt.display_name, gpt.context_limit) == ("Fake GPT", 128_000)
    assert (str(gpt.input_price), str(gpt.output_price)) == ("2.5", "10")
    # Cache prices too: without them a call that reads or writes the cache has no known cost.
    assert (str(gpt.cache_read_price), str(gpt.cache_write_price)) == ("0.25", "3.125")
    assert str(gpt.web_search_price) == "10"  # 0.01 a search: 10 per 1,000
    google = probe(provider_at(url + "/v1beta", "google"), "g-key", discover=True)
    assert google.models[0].context_limit == 1_000_000


def test_listing_urls_follow_each_api():
    assert listing_url(spec_for("anthropic"), "https://api.anthropic.com") == (
        "https://api.anthropic.com/v1/models?limit=1000"
    )
    assert listing_url(
        spec_for("aws-bedrock"), "https://bedrock-runtime.eu-west-1.amazonaws.com"
    ) == ("https://bedrock.eu-west-1.amazonaws.com/foundation-models")
    assert (
        listing_url(
            spec_for("azure-openai"), "https://res.openai.azure.com/openai/deployments/gpt-4o"
        )
        == "https://res.openai.azure.com/openai/models?api-version=2024-10-21"
    )


def test_a_refused_key_is_reported_without_the_key(fake):
    _, url = fake
    provider = provider_at(url + "/v1")
    refused = probe(provider, "sk-invalid-key-0000")
    assert refused.outcome is Outcome.REJECTED and refused.status == 401
    assert "refused the key (HTTP 401): Invalid API key." in refused.message
    quoted = probe(provider, "sk-echo-CANARY-secret-9876")
    assert quoted.outcome is Outcome.REJECTED
    assert "CANARY" not in quoted.message and "9876" not in quoted.message
    assert "********" in quoted.message


@pytest.mark.parametrize("how", ["escaped", "header", "body"])
@pytest.mark.parametrize("discover", [False, True])
def test_a_key_quoted_back_in_any_form_is_in_no_message_or_discovered_model(fake, how, discover):
    _, url = fake
    key = f"sk-echo-{how}-CANARY-secret-9876"
    result = probe(provider_at(url + "/v1"), key, discover=discover)
    seen = repr(result)
    assert "CANARY" not in seen and "9876" not in seen
    assert "\\u0043\\u0041\\u004e" not in seen.lower()  # nor escaped ("CAN")
    if how == "escaped":
        assert result.outcome is Outcome.REJECTED and "********" in result.message
    if how == "body" and discover:
        assert "echo-********" in [model.identifier for model in result.models]


def test_a_provider_error_gives_its_status_and_message(fake):
    _, url = fake
    result = probe(provider_at(url + "/v1"), "sk-fail-503-key")
    assert result.outcome is Outcome.FAILED and result.status == 503
    assert "answered HTTP 503: The fake provider answers 503 as asked." in result.message


def test_an_unreachable_endpoint_is_said_in_words(db):
    result = probe(provider_at(f"http://127.0.0.1:{free_port()}/v1"), "sk-good")
    assert result.outcome is Outcome.UNREACHABLE
    assert "Could not reach 127.0.0.1:" in result.message and "refused" in result.message


@override_settings(PROVIDER_TEST_TIMEOUT=0.5)
def test_a_hanging_provider_times_out_at_the_bound(fake):
    _, url = fake
    started = time.monotonic()
    result = probe(provider_at(url + "/v1"), "sk-hang-forever")
    assert time.monotonic() - started < 2
    assert result.outcome is Outcome.TIMED_OUT
    assert result.message == "OpenAI did not answer within 0.5 s."


def test_metadata_addresses_are_never_called(db):
    result = probe(provider_at("http://127.0.0.1:1/v1"), "k")
    assert result.outcome is Outcome.UNREACHABLE
    from providers.models import Provider as P

    bad = P(type="openai", base_url="http://169.254.169.254/v1")
    refused = probe(bad, "sk-key")
    assert refused.outcome is Outcome.UNREACHABLE and "metadata address" in refused.message


def test_the_setting_is_capped_at_five_seconds(monkeypatch):
    import importlib

    import config.settings.base as base

    monkeypatch.setenv("PROVIDER_TEST_TIMEOUT", "60")
    assert importlib.reload(base).PROVIDER_TEST_TIMEOUT == 5.0
    monkeypatch.delenv("PROVIDER_TEST_TIMEOUT")
    importlib.reload(base)


# -- the pages ------------------------------------------------------------------------------


def test_the_admin_tests_the_central_key_from_the_card(fake, staff_client):
    _, url = fake
    provider_at(url + "/v1", key="sk-central-CANARY-4242")
    response = staff_client.post(
        reverse("providers:test", args=["openai"]), headers={"HX-Request": "true"}
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<li class="card" id="provider-openai">')
    assert 'data-testid="test-result"' in content and "Works." in content
    assert "CANARY" not in content
    # Without JavaScript, the whole tab with the result on the card.
    assert b"Works." in staff_client.post(reverse("providers:test", args=["openai"])).content


def test_the_connection_test_tests_every_central_key_and_names_the_failing_ones(fake, staff_client):
    from providers.services import provider_key_add

    received, url = fake
    received.clear()
    provider = provider_at(url + "/v1", key="sk-first-CANARY-1")
    provider_key_add(provider=provider, label="backup", raw_key="sk-invalid-CANARY-2", actor=None)
    provider_key_add(provider=provider, label="third", raw_key="sk-third-CANARY-3", actor=None)
    content = staff_client.post(
        reverse("providers:test", args=["openai"]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "2 of 3 central keys work." in content and "backup:" in content
    assert "<strong>third</strong>: Works" in content
    assert "CANARY" not in content
    assert len(received.calls()) == 3


def test_testing_without_a_central_key_says_there_is_nothing_to_test(staff_client, make_provider):
    make_provider("openai", api_key=None)
    content = staff_client.post(reverse("providers:test", args=["openai"])).content.decode()
    assert "No usable central key is stored" in content


def test_testing_is_for_admins(fake, developer_client):
    assert developer_client.post(reverse("providers:test", args=["openai"])).status_code == 403


def test_testing_needs_a_configured_provider_and_a_post(fake, staff_client):
    assert staff_client.post(reverse("providers:test", args=["openai"])).status_code == 404
    assert staff_client.post(reverse("providers:test", args=["nope"])).status_code == 404
    assert staff_client.get(reverse("providers:test", args=["openai"])).status_code == 405


def test_a_developer_tests_their_own_key(fake, developer_client, developer, save_user_key):
    _, url = fake
    provider = provider_at(url + "/v1", key="sk-central-key")
    url_test = reverse("userkeys:test", args=["openai"])
    nothing = developer_client.post(url_test, headers={"HX-Request": "true"}).content.decode()
    assert "You have no saved key that can be tested" in nothing
    save_user_key(developer, provider, "sk-invalid-personal-CANARY")
    content = developer_client.post(url_test, headers={"HX-Request": "true"}).content.decode()
    assert content.lstrip().startswith('<li class="card" id="key-openai">')
    assert "Key rejected." in content and "CANARY" not in content
    assert developer_client.post(reverse("userkeys:test", args=["google"])).status_code == 404


# -- over a real server ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hanging_provider_times_out_while_other_pages_are_served(fake, admin_user):
    """One worker process: the test waits on the provider without holding up the next page."""
    _, url = fake
    provider_at(url + "/v1", key="sk-hang-CANARY-1234")
    bound = 2.0
    with served_app(workers=1, PROVIDER_TEST_TIMEOUT=str(bound)) as base:
        client = signed_in_client(base, admin_user)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            testing = pool.submit(
                client.post,
                reverse("providers:test", args=["openai"]),
                headers={"HX-Request": "true"},
            )
            time.sleep(0.3)  # the test call is now waiting on the provider
            assert not testing.done()
            page = client.get(reverse("models:list"))
            served_after = time.monotonic() - started
            response = testing.result(timeout=bound + 5)
            took = time.monotonic() - started
    assert page.status_code == 200 and served_after < bound
    assert response.status_code == 200
    assert "Timed out." in response.text and "CANARY" not in response.text
    assert bound <= took < bound + 2, took


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (outbound.ConnectError("h", ssl.SSLCertVerificationError()), "TLS certificate"),
        (outbound.ConnectError("h", ConnectionRefusedError()), "connection refused"),
        (outbound.ConnectError("h", socket.gaierror()), "the name does not resolve"),
        (outbound.ConnectError("h", OSError()), "connection failed"),
        (
            outbound.ConnectError("h", outbound.ProxyRefused(407), through_proxy=True),
            "through the outbound proxy: the proxy answered 407 to CONNECT",
        ),
        (
            outbound.ConnectError("h", ConnectionRefusedError(), through_proxy=True),
            "through the outbound proxy: connection refused",
        ),
        (outbound.ServerDisconnected(), "closed before an answer"),
        (outbound.ProtocolError(), "not HTTP"),
        (ValueError("a header holds characters HTTP cannot carry"), "cannot be sent"),
    ],
)
def test_each_way_a_connection_fails_is_said_in_words(error, words):
    from providers.probe import _reason

    assert words in _reason(error)

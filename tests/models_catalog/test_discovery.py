"""Discover models: list what a provider offers (the local fake) and add several at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from fakeprovider.app import FakeProvider
from fakeprovider.server import running_fake_provider
from models_catalog.models import ModelConfig
from providers.models import Provider
from providers.services import provider_save

pytestmark = pytest.mark.django_db

CANARY = "sk-central-DISCOVERY-CANARY-77"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeProvider, str]]:
    with running_fake_provider() as running:
        yield running


@pytest.fixture
def openai(fake: tuple[FakeProvider, str]) -> Provider:
    _, url = fake
    return provider_save(
        provider_type="openai", actor=None, changes={"base_url": url + "/v1"}, api_key=CANARY
    )


def signed_list(content: str) -> str:
    match = re.search(r'name="discovered" value="([^"]+)"', content)
    assert match, "the page carries the signed list"
    return match.group(1)


def test_discovery_lists_the_providers_models_with_names_filled_in(staff_client, openai):
    response = staff_client.get(reverse("models:discover", args=["openai"]))
    content = response.content.decode()
    assert response.status_code == 200
    assert '<code class="wrap">fake-gpt</code>' in content
    assert '<code class="wrap">fake-gpt-mini</code>' in content
    assert 'value="Fake GPT"' in content  # the listing's own name
    assert 'value="fake-gpt-mini"' in content  # listed without a name: its identifier
    assert CANARY not in content


def test_models_already_added_are_not_offered_again(staff_client, openai, make_model):
    make_model("fake-gpt", provider_type="openai")
    content = staff_client.get(reverse("models:discover", args=["openai"])).content.decode()
    assert content.count('type="checkbox"') == 1
    assert 'aria-label="Add fake-gpt-mini"' in content or "Add fake-gpt-mini</label>" in content
    assert "1 already added" in content


def test_several_models_are_added_at_once_with_their_identifiers(staff_client, openai, admin_user):
    content = staff_client.get(reverse("models:discover", args=["openai"])).content.decode()
    data = {
        "discovered": signed_list(content),
        "m0-add": "on",
        "m0-display_name": "GPT (fake)",
        "m0-context_limit": "128000",
        "m1-add": "on",
        "m1-display_name": "GPT mini (fake)",
        "m1-context_limit": "64000",
    }
    response = staff_client.post(reverse("models:discover-add", args=["openai"]), data)
    assert response.status_code == 302 and response.url == reverse("models:list")
    added = {m.identifier: m for m in ModelConfig.objects.filter(provider=openai)}
    assert set(added) == {"fake-gpt", "fake-gpt-mini"}
    assert added["fake-gpt-mini"].display_name == "GPT mini (fake)"
    assert added["fake-gpt-mini"].context_limit == 64000
    assert added["fake-gpt"].input_price == Decimal("2.5")  # the listing's price per million
    assert added["fake-gpt"].cache_read_price == Decimal("0.25")
    assert added["fake-gpt"].cache_write_price == Decimal("3.125")
    assert added["fake-gpt"].web_search_price == Decimal(10)  # 0.01 a search, per 1,000
    assert (
        AuditEntry.objects.filter(
            action=AuditAction.CREATE, object_type="models_catalog.modelconfig"
        ).count()
        == 2
    )
    page = staff_client.get(reverse("models:list")).content.decode()
    assert "Added 2 OpenAI models: GPT (fake), GPT mini (fake)." in page


def test_a_bad_row_adds_nothing_and_keeps_what_was_typed(staff_client, openai):
    content = staff_client.get(reverse("models:discover", args=["openai"])).content.decode()
    data = {
        "discovered": signed_list(content),
        "m0-add": "on",
        "m0-display_name": "   ",
        "m0-context_limit": "128000",
        "m1-add": "on",
        "m1-display_name": "Mini typed by hand",
        "m1-context_limit": "99999999999999999999",
    }
    response = staff_client.post(reverse("models:discover-add", args=["openai"]), data)
    content = response.content.decode()
    assert response.status_code == 422
    assert "Enter a context limit below 2,147,483,648 tokens." in content
    assert "9223372036854775807" not in content
    assert 'value="Mini typed by hand"' in content
    assert 'aria-invalid="true"' in content
    # Two problems: a summary at the top links to each field.
    assert "2 problems to fix before saving" in content
    assert content.count('<a href="#id_m') == 2
    assert not ModelConfig.objects.exists()


def test_choosing_nothing_says_so(staff_client, openai):
    content = staff_client.get(reverse("models:discover", args=["openai"])).content.decode()
    response = staff_client.post(
        reverse("models:discover-add", args=["openai"]), {"discovered": signed_list(content)}
    )
    assert response.status_code == 422
    assert "Choose at least one model to add." in response.content.decode()


def test_a_list_that_was_not_signed_here_is_refused(staff_client, openai):
    response = staff_client.post(
        reverse("models:discover-add", args=["openai"]),
        {"discovered": "forged", "m0-add": "on", "m0-display_name": "X", "m0-context_limit": "1"},
    )
    assert response.status_code == 302
    assert response.url == reverse("models:discover", args=["openai"])
    assert not ModelConfig.objects.exists()


@pytest.mark.parametrize(
    "row",
    [
        ["fake-gpt", "Fake GPT", 128_000, "2.5", "10"],  # before cache prices
        ["fake-gpt", "Fake GPT", 128_000, "2.5", "10", "0.25", "3.125"],  # before search
    ],
)
def test_a_list_signed_before_an_upgrade_still_adds_its_models(staff_client, openai, row):
    """A discovery page left open across an upgrade posts the older, shorter rows."""
    from django.core import signing

    from models_catalog.discovery import SIGNING_SALT

    older = signing.dumps([row], salt=SIGNING_SALT, compress=True)
    response = staff_client.post(
        reverse("models:discover-add", args=["openai"]),
        {"discovered": older, "m0-add": "on", "m0-display_name": "GPT", "m0-context_limit": "9"},
    )
    assert response.status_code == 302
    model = ModelConfig.objects.get()
    assert (model.input_price, model.output_price) == (Decimal("2.5"), Decimal(10))
    cache = (model.cache_read_price, model.cache_write_price)
    assert cache == ((None, None) if len(row) == 5 else (Decimal("0.25"), Decimal("3.125")))
    assert model.web_search_price is None


def test_without_a_central_key_discovery_says_what_to_do(staff_client, make_provider):
    make_provider("anthropic", api_key=None)
    content = staff_client.get(reverse("models:discover", args=["anthropic"])).content.decode()
    assert "has no usable central key" in content
    assert "Add models by hand" in content


def test_a_refused_key_is_reported_in_place(staff_client, fake):
    _, url = fake
    provider_save(
        provider_type="openai",
        actor=None,
        changes={"base_url": url + "/v1"},
        api_key="sk-invalid-DISCOVERY-CANARY",
    )
    content = staff_client.get(reverse("models:discover", args=["openai"])).content.decode()
    assert "Key rejected." in content and "CANARY" not in content
    assert 'name="discovered"' not in content


def test_discovery_is_for_admins_and_configured_providers(staff_client, developer_client, openai):
    assert developer_client.get(reverse("models:discover", args=["openai"])).status_code == 403
    assert developer_client.post(reverse("models:discover-add", args=["openai"])).status_code == 403


def test_discovery_needs_a_configured_provider(staff_client):
    assert staff_client.get(reverse("models:discover", args=["google"])).status_code == 404
    assert staff_client.get(reverse("models:discover", args=["nope"])).status_code == 404
    assert staff_client.post(reverse("models:discover-add", args=["nope"])).status_code == 404

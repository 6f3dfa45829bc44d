"""The Admin dialog as a new admin meets it: feedback on every action (failures included),
focus and announcements after updates, the policy explained live, test connection, model
discovery, view as a user and the first-run checklist. Screenshots at 1280 and 390 wide."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from fakeprovider.server import running_fake_provider
from models_catalog.models import ModelConfig
from models_catalog.services import model_save, model_set_default
from providers.models import Provider
from providers.services import provider_save

from .accessibility import blocking_violations
from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANARY = "sk-ant-FEEDBACK-canary-7d1e"
NOT_ANSWERED = "Could not save: the server did not answer. Your changes were not saved."
SERVER_ERROR = (
    "Could not save: the server hit an error (500). Try again in a moment. "
    "Your changes were not saved."
)


@pytest.fixture
def fake() -> Iterator[str]:
    with running_fake_provider() as (_, url):
        yield url


@pytest.fixture
def both_widths(page: Any, screenshot: Callable[..., Path]) -> Callable[[str], None]:
    """Screenshots of the page as it is, at 1280 and at 390 wide (then back to 1280)."""

    def take(name: str) -> None:
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(f"{name}-1280")
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(f"{name}-390")
        page.set_viewport_size({"width": 1280, "height": 900})

    return take


def on_the_fake(fake: str, provider_type: str, key: str) -> Provider:
    """A provider of an OpenAI-format type whose base URL is the local fake provider."""
    return provider_save(
        provider_type=provider_type, actor=None, changes={"base_url": fake + "/v1"}, api_key=key
    )


def focused(page: Any) -> str:
    """What has the keyboard focus: its tag, text and a few attributes."""
    return str(
        page.evaluate(
            """() => {
              const el = document.activeElement;
              return [el.tagName, el.getAttribute("role") || "", el.textContent.trim()].join(" | ");
            }"""
        )
    )


def announced(page: Any) -> str:
    page.wait_for_function("() => document.getElementById('announcer').textContent.length > 0")
    return str(page.locator("#announcer").text_content())


def test_saving_a_provider_says_what_went_wrong_and_keeps_what_was_typed(
    page, admin_user, both_widths
):
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-anthropic")
    card.get_by_role("link", name="Configure Anthropic").click()
    card.locator("input[name=base_url]").fill("https://proxy.example.com")
    card.locator("input[name=api_key]").fill(CANARY)
    save = card.get_by_role("button", name="Save Anthropic")

    # A server error: a message in place, focused; the form is still there as typed.
    # htmx logs failed requests to the console, as the browser does.
    page.expected_console_errors = [
        "Failed to load resource",
        "Response Status Error Code 500",
        "htmx:sendError",
        "htmx:afterRequest",
    ]
    page.route("**/admin/providers/anthropic/", lambda route: route.fulfill(status=500))
    save.click()
    problem = page.locator("[data-request-problem]")
    problem.wait_for()
    assert problem.inner_text() == SERVER_ERROR
    assert "alert" in focused(page) and "server hit an error" in focused(page)
    assert card.locator("input[name=base_url]").input_value() == "https://proxy.example.com"
    assert save.is_enabled() and save.inner_text().startswith("Save")
    both_widths("1-server-error")

    # The network drops: said in words, nothing lost.
    page.unroute("**/admin/providers/anthropic/")
    page.route("**/admin/providers/anthropic/", lambda route: route.abort("connectionreset"))
    save.click()
    page.get_by_text(NOT_ANSWERED).wait_for()
    assert page.locator("[data-request-problem]").count() == 1  # replaced, not stacked
    assert card.locator("input[name=api_key]").input_value() == CANARY
    both_widths("2-network-failure")
    assert not Provider.objects.exists()

    # A slow save: the button is disabled and says what it is doing.
    page.unroute("**/admin/providers/anthropic/")
    page.route(
        "**/admin/providers/anthropic/",
        lambda route: (page.wait_for_timeout(600), route.continue_()),
    )
    save.click()
    busy = card.locator("button.busy")
    busy.wait_for()
    assert busy.is_disabled() and busy.inner_text() == "Saving…"
    assert busy.get_attribute("aria-disabled") == "true"
    card.get_by_text("Anthropic saved.").wait_for()
    page.unroute("**/admin/providers/anthropic/")

    # Saved: the problem is gone, focus is on the card's heading, success is announced.
    assert page.locator("[data-request-problem]").count() == 0
    assert focused(page).startswith("H2 |  | Anthropic")
    assert "Anthropic saved." in announced(page)
    assert CANARY not in page.content()
    both_widths("3-saved")
    assert Provider.objects.get().base_url == "https://proxy.example.com"


def test_a_refused_save_focuses_the_summary_linking_to_each_field(page, admin_user, both_widths):
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-openai-compatible")
    card.get_by_role("link", name="Configure OpenAI Compatible").click()
    card.locator("input[name=base_url]").fill("ftp://nowhere")
    card.get_by_role("checkbox", name="Central API key").uncheck()
    card.get_by_role("button", name="Save OpenAI Compatible").click()
    summary = card.locator("[data-error-summary]")
    summary.wait_for()
    assert "problems to fix before saving" in summary.inner_text()
    # Focus moves once htmx has settled the swap (a moment after the summary appears).
    page.wait_for_function("() => document.activeElement.hasAttribute('data-error-summary')")
    base_url = card.locator("input[name=base_url]")
    assert base_url.get_attribute("aria-invalid") == "true"
    red, green, _ = map(
        int, base_url.evaluate("el => getComputedStyle(el).borderColor")[4:-1].split(",")
    )
    assert red > 150 and green < 80, "an invalid field has a red border"
    summary.get_by_role("link", name="Base URL").click()
    assert page.evaluate("() => document.activeElement.name") == "base_url"
    both_widths("summary")
    assert blocking_violations(page) == []


def test_the_policy_is_explained_as_the_boxes_change_without_a_round_trip(
    page, admin_user, both_widths
):
    provider_save(provider_type="anthropic", actor=None, changes={}, api_key="sk-ant-stored")
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-anthropic")
    assert "Everyone uses the shared central key" in card.get_by_test_id("policy").inner_text()
    card.get_by_role("link", name="Edit Anthropic").click()
    central = card.get_by_role("checkbox", name="Central API key")
    user = card.get_by_role("checkbox", name="Allow user API keys")
    fallback = card.get_by_role("checkbox", name="Central key as fallback")
    summary = card.locator("[data-policy-summary]")
    unused = card.locator("[data-policy-unused]")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    expect(fallback).to_be_disabled()
    user.check()
    expect(fallback).to_be_enabled()
    fallback.check()
    assert summary.inner_text().startswith(
        "Developers use their own key, or the shared central key"
    )
    central.uncheck()
    expect(fallback).to_be_disabled()
    expect(fallback).not_to_be_checked()
    assert summary.inner_text().startswith("Developers must bring their own key")
    assert unused.is_visible() and "central key is stored but not used" in unused.inner_text()
    both_widths("byok-only")
    user.uncheck()
    assert "error-text" in (summary.get_attribute("class") or "")
    assert requests == [], "explained in the page, without asking the server"


def test_test_connection_shows_the_result_on_the_card(page, admin_user, fake, both_widths):
    on_the_fake(fake, "openai-compatible", "sk-fake-central")
    on_the_fake(fake, "openai", "sk-invalid-central")
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-openai-compatible")
    card.get_by_role("button", name="Test connection to OpenAI Compatible").click()
    result = card.get_by_test_id("test-result")
    result.wait_for()
    assert result.inner_text().startswith("Works.")
    assert "Works." in announced(page)
    refused = page.locator("#provider-openai")
    refused.get_by_role("button", name="Test connection to OpenAI").click()
    refused.get_by_test_id("test-result").wait_for()
    assert refused.get_by_test_id("test-result").inner_text().startswith("Key rejected.")
    assert "HTTP 401" in refused.get_by_test_id("test-result").inner_text()
    both_widths("results")

    # The network drops during a test: said in place, with nothing about unsaved changes.
    page.expected_console_errors = ["Failed to load resource", "htmx:"]
    page.route("**/test/", lambda route: route.abort("connectionreset"))
    card.get_by_role("button", name="Test connection to OpenAI Compatible").click()
    problem = card.locator("[data-request-problem]")
    problem.wait_for()
    assert problem.inner_text() == "Could not test the connection: the server did not answer."


def test_discover_models_and_add_two_at_once(page, admin_user, fake, both_widths):
    on_the_fake(fake, "openai-compatible", "sk-fake-central")
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    page.get_by_role("link", name="Discover models of OpenAI Compatible").click()
    page.get_by_role("heading", name="Discover OpenAI Compatible models").wait_for()
    both_widths("1-listed")
    assert blocking_violations(page) == []
    page.get_by_role("checkbox", name="Add fake-gpt", exact=True).check()
    page.get_by_role("checkbox", name="Add fake-gpt-mini").check()
    page.get_by_role("textbox", name="Display name for fake-gpt-mini").fill("GPT mini (fake)")
    page.get_by_role("button", name="Add selected models").click()
    page.get_by_text("Added 2 OpenAI Compatible models").wait_for()
    both_widths("2-added")
    assert set(ModelConfig.objects.values_list("identifier", flat=True)) == {
        "fake-gpt",
        "fake-gpt-mini",
    }


def test_view_as_a_developer_and_the_star_warning(page, admin_user, developer, both_widths):
    byok = provider_save(
        provider_type="anthropic",
        actor=None,
        changes={"central_key_enabled": False, "user_keys_allowed": True},
        api_key="sk-ant-unused",
    )
    model, _ = model_save(
        model=None,
        provider=byok,
        options={},
        actor=None,
        fields={"identifier": "claude-opus-4-6", "display_name": "Claude Opus", "context_limit": 1},
    )
    model_set_default(model=model, actor=None)
    sign_in(page, "alice")
    page.goto("/admin/models/")
    warning = page.get_by_test_id("star-warnings")
    assert "Nobody can use the default model Claude Opus now" in warning.inner_text()
    page.get_by_label("Username or email").fill("dev")
    page.get_by_role("button", name="Show").click()
    result = page.get_by_test_id("view-as-result")
    result.wait_for()
    assert "Anthropic: unavailable" in result.inner_text()
    both_widths("view-as")


def test_a_first_admin_lands_on_the_setup_checklist(page, admin_user, both_widths):
    sign_in(page, "alice")
    page.goto("/")
    checklist = page.get_by_test_id("setup-checklist")
    assert "(0 of 4 done)" in checklist.inner_text()
    assert "contact an administrator" not in page.content().lower()
    both_widths("checklist")
    checklist.get_by_role("link", name="Open Providers").click()
    page.wait_for_url("**/admin/providers/")

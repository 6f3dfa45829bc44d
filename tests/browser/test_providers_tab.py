import pytest

from providers.models import Provider

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANARY = "sk-ant-BROWSER-canary-31c4"


def test_an_admin_configures_anthropic_and_never_sees_the_key_again(page, admin_user, screenshot):
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-anthropic")
    assert card.locator(".badge").inner_text() == "Not configured"

    card.get_by_role("link", name="Configure").click()
    card.locator("input[name=api_key]").wait_for()
    assert page.url.endswith("/admin/providers/")  # swapped in place by htmx
    card.locator("input[name=api_key]").fill(CANARY)
    card.locator("input[name=base_url]").fill("ftp://wrong")
    card.get_by_role("button", name="Save").click()
    card.get_by_text("must start with http:// or https://").wait_for()
    assert card.locator("input[name=base_url]").input_value() == "ftp://wrong"
    assert card.locator("input[name=api_key]").input_value() == ""
    screenshot("1-error-next-to-field")

    card.locator("input[name=api_key]").fill(CANARY)
    card.locator("input[name=base_url]").fill("https://anthropic-proxy.example.com")
    card.get_by_role("button", name="Save").click()
    card.get_by_text("Saved.").wait_for()
    assert card.locator(".badge").inner_text() == "Configured"
    assert card.get_by_test_id("key-state").inner_text() == "set"
    screenshot("2-configured")

    card.get_by_role("link", name="Edit").click()
    card.locator("input[name=api_key]").wait_for()
    assert card.locator("input[name=api_key]").input_value() == ""
    assert card.get_by_test_id("key-state").inner_text() == "set"
    assert CANARY not in page.content()
    page.reload()
    assert CANARY not in page.content()
    screenshot("3-reopened")

    provider = Provider.objects.get()
    assert provider.api_key.reveal() == CANARY
    assert provider.base_url == "https://anthropic-proxy.example.com"


def test_a_developer_is_refused_the_admin_dialog(page, developer, screenshot):
    sign_in(page, "dev")
    response = page.goto("/admin/providers/")
    assert response.status == 403
    assert page.get_by_text("have access to this page").is_visible()

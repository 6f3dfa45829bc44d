import pytest

from providers.models import Provider

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANARY = "sk-ant-BROWSER-canary-31c4"


def test_an_admin_configures_anthropic_and_never_sees_the_key_again(page, admin_user, screenshot):
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-anthropic")
    assert card.locator(".card-head .badge").inner_text() == "Not configured"

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
    assert card.locator(".card-head .badge").inner_text() == "Configured"
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


def test_an_admin_adds_a_second_key_sees_its_state_and_removes_it(
    page, admin_user, make_provider, screenshot
):
    from datetime import timedelta

    from django.utils import timezone

    from providers.models import ProviderKey

    make_provider("openai")
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-openai")
    card.get_by_role("link", name="Add a key").click()
    card.locator("input[name=key_label]").fill("team b|")
    card.locator("input[name=api_key]").fill(CANARY)
    card.get_by_role("button", name="Add key").click()
    card.get_by_text("A label is 1 to 40").wait_for()
    assert card.locator("input[name=api_key]").input_value() == ""
    card.locator("input[name=key_label]").fill("team-b")
    card.locator("input[name=api_key]").fill(CANARY)
    card.get_by_role("button", name="Add key").click()
    card.get_by_text("Key 'team-b' added.").wait_for()
    rows = card.get_by_test_id("central-keys").locator("tbody tr")
    assert rows.count() == 2
    assert CANARY not in page.content()

    ProviderKey.objects.update(
        key_cooling_until=timezone.now() + timedelta(seconds=40),
        key_last_error="rate-limited (429); resting until 03:04:05 UTC",
        key_last_error_at=timezone.now(),
    )
    page.reload()
    row = card.locator('tr[data-key="team-b"]')
    assert row.get_by_test_id("key-health").inner_text() == "Cooling down"
    assert "rate-limited (429)" in row.inner_text()
    screenshot("keys-cooling-down")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("keys-at-390")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove key team-b").click()
    card.get_by_text("Key 'team-b' removed.").wait_for()
    assert card.get_by_test_id("central-keys").locator("tbody tr").count() == 1
    assert not ProviderKey.objects.exists()

import pytest

from tokens.models import ApiToken, TokenKind
from tokens.services import authenticate_token

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_token_see_it_once_copy_it_and_revoke_it(
    browser, live_server, developer, screenshot
):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    sign_in(page, "dev")
    page.goto("/settings/tokens/")
    assert "No API tokens yet" in page.content()
    screenshot("1-empty", of=page)

    page.get_by_label("Token name").fill("Claude Code on my laptop")
    page.get_by_label("Expires after").select_option("90")
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_test_id("new-token-value")
    shown.wait_for()
    secret = shown.input_value()
    assert authenticate_token(secret).user == developer
    screenshot("2-shown-once", of=page)

    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.reload()
    assert secret not in page.content()
    assert "Claude Code on my laptop" in page.content()
    row = page.locator("table.tokens tr", has_text="Claude Code on my laptop")
    assert "Active" in row.inner_text()
    screenshot("3-listed", of=page)

    row.get_by_role("link", name="Revoke Claude Code on my laptop").click()
    page.get_by_role("button", name="Revoke Claude Code on my laptop").click()
    page.get_by_text("Anything using it is refused from now on.").wait_for()
    assert "Revoked" in page.locator("table.tokens tr", has_text="Claude Code").inner_text()
    assert authenticate_token(secret) is None
    assert ApiToken.objects.filter(kind=TokenKind.SESSION, user=developer).exists()
    screenshot("4-revoked", of=page)
    context.close()

"""A first run, walked in the browser as a newcomer would, on the ASGI server: the admin
configures the fake provider, adds a model and stars it, invites a developer; the developer
joins and chats, and the reply streams in. Screenshots of each step in test-results/."""

import pytest

from fakeprovider.server import running_fake_provider

from .conftest import sign_in
from .test_chats import content_lengths_until_done

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def streaming_fake():
    with running_fake_provider(chunk_delay=0.1) as running:
        yield running


def test_a_first_run_from_the_empty_admin_to_a_streamed_reply(
    browser, asgi_server, asgi_page, admin_user, streaming_fake, screenshot
):
    _, fake_url = streaming_fake
    page = asgi_page
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    page.get_by_text("Set up the control plane").wait_for()
    screenshot("1-empty-admin", of=page)

    card = page.locator("#provider-openai-compatible")
    card.get_by_role("link", name="Configure").click()
    card.locator("input[name=api_key]").fill("sk-walk-fake-key")
    card.locator("input[name=base_url]").fill(fake_url + "/v1")
    card.get_by_role("button", name="Save").click()
    card.get_by_text("OpenAI Compatible saved.").wait_for()
    screenshot("2-provider-configured", of=page)

    page.goto("/admin/models/")
    page.get_by_role("link", name="Add model").click()
    page.select_option("select[name=provider]", label="OpenAI Compatible")
    page.locator("input[name=identifier]").fill("fake-gpt")
    page.locator("input[name=display_name]").fill("Fake GPT")
    page.locator("input[name=context_limit]").fill("128000")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Fake GPT saved.").wait_for()
    page.get_by_role("button", name="Make Fake GPT the default").click()
    page.get_by_role("button", name="Fake GPT is the default model").wait_for()
    screenshot("3-model-starred", of=page)

    page.goto("/admin/people/")
    page.get_by_label("E-mail address").fill("newdev@example.com")
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_test_id("invite-link").input_value()
    screenshot("4-invited", of=page)

    context = browser.new_context(base_url=asgi_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    newcomer = context.new_page()
    newcomer.goto(link)
    newcomer.get_by_label("Password", exact=True).fill("a-long-new-password-42")
    newcomer.get_by_label("Password again").fill("a-long-new-password-42")
    newcomer.get_by_role("button", name="Create account and sign in").click()
    newcomer.wait_for_url("**/agents/")
    assert newcomer.locator("#model-selector option:checked").inner_text().startswith("Fake GPT")
    newcomer.get_by_label("Message").fill("Hello, show me a reply that streams in")
    newcomer.get_by_role("button", name="Send").click()
    newcomer.wait_for_url("**/agents/chats/*/")
    reply = newcomer.locator("article.role-assistant").first
    reply.wait_for()
    lengths = content_lengths_until_done(newcomer, reply)
    assert len([n for n in lengths if n > 0]) > 1, lengths  # painted as it arrived
    assert reply.get_attribute("data-status") == "done"
    assert reply.locator(".content").inner_text().startswith("You said: Hello")
    screenshot("5-developer-reply-streamed", of=newcomer)
    context.close()

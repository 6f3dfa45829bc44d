import time

import pytest

from chats.models import Chat
from fakeprovider.server import running_fake_provider
from models_catalog.services import model_save, model_set_default
from providers.services import provider_save

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slow_fake():
    with running_fake_provider(chunk_delay=0.12) as running:
        yield running


def content_lengths_until_done(page, article, timeout=15):
    """The reply's length at every repaint we catch, until it stops being written."""
    lengths: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = article.locator(".content").inner_text()
        if not lengths or lengths[-1] != len(text):
            lengths.append(len(text))
        if article.get_attribute("data-status") in ("done", "stopped", "failed"):
            break
        page.wait_for_timeout(30)
    return lengths


def test_a_developer_chats_with_streamed_replies_a_queue_stop_and_a_title(
    asgi_page, developer, slow_fake, screenshot
):
    page = asgi_page
    _, url = slow_fake
    provider = provider_save(
        provider_type="openai-compatible",
        actor=None,
        changes={"base_url": url + "/v1"},
        api_key="sk-fake",
    )
    fields = {"context_limit": 128_000}
    big, _ = model_save(
        model=None,
        provider=provider,
        options={},
        actor=None,
        fields={"identifier": "fake-gpt", "display_name": "Fake GPT", **fields},
    )
    mini, _ = model_save(
        model=None,
        provider=provider,
        options={},
        actor=None,
        fields={"identifier": "fake-mini", "display_name": "Fake Mini", **fields},
    )
    model_set_default(model=big, actor=None)

    sign_in(page, "dev")
    page.goto("/agents/")
    selector = page.locator("#model-selector")
    assert selector.input_value() == str(big.pk)  # the admin default
    selector.select_option(str(mini.pk))
    page.get_by_label("Message").fill("Hello there, please stream this answer to me slowly")
    screenshot("1-new-chat", of=page)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/agents/chats/*/")

    first = page.locator("article.role-assistant").first
    first.wait_for()
    lengths = content_lengths_until_done(page, first)
    assert len([n for n in lengths if n > 0]) > 1, lengths  # painted more than once
    assert first.locator(".content").inner_text().startswith("You said: Hello there")
    screenshot("2-streamed", of=page)

    # A second message sent while a reply is being written waits, then runs.
    page.get_by_label("Message").fill("Tell me more [[fake: chunks=25]]")
    page.get_by_role("button", name="Send").click()
    page.locator("article.role-assistant").nth(1).wait_for()
    page.get_by_label("Message").fill("And finally this")
    page.get_by_role("button", name="Send").click()
    queued = page.get_by_test_id("queued")
    queued.wait_for()
    assert queued.inner_text() == "Queued · #1"
    screenshot("3-queued", of=page)
    third = page.locator("article.role-assistant").nth(2)
    third.wait_for(timeout=20_000)
    content_lengths_until_done(page, third, timeout=20)
    assert third.locator(".content").inner_text().startswith("You said: And finally")

    # Stop a reply midway.
    page.get_by_label("Message").fill("A very long one [[fake: chunks=200]]")
    page.get_by_role("button", name="Send").click()
    fourth = page.locator("article.role-assistant").nth(3)
    fourth.wait_for()
    # The list is re-rendered now and then: look the reply up afresh every time.
    # (A function, not an expression: the page's CSP forbids eval.)
    reply = "document.querySelectorAll('article.role-assistant')[3]"
    page.wait_for_function(f"() => {reply}.querySelector('.content').textContent.length > 5")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function(f"() => {reply} && {reply}.dataset.status === 'stopped'")
    assert "Stopped" in fourth.inner_text()
    screenshot("4-stopped", of=page)

    # After a reload: the chat with its generated title; the model remembered for new chats.
    page.reload()
    assert page.locator("#chat-title").inner_text() == "Fake chat title"
    assert Chat.objects.get().title == "Fake chat title"
    screenshot("5-reloaded", of=page)
    page.goto("/agents/")
    assert page.locator("#model-selector").input_value() == str(mini.pk)
    page.get_by_role("link", name="Fake chat title").wait_for()

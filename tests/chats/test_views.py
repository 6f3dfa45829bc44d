"""The Agents page: the selector, the empty states, the chat list, and a chat's event stream."""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient
from django.urls import reverse

from chats import services
from chats.models import Chat, MessageStatus, Role
from gateway import lifecycle

pytestmark = pytest.mark.django_db

AGENTS = reverse("chats:agents")


def test_the_selector_groups_by_provider_with_context_limits(developer_client, make_model):
    make_model("claude-opus-4-6", display_name="Claude Opus", context_limit=200_000)
    page = developer_client.get(AGENTS).content.decode()
    assert "<optgroup" not in page  # one provider: no groups
    assert "Claude Opus · 200K context" in page
    make_model("gpt-5", "openai", display_name="GPT-5", context_limit=400_000)
    page = developer_client.get(AGENTS).content.decode()
    assert '<optgroup label="Anthropic">' in page and '<optgroup label="OpenAI">' in page
    assert "GPT-5 · 400K context" in page


def test_the_selector_starts_on_the_admin_default(developer_client, make_model):
    from models_catalog.services import model_set_default

    make_model("a-model", display_name="Alpha")
    bravo = make_model("b-model", display_name="Bravo")
    model_set_default(model=bravo, actor=None)
    page = developer_client.get(AGENTS).content.decode()
    assert f'<option value="{bravo.pk}" selected>Bravo' in page
    assert f'data-default="{bravo.pk}"' in page


def test_developers_without_models_are_told_to_contact_an_administrator(developer_client):
    page = developer_client.get(AGENTS).content.decode()
    assert "No models are available to you. Contact an administrator." in page
    assert reverse("providers:list") not in page


def test_developers_who_can_fix_it_get_a_link_to_their_api_keys(
    developer_client, make_provider, make_model
):
    make_provider("openai", api_key=None)
    make_model("gpt-5", "openai")
    page = developer_client.get(AGENTS).content.decode()
    assert "Add your personal API key for OpenAI" in page
    assert 'href="/settings/api-keys/">Open Settings → API Keys' in page


def test_an_admin_with_nothing_configured_lands_on_the_setup_checklist(staff_client):
    page = staff_client.get(AGENTS).content.decode()
    assert "Contact an administrator" not in page
    assert 'data-testid="setup-checklist"' in page and "(0 of 4 done)" in page
    assert f'href="{reverse("providers:list")}">Open Providers' in page


def test_the_checklist_ticks_steps_off_and_goes_away_when_setup_is_done(
    staff_client, make_model, developer
):
    from models_catalog.services import model_set_default

    model = make_model("claude-sonnet-4-5")
    page = staff_client.get(AGENTS).content.decode()
    # A provider and a model are in; a second person counts as invited; no default yet.
    assert "(3 of 4 done)" in page and "Star a default model" in page
    model_set_default(model=model, actor=None)
    assert "setup-checklist" not in staff_client.get(AGENTS).content.decode()


def test_developers_never_see_the_checklist(developer_client):
    page = developer_client.get(AGENTS).content.decode()
    assert "setup-checklist" not in page and "Contact an administrator" in page


def test_chats_are_listed_newest_first_with_title_model_and_status(
    developer_client, developer, make_model, django_assert_max_num_queries
):
    model = make_model("m", display_name="Model M")
    for i in range(30):
        chat, _ = services.chat_start(user=developer, model=model, text=f"chat {i}", api_key=None)
        Chat.objects.filter(pk=chat.pk).update(title=f"Chat number {i}")
    with django_assert_max_num_queries(8):
        page = developer_client.get(AGENTS).content.decode()
    assert page.index("Chat number 29") < page.index("Chat number 0")
    assert "Model M" in page and "Running" in page


def test_a_chat_of_someone_else_is_a_404(client, other_developer, developer, make_model):
    model = make_model()
    chat, _ = services.chat_start(user=other_developer, model=model, text="mine", api_key=None)
    client.force_login(developer)
    for name in ("chats:detail", "chats:events", "chats:stop", "chats:send", "chats:subagent"):
        method = client.get if name in ("chats:detail", "chats:events") else client.post
        assert method(reverse(name, args=[chat.pk]), {"text": "x"}).status_code == 404, name
    assert Chat.objects.get().messages.count() == 1


def test_sending_starts_a_chat_and_queues_while_running(developer_client, make_model):
    model = make_model()
    json_headers = {"Accept": "application/json"}
    response = developer_client.post(
        reverse("chats:new"), {"model": model.pk, "text": "first"}, headers=json_headers
    )
    assert response.status_code == 201
    chat = Chat.objects.get()
    assert response.json()["url"] == reverse("chats:detail", args=[chat.pk])
    assert chat.api_key_id == response.wsgi_request.api_token.pk  # the session's token
    second = developer_client.post(
        reverse("chats:send", args=[chat.pk]), {"text": "second"}, headers=json_headers
    )
    assert second.json()["status"] == "queued"
    page = developer_client.get(reverse("chats:detail", args=[chat.pk])).content.decode()
    assert "Queued · #1" in page
    bad = developer_client.post(reverse("chats:send", args=[chat.pk]), {"text": "  "})
    assert bad.status_code == 422 and "Write a message first." in bad.content.decode()


def test_queued_messages_can_be_edited_and_removed(developer_client, developer, make_model):
    chat, _ = services.chat_start(user=developer, model=make_model(), text="a", api_key=None)
    queued = services.message_send(chat=chat, text="tpyo", api_key=None)
    developer_client.post(
        reverse("chats:edit-message", args=[chat.pk, queued.pk]), {"text": "typo"}
    )
    queued.refresh_from_db()
    assert queued.content == "typo"
    developer_client.post(reverse("chats:remove-message", args=[chat.pk, queued.pk]))
    assert not chat.messages.filter(pk=queued.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_event_stream_runs_the_turn_and_streams_the_reply(developer, setup):
    chat, _ = services.chat_start(
        user=developer, model=setup.model, text="stream it", api_key=setup.token
    )

    async def read() -> str:
        client = AsyncClient()
        await client.aforce_login(developer)
        response = await client.get(reverse("chats:events", args=[chat.pk]))
        assert response["Content-Type"] == "text/event-stream"
        body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
        await lifecycle.flush_usage()
        await lifecycle.shutdown()
        return body.decode()

    body = asyncio.run(read())
    assert body.count("event: delta") > 1
    assert "event: title" in body and body.rstrip().endswith("data: {}")
    reply = chat.messages.get(role=Role.ASSISTANT)
    assert (reply.status, reply.content) == (MessageStatus.DONE, "You said: stream it")

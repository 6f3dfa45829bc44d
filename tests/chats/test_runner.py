"""Turns run end to end: routing, the in-process gateway or a direct call, the fake provider."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from chats import services
from chats.models import Chat, Message, MessageStatus, Role
from chats.runner import run_chat
from gateway import lifecycle
from gateway.models import UsageRecord
from models_catalog.models import Purpose
from models_catalog.services import model_save, purpose_model_set
from providers.models import Provider
from providers.services import provider_save
from tests.servers import free_port
from tokens.services import token_create, token_revoke

from .conftest import run_turns

pytestmark = pytest.mark.django_db(transaction=True)


def start(setup, text="hello there", token=None):
    chat, message = services.chat_start(
        user=setup.developer, model=setup.model, text=text, api_key=token or setup.token
    )
    return chat, message


def reply_of(chat):
    return chat.messages.filter(role=Role.ASSISTANT).order_by("-id").first()


def test_a_turn_goes_through_the_gateway_in_process_with_its_key(setup):
    chat, message = start(setup)
    events = run_turns(chat.pk)
    reply = reply_of(chat)
    assert (reply.status, reply.content) == (MessageStatus.DONE, "You said: hello there")
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 1 and "".join(deltas) == reply.content
    assert ("title", {"title": "Fake chat title"}) in events
    chat.refresh_from_db()
    assert chat.title == "Fake chat title" and chat.api_key_id == setup.token.pk
    assert Message.objects.get(pk=message.pk).api_key_id == setup.token.pk
    for received in setup.fake.calls():
        assert received.headers["authorization"] == "Bearer sk-central-chats-CANARY"
    rows = list(UsageRecord.objects.order_by("id"))
    assert {r.route for r in rows} == {"in_process"}
    assert {r.api_key_id for r in rows} == {setup.token.pk}


def test_a_turn_goes_direct_when_chat_routing_is_off(setup, settings):
    settings.AI_GATEWAY_CHAT_ROUTING = False
    chat, _ = start(setup)
    run_turns(chat.pk)
    assert reply_of(chat).content == "You said: hello there"
    assert len(setup.fake.calls("/chat/completions")) == 2  # the reply and the title
    assert not UsageRecord.objects.exists()  # no gateway on the way


def test_a_revoked_key_fails_the_turn_closed_without_calling_the_provider(setup):
    chat, _ = start(setup)
    token_revoke(token=setup.token, actor=None)
    run_turns(chat.pk)
    reply = reply_of(chat)
    assert (reply.status, reply.error_code, reply.error_action) == (
        MessageStatus.FAILED,
        "api_key_revoked",
        "sign_in_again",
    )
    assert "has been revoked" in reply.content
    assert setup.fake.calls("/chat/completions") == []
    chat.refresh_from_db()
    assert chat.status == "idle"  # still usable


def test_each_turn_runs_as_the_key_of_its_own_message(setup):
    chat, _ = start(setup)
    run_turns(chat.pk)
    newer = token_create(user=setup.developer, name="tab", lifetime=timedelta(days=1), actor=None)
    token_revoke(token=setup.token, actor=None)  # the first message's key is gone now
    services.message_send(chat=chat, text="second", api_key=newer.token)
    run_turns(chat.pk)
    assert reply_of(chat).content.rstrip(".") == "You said: second"  # short: padded to 5 chunks
    rows = UsageRecord.objects.filter(endpoint="chat.completions").order_by("id")
    assert [r.api_key_id for r in rows][-1] == newer.token.pk
    # And no fallback the other way round: the latest message's key is the one that counts.
    services.message_send(chat=chat, text="third", api_key=setup.token)
    run_turns(chat.pk)
    assert reply_of(chat).error_code == "api_key_revoked"


def test_a_provider_needing_the_users_key_says_so_in_the_chat(setup):
    chat, _ = start(setup)
    Provider.objects.update(central_key_enabled=False, user_keys_allowed=True)
    run_turns(chat.pk)
    reply = reply_of(chat)
    assert (reply.status, reply.error_action) == (MessageStatus.FAILED, "add_personal_key")
    assert "Settings → API Keys" in reply.content
    assert setup.fake.calls("/chat/completions") == []


def test_an_upstream_error_shows_its_status_and_the_chat_stays_usable(setup):
    chat, _ = start(setup, "explode [[fake: status=503]]")
    run_turns(chat.pk)
    reply = reply_of(chat)
    assert reply.status == MessageStatus.FAILED and reply.error_code == "upstream_503"
    assert "answered 503" in reply.content
    services.message_send(chat=chat, text="better now", api_key=setup.token)
    run_turns(chat.pk)
    assert reply_of(chat).content == "You said: better now"


def test_a_failing_title_call_falls_back_to_the_first_words(setup):
    unreachable = provider_save(
        provider_type="openai",
        actor=None,
        changes={"base_url": f"http://127.0.0.1:{free_port()}/v1"},
        api_key="sk-unreachable",
    )
    titler, _ = model_save(
        model=None,
        provider=unreachable,
        fields={"identifier": "gpt-5-mini", "display_name": "Mini", "context_limit": 8000},
        options={},
        actor=None,
    )
    purpose_model_set(purpose=Purpose.TITLE, model=titler, actor=None)
    chat, _ = start(setup, "Refactor the invoice exporter to stream rows")
    run_turns(chat.pk)
    chat.refresh_from_db()
    assert chat.title == "Refactor the invoice exporter to stream…"
    assert reply_of(chat).status == MessageStatus.DONE


def test_queued_messages_run_after_the_running_turn(setup):
    chat, _ = start(setup, "one")
    services.message_send(chat=chat, text="two", api_key=setup.token)
    services.message_send(chat=chat, text="three", api_key=setup.token)
    run_turns(chat.pk)
    replies = [m.content for m in chat.messages.filter(role=Role.ASSISTANT).order_by("id")]
    assert replies == ["You said: one", "You said: two", "You said: three"]
    sent = [r.json["messages"][-1]["content"] for r in setup.fake.calls() if r.json.get("stream")]
    assert sent == ["one", "two", "three"]


def test_a_reply_can_be_stopped_midway_which_closes_the_upstream_call(setup):
    chat, _ = start(setup, "long one [[fake: chunks=60; chunk-delay=0.05]]")

    async def main():
        events = []

        async def emit(name, data):
            events.append(name)

        task = asyncio.create_task(run_chat(chat.pk, "r", emit))
        while events.count("delta") < 3:
            await asyncio.sleep(0.02)
        from asgiref.sync import sync_to_async

        await sync_to_async(services.chat_stop)(
            chat=await sync_to_async(Chat.objects.get)(pk=chat.pk)
        )
        await asyncio.wait_for(task, 10)
        await asyncio.sleep(0.5)
        await lifecycle.flush_usage()
        await lifecycle.shutdown()

    asyncio.run(main())
    reply = reply_of(chat)
    assert reply.status == MessageStatus.STOPPED and 0 < len(reply.content) < 60
    assert setup.fake.disconnects >= 1


def test_a_subagent_chat_inherits_the_parents_key_and_uses_the_subagent_model(setup):
    chat, _ = start(setup)
    run_turns(chat.pk)
    purpose_model_set(purpose=Purpose.SUBAGENT, model=setup.small, actor=None)
    child = services.subagent_start(
        parent=chat, user=setup.developer, task="Summarise the tests", model=setup.small
    )
    assert (child.parent_id, child.purpose, child.model_id) == (chat.pk, "subagent", setup.small.pk)
    assert child.api_key_id == setup.token.pk
    assert child.messages.get().api_key_id == setup.token.pk
    run_turns(child.pk)
    assert reply_of(child).content == "You said: Summarise the tests"
    assert setup.fake.calls()[-1].json["model"] in ("fake-gpt-mini", "fake-gpt")


@pytest.mark.parametrize("routing", ["gateway", "direct"])
@pytest.mark.parametrize("echo", ["1", "escaped", "stream", "body", "header"])
def test_a_key_the_provider_quotes_is_never_shown_or_stored_in_the_chat(
    setup, settings, routing, echo
):
    """ "Incorrect API key provided: sk-…" in an error, an error event of a 200 stream (cut
    in the middle of the key) or the answer itself: the chat shows and keeps it scrubbed,
    on the direct route as through the gateway."""
    settings.AI_GATEWAY_CHAT_ROUTING = routing == "gateway"
    chat, _ = start(setup, f"hi [[fake: echo-key={echo}; chunk-delay=0.02]]")
    events = run_turns(chat.pk)
    reply = reply_of(chat)
    stored = repr(list(Message.objects.values())) + repr(list(Chat.objects.values()))
    shown = repr(events)
    for text in (stored, shown):
        assert "sk-central-chats-CANARY" not in text
        assert "\\u0073\\u006b\\u002d" not in text.lower()  # nor its escaped form
        assert "*NARY" not in text  # nor a masked form
    if echo in ("1", "escaped", "stream"):
        assert reply.status == MessageStatus.FAILED and "********" in reply.content
    else:
        assert reply.status == MessageStatus.DONE


def test_the_fake_provider_answers_a_title_to_the_chats_title_prompt_only():
    """The fake answers a title when a system prompt holds its marker: the chats' title
    prompt must (coding agents' own prompts mention titles too, and get no title)."""
    from chats.runner import TITLE_PROMPT
    from fakeprovider.answers import FAKE_TITLE, TITLE_REQUEST, compose_answer

    assert TITLE_PROMPT.startswith(TITLE_REQUEST)
    assert compose_answer("hi", TITLE_PROMPT, 1).text == FAKE_TITLE
    agent = "You are Claude Code. Generate a title for the conversation."
    assert compose_answer("hi", agent, 1).text == "You said: hi"


@pytest.mark.parametrize("routing", ["gateway", "direct"])
def test_a_reply_answered_as_one_json_body_to_a_stream_request_is_shown_whole(
    setup, settings, routing
):
    """Some OpenAI-compatible servers ignore "stream": true: the reply is still the reply,
    not an empty message marked done."""
    settings.AI_GATEWAY_CHAT_ROUTING = routing == "gateway"
    chat, _ = start(setup, "whole please [[fake: json-stream]]")
    run_turns(chat.pk)
    reply = reply_of(chat)
    assert (reply.status, reply.content) == (MessageStatus.DONE, "You said: whole please")


def test_a_chat_refused_by_a_budget_says_which_budget_and_when_it_resets(setup):
    from decimal import Decimal

    from spend.models import Budget, Period, Scope

    Budget.objects.create(
        scope=Scope.PERSON, user=setup.developer, limit_usd=Decimal("0.01"), period=Period.DAY
    )
    chat, _ = start(setup)
    run_turns(chat.pk)
    reply = reply_of(chat)
    assert reply.status == MessageStatus.FAILED
    assert f"Daily budget of $0.01 for {setup.developer.username} reached; resets" in reply.content
    assert "00:00 UTC" in reply.content, reply.content
    assert setup.fake.calls("/chat/completions") == []

"""Two tabs (or replicas) sending to one chat at once: one turn runs, the other message waits."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from chats import services
from chats.models import Chat, ChatStatus, Message, MessageStatus, Role
from tests.servers import served_app, signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_simultaneous_sends_give_one_running_turn_and_one_queued_message(developer, make_model):
    chat, _ = services.chat_start(user=developer, model=make_model(), text="x", api_key=None)
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, developer) for _ in range(2)]
        for round_number in range(10):
            # An idle chat, as after a finished turn.
            Message.objects.filter(chat=chat).delete()
            Chat.objects.filter(pk=chat.pk).update(status=ChatStatus.IDLE, runner="")
            barrier = threading.Barrier(2)

            def send(i: int, barrier=barrier) -> int:
                barrier.wait()
                return (
                    clients[i]
                    .post(
                        reverse("chats:send", args=[chat.pk]),
                        data={"text": f"tab {i}"},
                        headers={"Accept": "application/json"},
                    )
                    .status_code
                )

            with ThreadPoolExecutor(2) as pool:
                assert list(pool.map(send, range(2))) == [201, 201]
            statuses = sorted(
                Message.objects.filter(chat=chat, role=Role.USER).values_list("status", flat=True)
            )
            assert statuses == [MessageStatus.ACTIVE, MessageStatus.QUEUED], round_number
            assert Chat.objects.get(pk=chat.pk).status == ChatStatus.RUNNING


def test_two_pages_streaming_one_chat_run_its_turn_once(developer, fake):
    from datetime import timedelta

    from models_catalog.services import model_save
    from providers.services import provider_save
    from tokens.services import token_create

    fake_provider, url = fake
    fake_provider.clear()
    provider = provider_save(
        provider_type="openai-compatible",
        actor=None,
        changes={"base_url": url + "/v1"},
        api_key="sk-race",
    )
    model, _ = model_save(
        model=None,
        provider=provider,
        options={},
        actor=None,
        fields={"identifier": "fake-gpt", "display_name": "Fake", "context_limit": 8000},
    )
    token = token_create(user=developer, name="t", lifetime=timedelta(days=1), actor=None).token
    chat, _ = services.chat_start(
        user=developer,
        model=model,
        text="once [[fake: chunks=20; chunk-delay=0.05]]",
        api_key=token,
    )
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, developer) for _ in range(2)]
        barrier = threading.Barrier(2)

        def stream(i: int) -> str:
            barrier.wait()
            with clients[i].stream("GET", reverse("chats:events", args=[chat.pk])) as response:
                return "".join(response.iter_text())

        with ThreadPoolExecutor(2) as pool:
            bodies = list(pool.map(stream, range(2)))
    assert sum("event: delta" in body for body in bodies) == 1  # one page ran it
    assert any("event: snapshot" in body for body in bodies)  # the other mirrored it
    answers = [r for r in fake_provider.calls("/chat/completions") if r.json.get("stream")]
    assert len(answers) == 1
    assert chat.messages.filter(role=Role.ASSISTANT, status=MessageStatus.DONE).count() == 1

"""Chat state: one active message per chat, a queue behind it, turns claimed by one runner."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from chats import services
from chats.models import Chat, ChatStatus, MessageStatus, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(make_model):
    return make_model("claude-sonnet-4-5")


def start(developer, model, text="hello"):
    return services.chat_start(user=developer, model=model, text=text, api_key=None)


def test_the_first_message_is_active_and_the_next_ones_wait(developer, model):
    chat, first = start(developer, model)
    assert first.status == MessageStatus.ACTIVE
    chat.refresh_from_db()
    assert chat.status == ChatStatus.RUNNING and chat.runner == ""
    second = services.message_send(chat=chat, text="and then", api_key=None)
    third = services.message_send(chat=chat, text="and more", api_key=None)
    assert (second.status, third.status) == (MessageStatus.QUEUED, MessageStatus.QUEUED)


def test_a_turn_is_claimed_once_and_the_queue_moves_on(developer, model):
    chat, first = start(developer, model)
    services.message_send(chat=chat, text="next", api_key=None)
    turn = services.turn_claim(chat_id=chat.pk, runner="a")
    assert turn is not None
    assert turn.message_id == first.pk and turn.history == (("user", "hello"),)
    assert services.turn_claim(chat_id=chat.pk, runner="b") is None  # a is alive
    more = services.turn_finish(turn=turn, runner="a", content="hi!", status=MessageStatus.DONE)
    assert more is True
    turn2 = services.turn_claim(chat_id=chat.pk, runner="a")
    assert turn2 is not None
    assert turn2.history == (("user", "hello"), ("assistant", "hi!"), ("user", "next"))
    assert (
        services.turn_finish(turn=turn2, runner="a", content="ok", status=MessageStatus.DONE)
        is False
    )
    chat.refresh_from_db()
    assert chat.status == ChatStatus.IDLE and chat.runner == ""


def test_a_runner_that_went_away_is_replaced_and_its_reply_marked_interrupted(developer, model):
    chat, _ = start(developer, model)
    turn = services.turn_claim(chat_id=chat.pk, runner="gone")
    assert turn is not None
    Chat.objects.filter(pk=chat.pk).update(heartbeat=timezone.now() - timedelta(minutes=1))
    taken = services.turn_claim(chat_id=chat.pk, runner="new")
    assert taken is not None and taken.message_id == turn.message_id
    old = chat.messages.get(pk=turn.reply_id)
    assert (old.status, old.error_code) == (MessageStatus.STOPPED, "interrupted")
    assert services.turn_progress(turn=turn, runner="gone", content="late") is True


def test_only_queued_messages_can_be_edited_or_removed(developer, model):
    chat, active = start(developer, model)
    queued = services.message_send(chat=chat, text="typo", api_key=None)
    edited = services.message_edit(chat=chat, message_id=queued.pk, text="fixed")
    assert edited.content == "fixed"
    with pytest.raises(ValidationError, match="already being answered"):
        services.message_edit(chat=chat, message_id=active.pk, text="x")
    with pytest.raises(ValidationError, match="already being answered"):
        services.message_remove(chat=chat, message_id=active.pk)
    services.message_remove(chat=chat, message_id=queued.pk)
    assert chat.messages.filter(role=Role.USER).count() == 1


def test_stop_is_asked_of_the_running_turn(developer, model):
    chat, _ = start(developer, model)
    turn = services.turn_claim(chat_id=chat.pk, runner="a")
    assert turn is not None
    assert services.chat_stop(chat=chat) is True
    assert services.turn_progress(turn=turn, runner="a", content="par") is True
    services.turn_finish(turn=turn, runner="a", content="par", status=MessageStatus.STOPPED)
    assert services.chat_stop(chat=chat) is False  # idle now


@pytest.mark.parametrize(
    "text, message",
    [("", "Write a message first."), ("   \n ", "Write a message first."),
     ("a\x00b", "NUL byte"), ("x" * 100_001, "at most 100,000 characters")],
)  # fmt: skip
def test_bad_messages_are_refused(developer, model, text, message):
    with pytest.raises(ValidationError, match=message):
        start(developer, model, text)
    assert not Chat.objects.exists()


def test_a_model_the_user_cannot_use_is_refused(developer, make_provider, make_model):
    make_provider("openai", api_key=None)  # user keys only, and none saved
    model = make_model("gpt-5", "openai")
    with pytest.raises(ValidationError, match="needs your personal OpenAI API key"):
        start(developer, model)


def test_titles_fall_back_to_the_first_words():
    assert services.fallback_title("Please help me refactor the billing module today") == (
        "Please help me refactor the billing…"
    )
    assert services.fallback_title("Short one") == "Short one"


def test_a_subagent_runs_as_the_token_of_its_parents_latest_message(developer, model):
    from tokens.services import token_create

    def token(name):
        return token_create(user=developer, name=name, lifetime=timedelta(days=1), actor=None).token

    first, latest = token("first tab"), token("latest tab")
    chat, _ = services.chat_start(user=developer, model=model, text="one", api_key=first)
    services.message_send(chat=chat, text="two", api_key=latest)
    child = services.subagent_start(parent=chat, user=developer, task="look", model=model)
    assert chat.api_key_id == first.pk  # the parent's first token is not the one that counts
    assert child.api_key_id == latest.pk
    assert child.messages.get().api_key_id == latest.pk

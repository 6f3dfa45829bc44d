"""Chat state changes. Each runs in one transaction that locks the chat row first, so two
tabs, two worker processes or two replicas can never run the same chat twice.

A chat is IDLE or RUNNING. Sending to an idle chat makes that message the ACTIVE one (its
turn starts as soon as a page attaches a runner); sending to a running chat QUEUES the message.
A runner claims the chat (``turn_claim``), writes the reply, and finishes the turn
(``turn_finish``), which promotes the next queued message, if any. A runner whose heartbeat
is older than STALE_AFTER (a closed tab, a crashed process) is replaced by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from lib.text import validate_plain_text
from models_catalog.models import ModelConfig, Purpose
from routing.availability import availability_for
from routing.purposes import unavailable_error
from tokens.models import ApiToken

from .models import MAX_MESSAGE_CHARS, Chat, ChatStatus, Message, MessageStatus, Role

STALE_AFTER = timedelta(seconds=30)
TITLE_WORDS = 6


def validate_message_text(text: str) -> str:
    text = validate_plain_text(text, what="The message", multiline=True).strip()
    if not text:
        raise ValidationError("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"A message can be at most {MAX_MESSAGE_CHARS:,} characters.")
    return text


def _usable_model(user: Any, model: ModelConfig) -> ModelConfig:
    availability = availability_for(user)
    usable = availability.model_by_id(model.pk)
    if usable is None:
        raise ValidationError(unavailable_error(model, availability).message)
    return usable


def _lock(chat_id: int) -> Chat:
    return Chat.objects.select_for_update().get(pk=chat_id)


def _add_user_message(chat: Chat, text: str, api_key: ApiToken | None) -> Message:
    """With the chat locked: the message becomes the active one, or waits in the queue."""
    idle = chat.status == ChatStatus.IDLE
    message = Message.objects.create(
        chat=chat,
        role=Role.USER,
        content=text,
        status=MessageStatus.ACTIVE if idle else MessageStatus.QUEUED,
        api_key=api_key,
    )
    if idle:
        chat.status = ChatStatus.RUNNING
        chat.runner = ""
        chat.heartbeat = timezone.now()
        chat.stop_requested = False
    chat.save()
    return message


@transaction.atomic
def chat_start(
    *,
    user: Any,
    model: ModelConfig,
    text: str,
    api_key: ApiToken | None,
    purpose: Purpose = Purpose.CHAT,
    parent: Chat | None = None,
) -> tuple[Chat, Message]:
    text = validate_message_text(text)
    model = _usable_model(user, model)
    chat = Chat.objects.create(
        owner=user,
        model=model,
        model_label=str(model),
        purpose=purpose,
        parent=parent,
        api_key=api_key,
    )
    return chat, _add_user_message(chat, text, api_key)


@transaction.atomic
def message_send(
    *, chat: Chat, text: str, api_key: ApiToken | None, model: ModelConfig | None = None
) -> Message:
    text = validate_message_text(text)
    locked = _lock(chat.pk)
    if model is not None and model.pk != locked.model_id:
        model = _usable_model(locked.owner, model)
        locked.model, locked.model_label = model, str(model)
    return _add_user_message(locked, text, api_key)


def _queued(chat: Chat, message_id: int) -> Message:
    message = chat.messages.filter(pk=message_id, role=Role.USER).first()
    if message is None:
        raise ValidationError("No such message in this chat.")
    if message.status != MessageStatus.QUEUED:
        raise ValidationError("This message is already being answered; it can no longer change.")
    return message


@transaction.atomic
def message_edit(*, chat: Chat, message_id: int, text: str) -> Message:
    text = validate_message_text(text)
    message = _queued(_lock(chat.pk), message_id)
    message.content = text
    message.save(update_fields=["content", "updated_at"])
    return message


@transaction.atomic
def message_remove(*, chat: Chat, message_id: int) -> None:
    _queued(_lock(chat.pk), message_id).delete()


@transaction.atomic
def chat_stop(*, chat: Chat) -> bool:
    locked = _lock(chat.pk)
    if locked.status != ChatStatus.RUNNING:
        return False
    locked.stop_requested = True
    locked.save(update_fields=["stop_requested", "updated_at"])
    return True


def chat_set_title(*, chat_id: int, title: str) -> str:
    title = " ".join(title.replace("\n", " ").split()).strip(" \"'.")[:80]
    if title:
        Chat.objects.filter(pk=chat_id, title="").update(title=title)
    return title


def fallback_title(text: str) -> str:
    words = text.split()
    title = " ".join(words[:TITLE_WORDS])
    return title + ("…" if len(words) > TITLE_WORDS else "")


# -- running turns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    chat_id: int
    owner_id: int
    purpose: Purpose
    model_id: int | None
    message_id: int
    api_key_id: int | None
    reply_id: int
    # (role, text) of the conversation so far, the message being answered last.
    history: tuple[tuple[str, str], ...]
    first: bool


def _conversation(chat: Chat) -> list[tuple[str, str]]:
    """Each answered (or active) user message followed by its reply, in the order asked.

    Queued messages are not part of it yet; failed replies are left out.
    """
    messages = list(chat.messages.order_by("created_at", "id"))
    replies = {
        m.reply_to_id: m
        for m in messages
        if m.role == Role.ASSISTANT
        and m.content
        and m.status in (MessageStatus.DONE, MessageStatus.STOPPED)
    }
    history = []
    for message in messages:
        if message.role != Role.USER or message.status not in (
            MessageStatus.DONE,
            MessageStatus.ACTIVE,
        ):
            continue
        history.append((Role.USER.value, message.content))
        reply = replies.get(message.pk)
        if reply is not None:
            history.append((Role.ASSISTANT.value, reply.content))
    return history


def _promote_next(chat: Chat) -> Message | None:
    nxt = chat.messages.filter(status=MessageStatus.QUEUED).order_by("created_at", "id").first()
    if nxt is not None:
        nxt.status = MessageStatus.ACTIVE
        nxt.save(update_fields=["status", "updated_at"])
    return nxt


@transaction.atomic
def turn_claim(*, chat_id: int, runner: str) -> Turn | None:
    """Take the chat's next turn for ``runner``; None when there is nothing to run or another
    live runner has it."""
    chat = _lock(chat_id)
    now = timezone.now()
    if chat.status == ChatStatus.RUNNING:
        alive = chat.heartbeat is not None and now - chat.heartbeat < STALE_AFTER
        if chat.runner and chat.runner != runner and alive:
            return None
    # A reply left half-written by a runner that went away.
    chat.messages.filter(status=MessageStatus.STREAMING).update(
        status=MessageStatus.STOPPED, error_code="interrupted"
    )
    active = chat.messages.filter(status=MessageStatus.ACTIVE).first() or _promote_next(chat)
    if active is None:
        chat.status, chat.runner, chat.heartbeat = ChatStatus.IDLE, "", None
        chat.save(update_fields=["status", "runner", "heartbeat", "updated_at"])
        return None
    chat.status, chat.runner, chat.heartbeat = ChatStatus.RUNNING, runner, now
    chat.save(update_fields=["status", "runner", "heartbeat", "updated_at"])
    reply = Message.objects.create(
        chat=chat,
        role=Role.ASSISTANT,
        status=MessageStatus.STREAMING,
        reply_to=active,
        model=chat.model,
        model_label=chat.model_label,
    )
    first = not chat.messages.filter(role=Role.USER, status=MessageStatus.DONE).exists()
    return Turn(
        chat_id=chat.pk,
        owner_id=chat.owner_id,
        purpose=Purpose(chat.purpose),
        model_id=chat.model_id,
        message_id=active.pk,
        api_key_id=active.api_key_id,
        reply_id=reply.pk,
        history=tuple(_conversation(chat)),
        first=first,
    )


def turn_progress(*, turn: Turn, runner: str, content: str) -> bool:
    """Save what is written so far and beat the heart. True: stop (asked, or taken over)."""
    Message.objects.filter(pk=turn.reply_id).update(content=content, updated_at=timezone.now())
    updated = Chat.objects.filter(pk=turn.chat_id, runner=runner).update(heartbeat=timezone.now())
    if not updated:
        return True
    return bool(
        Chat.objects.filter(pk=turn.chat_id).values_list("stop_requested", flat=True).first()
    )


@transaction.atomic
def turn_finish(
    *,
    turn: Turn,
    runner: str,
    content: str,
    status: MessageStatus,
    error_code: str = "",
    error_action: str = "",
    model: ModelConfig | None = None,
) -> bool:
    """End the turn; the next queued message becomes active. True if one is waiting."""
    chat = _lock(turn.chat_id)
    fields: dict[str, Any] = {
        "content": content,
        "status": status,
        "error_code": error_code[:64],
        "error_action": error_action[:32],
        "updated_at": timezone.now(),
    }
    if model is not None:
        fields.update(model=model, model_label=str(model))
    Message.objects.filter(pk=turn.reply_id).update(**fields)
    Message.objects.filter(pk=turn.message_id, status=MessageStatus.ACTIVE).update(
        status=MessageStatus.DONE
    )
    chat.stop_requested = False
    nxt = _promote_next(chat) if chat.runner == runner else None
    if chat.runner == runner and nxt is None:
        chat.status, chat.runner, chat.heartbeat = ChatStatus.IDLE, "", None
    chat.save()
    return nxt is not None


def subagent_start(*, parent: Chat, user: Any, task: str, model: ModelConfig) -> Chat:
    """A child chat for ``task``, on the subagent purpose's model, running as the parent's
    initiating key (its latest user message's)."""
    latest = (
        parent.messages.filter(role=Role.USER).exclude(api_key=None).order_by("-created_at").first()
    )
    api_key = latest.api_key if latest else parent.api_key
    child, _ = chat_start(
        user=user,
        model=model,
        text=task,
        api_key=api_key,
        purpose=Purpose.SUBAGENT,
        parent=parent,
    )
    return child

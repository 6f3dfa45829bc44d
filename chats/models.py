from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from models_catalog.models import ModelConfig, Purpose
from tokens.models import ApiToken

MAX_MESSAGE_CHARS = 100_000


class ChatStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    RUNNING = "running", "Running"


class Role(models.TextChoices):
    USER = "user", "You"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # a user message waiting for the running turn to end
    ACTIVE = "active", "Being answered"  # the user message of the running turn
    STREAMING = "streaming", "Writing"  # an assistant reply being written
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class ChatQuerySet(models.QuerySet["Chat"]):
    def for_user(self, user: Any) -> ChatQuerySet:
        """The only way views reach chats: a user sees their own and nobody else's."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(owner=user)


class Chat(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats"
    )
    # The model this chat talks to; kept as a label if the model is deleted.
    model = models.ForeignKey(ModelConfig, null=True, on_delete=models.SET_NULL, related_name="+")
    model_label = models.CharField(max_length=255, blank=True)
    purpose = models.CharField(
        max_length=16,
        choices=[(Purpose.CHAT.value, "Chat"), (Purpose.SUBAGENT.value, "Subagent")],
        default=Purpose.CHAT,
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="subagents"
    )
    # The platform token that started the chat (subagent chats inherit their parent's).
    api_key = models.ForeignKey(ApiToken, null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=ChatStatus.choices, default=ChatStatus.IDLE)
    # Which page is running the current turn, and when it last said so (a crashed or closed
    # runner's turn can be taken over once its heartbeat is old).
    runner = models.CharField(max_length=64, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    stop_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChatQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="chats_owner_recent")]

    def __str__(self) -> str:
        return self.title or "New chat"

    @property
    def display_title(self) -> str:
        return self.title or "New chat"


class Message(models.Model):
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    # User messages: the platform token that sent it; the turn answering it runs as that key.
    api_key = models.ForeignKey(ApiToken, null=True, on_delete=models.SET_NULL, related_name="+")
    # Assistant replies: the user message they answer, the model that wrote them.
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    model = models.ForeignKey(ModelConfig, null=True, on_delete=models.SET_NULL, related_name="+")
    model_label = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_action = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # At most one user message is being answered per chat at a time.
            models.UniqueConstraint(
                fields=["chat"],
                condition=Q(status="active"),
                name="chats_one_active_message_per_chat",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.content[:40]}"

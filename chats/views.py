from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from lib.http import HtmxHttpRequest
from lib.parse import parse_id
from models_catalog.models import ModelConfig, Purpose
from routing.availability import availability_for
from routing.errors import RouteError
from routing.routes import ModelRequest, build_route
from spend.services import standings_of
from ui.setup import setup_checklist

from . import services
from .models import Chat, ChatStatus, MessageStatus
from .runner import run_chat

logger = logging.getLogger(__name__)
TEMPLATE = "chats/agents.html"
RECENT_CHATS = 50
OBSERVE_EVERY = 0.5
KEEP_ALIVE = 15


def _own_chat(request: HttpRequest, pk: int) -> Chat:
    chat = Chat.objects.for_user(request.user).select_related("parent").filter(pk=pk).first()
    if chat is None:
        raise Http404("No such chat")
    return chat


def _context(request: HttpRequest, chat: Chat | None = None, **extra: Any) -> dict[str, Any]:
    availability = availability_for(request.user)
    selected = chat.model if chat and chat.model_id else None
    if selected is not None:
        selected = availability.model_by_id(selected.pk)
    context = {
        "page": "agents",
        "availability": availability,
        "selected": selected or availability.preselect(),
        "chats": list(Chat.objects.for_user(request.user).filter(parent=None)[:RECENT_CHATS]),
        "chat": chat,
        "budget_notices": [s for s in standings_of(request.user) if s.near or s.over],
        **extra,
    }
    if chat is None and request.user.is_staff:
        checklist = setup_checklist()
        context["checklist"] = None if checklist.complete else checklist
    if chat is not None:
        context["messages_list"] = list(chat.messages.select_related("api_key"))
        context["subagents"] = list(chat.subagents.all())
        queued = [m for m in context["messages_list"] if m.status == MessageStatus.QUEUED]
        context["queue_positions"] = {m.pk: i + 1 for i, m in enumerate(queued)}
    return context


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _model_from(request: HttpRequest) -> ModelConfig | None:
    pk = parse_id(request.POST.get("model"))
    return ModelConfig.objects.with_provider().filter(pk=pk).first() if pk else None


def _error(request: HttpRequest, chat: Chat | None, message: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": message}, status=422)
    return render(request, TEMPLATE, _context(request, chat, form_error=message), status=422)


@login_required
@require_GET
def agents(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _context(request))


@login_required
@require_GET
def chat_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    chat = _own_chat(request, pk)
    if request.htmx:
        return render(request, f"{TEMPLATE}#messages", _context(request, chat))
    return render(request, TEMPLATE, _context(request, chat))


@login_required
@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    model = _model_from(request)
    if model is None:
        return _error(request, None, "Choose a model first.")
    try:
        chat, _ = services.chat_start(
            user=request.user,
            model=model,
            text=request.POST.get("text", ""),
            api_key=getattr(request, "api_token", None),
        )
    except ValidationError as error:
        return _error(request, None, " ".join(error.messages))
    url = reverse("chats:detail", args=[chat.pk])
    return JsonResponse({"url": url}, status=201) if _wants_json(request) else redirect(url)


@login_required
@require_POST
def message_send(request: HttpRequest, pk: int) -> HttpResponse:
    chat = _own_chat(request, pk)
    try:
        message = services.message_send(
            chat=chat,
            text=request.POST.get("text", ""),
            api_key=getattr(request, "api_token", None),
            model=_model_from(request),
        )
    except ValidationError as error:
        return _error(request, chat, " ".join(error.messages))
    if _wants_json(request):
        return JsonResponse({"id": message.pk, "status": message.status}, status=201)
    return redirect("chats:detail", pk=chat.pk)


@login_required
@require_POST
def message_edit(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    chat = _own_chat(request, pk)
    try:
        services.message_edit(chat=chat, message_id=message_id, text=request.POST.get("text", ""))
    except ValidationError as error:
        return _error(request, chat, " ".join(error.messages))
    return _after_change(request, chat)


@login_required
@require_POST
def message_remove(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    chat = _own_chat(request, pk)
    try:
        services.message_remove(chat=chat, message_id=message_id)
    except ValidationError as error:
        return _error(request, chat, " ".join(error.messages))
    return _after_change(request, chat)


@login_required
@require_POST
def chat_stop(request: HttpRequest, pk: int) -> HttpResponse:
    chat = _own_chat(request, pk)
    stopped = services.chat_stop(chat=chat)
    if _wants_json(request):
        return JsonResponse({"stopping": stopped})
    return redirect("chats:detail", pk=chat.pk)


def _after_change(request: HttpRequest, chat: Chat) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"ok": True})
    return redirect("chats:detail", pk=chat.pk)


@login_required
@require_POST
def subagent_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a subagent chat for a task, on the subagent purpose's model."""
    parent = _own_chat(request, pk)
    try:
        task = services.validate_message_text(request.POST.get("text", ""))
        route = build_route(
            ModelRequest(
                user=request.user,
                model=parent.model,
                purpose=Purpose.SUBAGENT,
                api_key_id=parent.api_key_id,
            )
        )
        child = services.subagent_start(
            parent=parent, user=request.user, task=task, model=route.model
        )
    except RouteError as error:
        return _error(request, parent, error.message)
    except ValidationError as error:
        return _error(request, parent, " ".join(error.messages))
    url = reverse("chats:detail", args=[child.pk])
    return JsonResponse({"url": url}, status=201) if _wants_json(request) else redirect(url)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _snapshot(chat_id: int) -> tuple[str, Any]:
    chat = Chat.objects.filter(pk=chat_id).first()
    if chat is None:
        return ChatStatus.IDLE, None
    reply = chat.messages.filter(status=MessageStatus.STREAMING).values("pk", "content").first()
    return chat.status, reply


@login_required
async def chat_events(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Server-sent events for one chat page. The page that holds this stream runs the chat's
    turns (or, if another live page runs them, mirrors its progress) until it is idle."""
    chat = await sync_to_async(_own_chat)(request, pk)
    runner = uuid.uuid4().hex
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def emit(name: str, data: dict[str, Any]) -> None:
        await queue.put((name, data))

    async def work() -> None:
        while True:
            await run_chat(chat.pk, runner, emit)
            status, reply = await sync_to_async(_snapshot)(chat.pk)
            if status == ChatStatus.IDLE:
                return
            if reply is not None:  # another page runs this chat: mirror what it writes
                await emit("snapshot", {"id": reply["pk"], "content": reply["content"]})
            await asyncio.sleep(OBSERVE_EVERY)

    async def stream() -> AsyncIterator[bytes]:
        task = asyncio.create_task(work())
        getter: asyncio.Future[tuple[str, dict[str, Any]]] | None = None
        try:
            yield b"retry: 3000\n\n"
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, timeout=KEEP_ALIVE,
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if getter in done:
                    yield _event(*getter.result())
                    continue
                getter.cancel()
                if task.done():
                    while not queue.empty():
                        yield _event(*queue.get_nowait())
                    if task.exception() is not None:
                        logger.error("chat %s runner failed", chat.pk, exc_info=task.exception())
                        yield _event("failed", {"message": "The chat stopped on an error."})
                    yield _event("idle", {})
                    return
                yield b": keep-alive\n\n"
        finally:
            # A page that leaves closes this stream mid-wait: its pending get must go too, or
            # the loop logs "Task was destroyed but it is pending!" when it is collected.
            if getter is not None and not getter.done():
                getter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return StreamingHttpResponse(
        stream(),
        content_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""Runs a chat's turns for one attached page (the chat's event stream), one after another.

Every model call is built by routing.build_route with the chat's purpose and the platform
token of the user message being answered (never an older message's); a route that cannot be
built fails the turn with its message, without calling any provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from gateway import tracing
from models_catalog.models import ModelConfig, Purpose
from routing.errors import RouteError
from routing.routes import ModelRequest, build_route

from . import llm
from .models import MessageStatus
from .services import Turn, chat_set_title, fallback_title, turn_claim, turn_finish, turn_progress

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
SAVE_EVERY = 0.4  # seconds between saves of a reply being written (and stop checks)
TITLE_PROMPT = (
    "Write a title of at most six words for a conversation that starts with the user's "
    "message. Answer with the title only, without quotes."
)


def _route(turn: Turn, purpose: Purpose) -> Any:
    user = get_user_model().objects.get(pk=turn.owner_id)
    model = (
        ModelConfig.objects.with_provider().filter(pk=turn.model_id).first()
        if turn.model_id is not None
        else None
    )
    return build_route(
        ModelRequest(user=user, model=model, purpose=purpose, api_key_id=turn.api_key_id)
    )


async def run_chat(chat_id: int, runner: str, emit: Emit) -> None:
    """Claim and run turns until none is left (or another live page runs this chat)."""
    titles: list[asyncio.Task[None]] = []
    try:
        while True:
            turn = await sync_to_async(turn_claim)(chat_id=chat_id, runner=runner)
            if turn is None:
                break
            await emit("changed", {})
            if turn.first:
                titles.append(asyncio.create_task(_title(turn, emit)))
            await _run_turn(turn, runner, emit)
            await emit("changed", {})
    finally:
        for task in titles:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), 15)


async def _run_turn(turn: Turn, runner: str, emit: Emit) -> None:
    try:
        route = await sync_to_async(_route)(turn, turn.purpose)
    except RouteError as error:
        await sync_to_async(turn_finish)(
            turn=turn,
            runner=runner,
            content=error.message,
            status=MessageStatus.FAILED,
            error_code=error.code,
            error_action=error.action,
        )
        return
    # A span for the turn when traces are on: its gateway calls are its children.
    span_attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "llmcp chat",
        "gen_ai.request.model": route.identifier,
        "llmcp.chat.id": turn.chat_id,
        "llmcp.purpose": str(turn.purpose),
    }
    with tracing.turn_span(f"invoke_agent {route.identifier}", span_attributes) as span:
        status = MessageStatus.STOPPED  # unless the turn ends otherwise
        try:
            status = await _stream_turn(turn, runner, emit, route)
        finally:
            if span is not None:
                span.set_attribute("llmcp.turn.status", str(status))
                if status == MessageStatus.FAILED:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR, "the turn failed"))


async def _stream_turn(turn: Turn, runner: str, emit: Emit, route: Any) -> MessageStatus:
    """The reply, streamed and saved; how the turn ended."""
    content, status = "", MessageStatus.DONE
    finished = False
    try:
        last_save = time.monotonic()
        async with contextlib.aclosing(llm.stream_reply(route, list(turn.history))) as stream:
            async for text in stream:
                content += text
                await emit("delta", {"id": turn.reply_id, "text": text})
                if time.monotonic() - last_save > SAVE_EVERY:
                    last_save = time.monotonic()
                    stop = await sync_to_async(turn_progress)(
                        turn=turn, runner=runner, content=content
                    )
                    if stop:
                        status = MessageStatus.STOPPED
                        break
        await sync_to_async(turn_finish)(
            turn=turn, runner=runner, content=content, status=status, model=route.model
        )
        finished = True
        return status
    except llm.CallFailed as error:
        await sync_to_async(turn_finish)(
            turn=turn,
            runner=runner,
            content=(content + "\n\n" if content else "") + error.message,
            status=MessageStatus.FAILED,
            error_code=error.code or (f"upstream_{error.status}" if error.status else "upstream"),
            model=route.model,
        )
        finished = True
        return MessageStatus.FAILED
    finally:
        if not finished:
            # The page went away mid-reply: keep what was written, mark it stopped.
            await asyncio.shield(
                sync_to_async(turn_finish)(
                    turn=turn,
                    runner=runner,
                    content=content,
                    status=MessageStatus.STOPPED,
                    error_code="interrupted",
                )
            )


async def _title(turn: Turn, emit: Emit) -> None:
    """Name the chat with the title purpose's model; the first words if that fails."""
    first_message = turn.history[-1][1]
    try:
        route = await sync_to_async(_route)(turn, Purpose.TITLE)
        title = await asyncio.wait_for(
            llm.complete(route, [("user", first_message)], system=TITLE_PROMPT), 20
        )
    except (RouteError, llm.CallFailed, TimeoutError):
        title = ""
    saved = await sync_to_async(chat_set_title)(
        chat_id=turn.chat_id, title=title or fallback_title(first_message)
    )
    with contextlib.suppress(Exception):
        await emit("title", {"title": saved})

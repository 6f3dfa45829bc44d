"""Calling a model along a route: the request in the route's wire format, the reply as text.

Gateway routes go in process (gateway.inprocess, identity in the ASGI scope); direct routes
go to the provider through lib.outbound, addressed by the same dialects as the gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from gateway import inprocess, tracing
from gateway.upstream import DIALECTS, GarbledStream
from lib import outbound
from lib.scrub import Scrubber, StreamScrubber
from providers.registry import WireFormat
from routing.deployment import RoutePath
from routing.routes import ModelRoute

DEFAULT_MAX_TOKENS = 4096


class CallFailed(Exception):
    """The model call did not succeed; ``message`` says why, for the chat."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def request_for(
    route: ModelRoute, history: list[tuple[str, str]], *, system: str = "", stream: bool
) -> tuple[str, dict[str, Any]]:
    """(path after the API root, JSON body) for this route's wire format."""
    options = dict(route.options)
    model = route.identifier
    if route.wire_format == WireFormat.ANTHROPIC:
        thinking = (options.get("thinking") or {}).get("budget_tokens", 0)
        options.setdefault("max_tokens", max(DEFAULT_MAX_TOKENS, thinking + 1024))
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": role, "content": text} for role, text in history],
            "stream": stream,
            **options,
        }
        if system:
            body["system"] = system
        return "/messages", body
    if route.wire_format == WireFormat.GOOGLE:
        body = {
            "contents": [
                {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
                for role, text in history
            ],
            **options,
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        action = "streamGenerateContent" if stream else "generateContent"
        return f"/models/{model}:{action}", body
    messages = [{"role": role, "content": text} for role, text in history]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return "/chat/completions", {"model": model, "messages": messages, "stream": stream, **options}


def text_of_event(wire: WireFormat, event: dict[str, Any]) -> str:
    """The text a streamed event adds; raises CallFailed for an error event."""
    if "error" in event and event.get("type") in (None, "error"):
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise CallFailed(f"The reply broke off: {message}", code="stream_broken")
    if wire == WireFormat.ANTHROPIC:
        delta = event.get("delta") or {}
        return delta.get("text", "") if event.get("type") == "content_block_delta" else ""
    if wire == WireFormat.GOOGLE:
        return _google_text(event)
    choices = event.get("choices") or []
    return (choices[0].get("delta") or {}).get("content") or "" if choices else ""


def text_of_body(wire: WireFormat, body: dict[str, Any]) -> str:
    if wire == WireFormat.ANTHROPIC:
        return "".join(part.get("text", "") for part in body.get("content") or [])
    if wire == WireFormat.GOOGLE:
        return _google_text(body)
    choices = body.get("choices") or []
    return ((choices[0].get("message") or {}).get("content") or "") if choices else ""


def _google_text(event: dict[str, Any]) -> str:
    candidates = event.get("candidates") or []
    parts = ((candidates[0].get("content") or {}).get("parts") or []) if candidates else []
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def error_message(status: int, body: bytes, label: str) -> str:
    try:
        data = orjson.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else {}
        detail = error.get("message") if isinstance(error, dict) else str(error)
    except ValueError:
        detail = ""
    return f"{label} answered {status}: {detail or 'no details given'}"


def _scrubbed(chunks: AsyncIterator[bytes], key: str) -> AsyncIterator[bytes]:
    """``chunks`` without the key the call was sent with, in any form, even split across
    chunks: a provider's answer or error quoting it must not reach a chat (shown, stored)."""
    scrub = StreamScrubber(Scrubber(key))

    async def scrubbed() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if out := scrub.feed(chunk):
                yield out
        if rest := scrub.finish():
            yield rest

    return scrubbed()


@contextlib.asynccontextmanager
async def _response(route: ModelRoute, path: str, body: dict[str, Any], stream: bool):
    """Yields (status, an async iterator of body bytes, scrubbed of the key)."""
    headers = {**route.headers.reveal(), "content-type": "application/json"}
    if parent := tracing.traceparent_now():  # the chat turn's span, when traces are on
        headers["traceparent"] = parent
    spec = route.model.provider.spec
    # The key this call carries, if any (a central-key call through the gateway carries none:
    # the gateway adds it, and scrubs it from the answer itself).
    key = headers.get(spec.auth.name, "").removeprefix(spec.auth.prefix)
    if route.path == RoutePath.GATEWAY:
        async with (
            inprocess.client(route.identity) as client,  # type: ignore[arg-type]
            client.stream("POST", route.base_url + path, headers=headers, json=body) as streamed,
        ):
            yield streamed.status_code, _scrubbed(streamed.aiter_raw(), key)
        return
    dialect = DIALECTS[spec.upstream]
    rest = path.split("?")[0]
    url = dialect.url(route.base_url, rest, "", model=route.identifier, stream=stream)
    data = dialect.body(body, b"", rest=rest, stream=stream)
    try:
        response = await outbound.request("POST", url, headers=headers, data=data)
    except Exception as error:
        raise CallFailed(f"{spec.label} could not be reached ({type(error).__name__}).") from None
    decoder = dialect.decoder() if stream else None

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in response.iter_chunks():
            yield decoder.feed(chunk) if decoder else chunk

    try:
        yield response.status, _scrubbed(chunks(), key)
    finally:
        response.release()  # kept for the next call if read to the end, else closed


async def stream_reply(
    route: ModelRoute, history: list[tuple[str, str]], *, system: str = ""
) -> AsyncGenerator[str, None]:
    """The reply's text as it arrives. Closing this iterator closes the call."""
    path, body = request_for(route, history, system=system, stream=True)
    label = route.model.provider.label
    try:
        async with _response(route, path, body, True) as (status, chunks):
            if status >= 400:
                raw = b"".join([chunk async for chunk in chunks])
                raise CallFailed(error_message(status, raw, label), status=status)
            buffer = b""
            async for chunk in chunks:
                buffer += chunk
                *events, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                            continue
                        try:
                            data = orjson.loads(line[5:])
                        except ValueError:
                            raise CallFailed(
                                f"{label} sent a reply that could not be read.", code="garbled"
                            ) from None
                        if not isinstance(data, dict):
                            continue
                        text = text_of_event(route.wire_format, data)
                        if text:
                            yield text
            if buffer.strip():  # no events: a server that answered one JSON body instead
                yield _text_of_whole(route.wire_format, buffer, label)
    except GarbledStream:
        raise CallFailed(f"{label} sent a reply that could not be read.", code="garbled") from None
    except CallFailed:
        raise
    except (OSError, TimeoutError) as error:
        raise CallFailed(f"The call to {label} failed ({type(error).__name__}).") from None
    except Exception as error:
        if isinstance(error, outbound.OutboundError) or type(error).__module__.startswith("httpx"):
            raise CallFailed(f"The call to {label} failed ({type(error).__name__}).") from None
        raise


def _text_of_whole(wire: WireFormat, raw: bytes, label: str) -> str:
    """The text of a whole answer (some servers ignore "stream": true)."""
    try:
        data = orjson.loads(raw)
    except ValueError:
        raise CallFailed(f"{label} sent a reply that could not be read.", code="garbled") from None
    if isinstance(data, list):  # Gemini's array of chunks
        return "".join(text_of_body(wire, item) for item in data if isinstance(item, dict))
    if not isinstance(data, dict):
        raise CallFailed(f"{label} sent a reply that could not be read.", code="garbled")
    return text_of_body(wire, data)


async def complete(route: ModelRoute, history: list[tuple[str, str]], *, system: str = "") -> str:
    """A whole reply at once (titles, quick generations)."""
    path, body = request_for(route, history, system=system, stream=False)
    label = route.model.provider.label
    try:
        async with _response(route, path, body, False) as (status, chunks):
            raw = b"".join([chunk async for chunk in chunks])
    except CallFailed:
        raise
    except Exception as error:
        raise CallFailed(f"The call to {label} failed ({type(error).__name__}).") from None
    if status >= 400:
        raise CallFailed(error_message(status, raw, label), status=status)
    try:
        return text_of_body(route.wire_format, orjson.loads(raw))
    except (ValueError, AttributeError):
        raise CallFailed(f"{label} sent a reply that could not be read.") from None

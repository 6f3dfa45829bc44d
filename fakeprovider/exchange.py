"""One request and its answer: what every format's answers share (the request read once,
the answer composed, headers, streaming with its faults)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from .answers import (
    CACHE_WRITE_TOKENS,
    WEB_SEARCH_QUERIES,
    ToolCall,
    compose_answer,
    path_model,
    tool_arguments,
)
from .asked import (
    Control,
    RecordedRequest,
    cache_controls,
    json_asked,
    prompt_of,
    tool_result_last,
    tool_schema,
)

if TYPE_CHECKING:
    from .app import FakeProvider

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

ACCOUNT_HEADERS = {
    "openai": [(b"openai-organization", b"org-fake"), (b"openai-project", b"proj_fake")],
    "anthropic": [(b"anthropic-organization-id", b"00000000-fake-org")],
    "google": [],
}
GOOGLE_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


class ConnectionReset(Exception):
    """Raised on purpose to make the server drop the connection mid-answer."""


async def respond(
    send: Send,
    status: int,
    data: Any,
    content_type: str = "application/json",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    body = orjson.dumps(data) if not isinstance(data, bytes) else data
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"x-request-id", b"fake-1"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ExchangeBase:
    """The request as the answers read it: its body, faults, the composed answer and the
    variants a provider names (tiers, cache writes, searches, where and how fast it ran)."""

    def __init__(self, fake: FakeProvider, record: RecordedRequest, receive: Receive, send: Send):
        self.fake, self.record, self.receive, self._send = fake, record, receive, send
        self.extra_headers: tuple[tuple[bytes, bytes], ...] = ()
        try:
            asked = json.loads(record.headers.get("x-fake-headers", "{}"))
        except ValueError:
            asked = {}
        if isinstance(asked, dict):
            self.extra_headers = tuple(
                (str(name).lower().encode(), str(value).encode()) for name, value in asked.items()
            )
        self.body: dict[str, Any] = record.json if isinstance(record.json, dict) else {}
        prompt, system = prompt_of(self.body)
        self.control = Control.read(record.headers, prompt, fake.chunk_delay)
        call = None
        if self.control.tool:
            schema = tool_schema(self.body, self.control.tool)
            arguments = tool_arguments(schema, self.control.tool_arguments)
            call = ToolCall(self.control.tool, arguments)
        self.answer = compose_answer(
            prompt,
            system,
            self.control.chunks,
            tool_result=tool_result_last(self.body),
            tool_call=call,
            json_schema=json_asked(self.body),
        )
        self.model = str(self.body.get("model") or path_model(self.record.path) or "fake-model")
        controls = cache_controls(self.body)
        self.cache_writes = CACHE_WRITE_TOKENS if controls else 0
        self.hour_cache = any(control.get("ttl") == "1h" for control in controls)
        self.searches = WEB_SEARCH_QUERIES if self._asks_for_web_search() else ()
        # The tier OpenAI says a call ran on: the one asked for, if it offers it.
        tier = self.body.get("service_tier")
        self.service_tier = tier if isinstance(tier, str) and tier != "auto" else "default"
        # Where and how fast Anthropic says a call ran, when the request asked (inference_geo,
        # speed).
        geography, speed = self.body.get("inference_geo"), self.body.get("speed")
        self.inference = {"inference_geo": geography} if geography in ("us", "global") else {}
        if speed in ("fast", "standard"):  # and how fast it ran (fast mode)
            self.inference["speed"] = speed

    def _asks_for_web_search(self) -> bool:
        tools = self.body.get("tools")
        for tool in tools if isinstance(tools, list) else ():
            if not isinstance(tool, dict):
                continue
            kind = str(tool.get("type", ""))
            if kind.startswith("web_search") or "googleSearch" in tool or "google_search" in tool:
                return True
        return False

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            # Each provider names the account behind the key on every answer.
            extra = [*ACCOUNT_HEADERS[self.kind], *self.extra_headers]
            message["headers"] = [*message["headers"], *extra]
        await self._send(message)

    @property
    def kind(self) -> str:
        path = self.record.path
        if "x-goog-api-key" in self.record.headers:
            return "google"
        if "/messages" in path or "/invoke" in path or path.endswith("/count-tokens"):
            return "anthropic"
        if any(f":{method}" in path for method in GOOGLE_METHODS) or "v1beta" in path:
            return "google"
        return "openai"

    async def hang(self) -> None:
        """Never answer; stop once the caller gives up, so the server can shut down."""
        while (await self.receive())["type"] != "http.disconnect":
            pass

    async def stream(
        self,
        events: list[bytes],
        content_type: str,
        garbled: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        """Send ``events`` one write each, ``chunk_delay`` apart, with the faults asked for."""
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"x-request-id", b"fake"),
                    *headers,
                ],
            }
        )
        if self.control.stall:
            await self.hang()
            return
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            middle = len(events) // 2
            for index, event in enumerate(events):
                if disconnected.is_set():
                    self.fake.disconnects += 1
                    return
                if index == middle and self.control.reset:
                    raise ConnectionReset("dropping the connection as asked")
                if index == middle and self.control.garble:
                    event = garbled
                await self.send({"type": "http.response.body", "body": event, "more_body": True})
                if self.control.chunk_delay:
                    await asyncio.sleep(self.control.chunk_delay)
            await self.send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()

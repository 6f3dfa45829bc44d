"""A local stand-in for the providers' APIs, speaking their real wire formats.

OpenAI (chat completions, completions, responses, responses/compact,
responses/input_tokens, models),
Anthropic (messages, count_tokens, models), Google (generateContent, streamGenerateContent,
countTokens, models) and AWS Bedrock (invoke, invoke-with-response-stream in AWS event-stream
framing, and count-tokens), streaming or not, with usage blocks that include cache tokens.
It records every request it receives (headers and body) so tests can see exactly what
reached "the provider".

Each request can ask for a fault, with headers or, for calls made from the chat UI, with a
``[[fake: ...]]`` tag in the last user message:

    x-fake-status: 503        answer that status with an error body in the API's format
    x-fake-delay: 0.5         wait before answering (seconds)
    x-fake-chunk-delay: 0.05  wait between streamed chunks
    x-fake-chunks: 20         number of streamed content chunks (default 5)
    x-fake-garble: 1          send a broken event in the middle of a stream (Bedrock's
                              count-tokens: a count that is not a number)
    x-fake-reset: 1           drop the connection in the middle of the answer
    x-fake-hang: 1            never answer
    x-fake-stall: 1           start a stream (status and headers), then send nothing
    x-fake-echo-key: 1        refuse the key, quoting it (as some providers do); or, to
                              quote it elsewhere: ``escaped`` (a 401 with every character
                              JSON-escaped), ``stream`` (a 200 stream whose second event is
                              an error quoting it, written in two halves), ``header`` (in
                              response headers of an answer), ``body`` (in the answer's text,
                              or a model listing)
    x-fake-headers: {"a": "b"} add these headers to the answer (a JSON object), as an
                              upstream or a proxy in front of it might

A key starting with ``sk-invalid`` (or no key at all) is refused with 401, as a provider would.
Keys can ask for faults too, for callers whose headers a test cannot set (the admin's "Test
connection"): ``sk-hang...`` never answers, ``sk-fail-503...`` answers that status and
``sk-echo...`` is refused with a message quoting it (``sk-echo-escaped...``,
``sk-echo-body...``: quoted as ``x-fake-echo-key`` says).

Besides the model APIs it serves the cheap authenticated calls a connection test makes:
``GET /models`` in each format, OpenRouter's ``GET /key``, Vercel's ``GET /credits`` and
Bedrock's ``GET /foundation-models``.
Plain ASGI, no Django: ``manage.py fake_provider`` serves it, tests run it on a loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import unquote

import orjson

from lib.http1 import joined_headers

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

CACHE_READ_TOKENS = 4
CACHE_WRITE_TOKENS = 2
# What a Google server-side tool (Search, URL context) "fed the model", reported apart from
# the prompt as toolUsePromptTokenCount, when the request turns such a tool on.
GOOGLE_TOOL_PROMPT_TOKENS = 250
GOOGLE_SERVER_TOOLS = ("googleSearch", "google_search", "urlContext", "url_context")
# The searches the "model" runs when a request turns a web search tool on: Anthropic's
# web_search_*, OpenAI's web_search (Responses), Google Search grounding.
WEB_SEARCH_QUERIES = ("fake search one", "fake search two")
TAG = re.compile(r"\[\[fake:([^\]]*)\]\]")


REQUESTS_KEPT = 10_000


class ConnectionReset(Exception):
    """Raised on purpose to make the server drop the connection mid-answer."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @cached_property
    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except ValueError:
            return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
        }


ACCOUNT_HEADERS = {
    "openai": [(b"openai-organization", b"org-fake"), (b"openai-project", b"proj_fake")],
    "anthropic": [(b"anthropic-organization-id", b"00000000-fake-org")],
    "google": [],
}


@dataclass
class Control:
    status: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 5
    garble: bool = False
    reset: bool = False
    hang: bool = False
    stall: bool = False
    echo_key: str = ""

    @classmethod
    def read(cls, headers: dict[str, str], text: str, default_chunk_delay: float) -> Control:
        values = {k[len("x-fake-") :]: v for k, v in headers.items() if k.startswith("x-fake-")}
        for tag in TAG.findall(text):
            for part in tag.split(";"):
                name, _, value = part.strip().partition("=")
                if name:
                    values[name.strip()] = value.strip() or "1"
        control = cls(chunk_delay=default_chunk_delay)
        try:
            if "status" in values:
                control.status = int(values["status"])
            control.delay = float(values.get("delay", 0))
            control.chunk_delay = float(values.get("chunk-delay", default_chunk_delay))
            control.chunks = max(1, min(int(values.get("chunks", 5)), 10_000))
        except ValueError:
            control.status = 400
        control.garble = "garble" in values
        control.reset = "reset" in values
        control.hang = "hang" in values
        control.stall = "stall" in values
        control.echo_key = values.get("echo-key", "")
        return control


@dataclass
class Answer:
    """What the fake "model" says, and the usage it reports, for one request."""

    text: str
    input_tokens: int
    chunks: list[str] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        return len(self.chunks)


GOOGLE_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def compose_answer(prompt: str, system: str, chunks: int) -> Answer:
    clean = TAG.sub("", prompt).strip()
    if "title" in system.lower():
        text = "Fake chat title"
    else:
        text = f"You said: {clean[:200]}" if clean else "Hello from the fake provider."
    size = max(1, -(-len(text) // chunks))
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    while len(parts) < chunks:
        parts.append(".")
    input_tokens = 10 + len(clean.split()) + len(system.split())
    return Answer(text="".join(parts), input_tokens=input_tokens, chunks=parts)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            _text_of(part.get("text", "")) if isinstance(part, dict) else str(part)
            for part in content
        )
    return ""


def prompt_of(body: Any) -> tuple[str, str]:
    """(last user text, system text) of an OpenAI, Anthropic, Responses or Google body."""
    if not isinstance(body, dict):
        return "", ""
    system = _text_of(body.get("system") or body.get("instructions") or "")
    if "messages" in body and isinstance(body["messages"], list):
        users = [m for m in body["messages"] if isinstance(m, dict)]
        system += " ".join(
            _text_of(m.get("content")) for m in users if m.get("role") in ("system", "developer")
        )
        user = [m for m in users if m.get("role") == "user"]
        return (_text_of(user[-1].get("content")) if user else ""), system
    if "prompt" in body:  # OpenAI's completions (autocomplete, fill-in-the-middle)
        prompt = body["prompt"]
        if isinstance(prompt, list):
            prompt = prompt[-1] if prompt else ""
        return _text_of(prompt), system
    if "input" in body:
        value = body["input"]
        if isinstance(value, list):
            value = value[-1].get("content", "") if value and isinstance(value[-1], dict) else ""
        return _text_of(value), system
    if "contents" in body and isinstance(body["contents"], list) and body["contents"]:
        last = body["contents"][-1]
        parts = last.get("parts", []) if isinstance(last, dict) else []
        instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
        if isinstance(instruction, dict):
            system += _text_of(instruction.get("parts", []))
        return _text_of(parts), system
    return "", system


def provided_key(headers: dict[str, str]) -> str:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:]
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or headers.get("api-key", "")


# -- wire formats ---------------------------------------------------------------------------


def openai_usage(answer: Answer, cache_writes: int = 0) -> dict[str, Any]:
    """``cache_writes``: what OpenRouter and Vercel report, in the prompt's count, when a
    request marks content ``cache_control`` for a model that caches on request (Claude)."""
    prompt = answer.input_tokens + CACHE_READ_TOKENS + cache_writes
    details = {"cached_tokens": CACHE_READ_TOKENS}
    if cache_writes:
        details["cache_write_tokens"] = cache_writes
    return {
        "prompt_tokens": prompt,
        "completion_tokens": answer.output_tokens,
        "total_tokens": prompt + answer.output_tokens,
        "prompt_tokens_details": details,
    }


def anthropic_usage(
    answer: Answer, output: int | None = None, hour_cache: bool = False
) -> dict[str, Any]:
    """Cache writes are split by how long their entries are kept, as the Messages API does:
    all for an hour when the request asked for any one-hour entry."""
    return {
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens if output is None else output,
        "cache_creation_input_tokens": CACHE_WRITE_TOKENS,
        "cache_read_input_tokens": CACHE_READ_TOKENS,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if hour_cache else CACHE_WRITE_TOKENS,
            "ephemeral_1h_input_tokens": CACHE_WRITE_TOKENS if hour_cache else 0,
        },
    }


def cache_controls(body: Any) -> list[dict[str, Any]]:
    """Every ``cache_control`` marker in a request, however deep."""
    if isinstance(body, dict):
        control = body.get("cache_control")
        found = [control] if isinstance(control, dict) else []
        return found + [c for value in body.values() for c in cache_controls(value)]
    if isinstance(body, list):
        return [c for item in body for c in cache_controls(item)]
    return []


def google_usage(answer: Answer, output: int | None = None, tool_prompt: int = 0) -> dict[str, Any]:
    prompt = answer.input_tokens + CACHE_READ_TOKENS
    candidates = answer.output_tokens if output is None else output
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + tool_prompt,
        "cachedContentTokenCount": CACHE_READ_TOKENS,
    }
    if tool_prompt:
        usage["toolUsePromptTokenCount"] = tool_prompt
    return usage


def responses_usage(answer: Answer, cache_writes: int = 0) -> dict[str, Any]:
    prompt = answer.input_tokens + CACHE_READ_TOKENS + cache_writes
    details = {"cached_tokens": CACHE_READ_TOKENS}
    if cache_writes:
        details["cache_write_tokens"] = cache_writes
    return {
        "input_tokens": prompt,
        "input_tokens_details": details,
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + answer.output_tokens,
    }


def error_body(kind: str, status: int, message: str) -> dict[str, Any]:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    if kind == "google":
        return {"error": {"code": status, "message": message, "status": "UNAVAILABLE"}}
    return {"error": {"message": message, "type": "api_error", "param": None, "code": None}}


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def eventstream_frame(payload: bytes, headers: dict[str, str]) -> bytes:
    """One AWS event-stream message (prelude, headers, payload, CRC32s)."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude_crc = struct.pack(">I", zlib.crc32(prelude))
    message = prelude + prelude_crc + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


class FakeProvider:
    def __init__(self, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay
        # The latest requests only: a long-running fake must not grow without bound.
        self.requests: deque[RecordedRequest] = deque(maxlen=REQUESTS_KEPT)
        # Streams the client closed before the end (the gateway must close upstream calls).
        self.disconnects = 0
        self.started = time.time()

    def clear(self) -> None:
        self.requests.clear()
        self.disconnects = 0

    def calls(self, path_part: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if path_part in r.path and not r.path.startswith("/_")]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = joined_headers(scope["headers"])
        path = unquote(scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        if path == "/_fake/requests":
            await self._introspect(scope["method"], send)
            return
        record = RecordedRequest(scope["method"], path, query, headers, body)
        self.requests.append(record)
        await Exchange(self, record, receive, send).run()

    async def _introspect(self, method: str, send: Send) -> None:
        if method == "DELETE":
            self.clear()
        data = {"requests": [r.as_dict() for r in self.requests], "disconnects": self.disconnects}
        await respond(send, 200, data)


async def respond(
    send: Send,
    status: int,
    data: Any,
    content_type: str = "application/json",
    headers: tuple[tuple[bytes, bytes], ...] = (),
):
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


class Exchange:
    """One request and its answer."""

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
        self.body = record.json if isinstance(record.json, dict) else {}
        prompt, system = prompt_of(self.body)
        self.control = Control.read(record.headers, prompt, fake.chunk_delay)
        self.answer = compose_answer(prompt, system, self.control.chunks)
        self.model = str(self.body.get("model") or self._model_in_path() or "fake-model")
        controls = cache_controls(self.body)
        self.cache_writes = CACHE_WRITE_TOKENS if controls else 0
        self.hour_cache = any(control.get("ttl") == "1h" for control in controls)
        self.searches = WEB_SEARCH_QUERIES if self._asks_for_web_search() else ()
        # The tier OpenAI says a call ran on: the one asked for, if it offers it.
        asked = self.body.get("service_tier")
        self.service_tier = asked if isinstance(asked, str) and asked != "auto" else "default"
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

    def _model_in_path(self) -> str:
        match = re.search(r"/models?/([^/:]+)", self.record.path)
        return unquote(match.group(1)) if match else ""

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

    async def run(self) -> None:
        control, method, path = self.control, self.record.method, self.record.path
        if control.hang:
            await self.hang()
            return
        if control.delay:
            try:
                async with asyncio.timeout(control.delay):
                    await self.hang()
            except TimeoutError:
                pass  # waited the whole delay
            else:
                self.fake.disconnects += 1  # the caller gave up while we "thought"
                return
        key = provided_key(self.record.headers)
        if key.startswith("sk-hang"):
            await self.hang()
            return
        if failing := re.match(r"sk-fail-(\d{3})", key):
            control.status = int(failing.group(1))
        if not key or key.startswith("sk-invalid"):
            await respond(self.send, 401, error_body(self.kind, 401, "Invalid API key."))
            return
        if key.startswith("sk-echo") and not control.echo_key:
            # sk-echo-escaped-…, sk-echo-body-…: the key names how it is quoted back.
            named = key.removeprefix("sk-echo-").split("-")[0]
            control.echo_key = named if named in ("escaped", "stream", "header", "body") else "1"
        if control.echo_key in ("1", "error", "escaped", "stream"):
            await self._echo_key(key, control.echo_key)
            return
        if control.echo_key == "header":
            self.extra_headers = (
                (b"www-authenticate", f'Bearer realm="fake", key="{key}"'.encode()),
                (b"x-upstream-debug", f"sent {key}".encode()),
                (b"x-request-id", f"req-{key}".encode()),
            )
        elif control.echo_key == "body":
            self.answer.chunks.append(f" Your key is {key}.")
            self.answer.text += self.answer.chunks[-1]
        if control.status:
            message = f"The fake provider answers {control.status} as asked."
            await respond(self.send, control.status, error_body(self.kind, control.status, message))
            return
        if method == "GET" and (answer := self._lookup(path)) is not None:
            if control.echo_key == "body":  # a listing that names the key, somehow
                for listed in (answer.get("data"), answer.get("models")):
                    if isinstance(listed, list):
                        listed.append({"id": f"echo-{key}", "name": f"models/echo-{key}"})
            await respond(self.send, 200, answer)
            return
        if method != "POST":
            await respond(self.send, 404, error_body(self.kind, 404, f"No route {path}"))
            return
        handler = self._handler(path)
        if control.reset and not self.body.get("stream"):
            await self._half_answer_then_reset()
        if handler is None:
            await respond(self.send, 404, error_body(self.kind, 404, f"No route {path}"))
            return
        await handler()

    async def _echo_key(self, key: str, how: str) -> None:
        """Quote the key back, as some providers and proxies do."""
        message = f"Incorrect API key provided: {key}"
        if how == "escaped":  # every character as JSON writes it escaped: still the key
            escaped = "".join(f"\\u{ord(ch):04x}" for ch in key)
            body = orjson.dumps(error_body(self.kind, 401, message.replace(key, "KEY")))
            await respond(self.send, 401, body.replace(b"KEY", escaped.encode()))
            return
        if how != "stream":  # whole, and masked to its last 4
            masked = f"{key[:3]}{'*' * 20}{key[-4:]}"
            await respond(self.send, 401, error_body(self.kind, 401, f"{message} ({masked})."))
            return
        if self.kind == "anthropic":
            first = sse({"type": "message_start", "message": self._message()}, "message_start")
            error = sse(
                {"type": "error", "error": {"type": "api_error", "message": message}}, "error"
            )
        elif self.kind == "google":
            first = sse({"candidates": [self._candidate("Hi", finished=False)]})
            error = sse({"error": {"code": 500, "message": message, "status": "INTERNAL"}})
        else:
            first = sse({"id": "x", "object": "chat.completion.chunk", "choices": []})
            error = sse({"error": {"message": message, "type": "server_error"}})
        middle = error.index(key.encode()) + len(key) // 2
        await self.stream([first, error[:middle], error[middle:]], "text/event-stream", b"")

    async def _half_answer_then_reset(self) -> None:
        body = json.dumps({"partial": "x" * 200}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": body[:20], "more_body": True})
        raise ConnectionReset("dropping the connection as asked")

    def _handler(self, path: str) -> Callable[[], Awaitable[None]] | None:
        stream = bool(self.body.get("stream"))
        if path.endswith("/chat/completions"):
            return self.chat_stream if stream else self.chat
        if path.endswith("/completions"):
            return self.completion_stream if stream else self.completion
        if path.endswith("/responses"):
            return self.responses_stream if stream else self.responses
        if path.endswith("/responses/compact"):
            return self.compact
        if path.endswith("/responses/input_tokens"):
            return self.input_tokens
        if path.endswith("/messages/count_tokens"):
            return self.count_tokens
        if path.endswith("/messages"):
            return self.messages_stream if stream else self.messages
        if path.endswith(":generateContent"):
            return self.generate
        if path.endswith(":streamGenerateContent"):
            return self.generate_stream
        if path.endswith(":countTokens"):
            return self.google_count_tokens
        if re.search(r"/model/[^/]+/invoke-with-response-stream$", path):
            return self.bedrock_stream
        if re.search(r"/model/[^/]+/invoke$", path):
            return self.bedrock
        if re.search(r"/model/[^/]+/count-tokens$", path):
            return self.bedrock_count_tokens
        return None

    # -- OpenAI ---------------------------------------------------------------------------

    def _lookup(self, path: str) -> dict[str, Any] | None:
        if path.endswith("/models"):
            return self._models()
        if path.endswith("/key"):  # OpenRouter
            return {"data": {"label": "fake", "usage": 0, "limit": None, "is_free_tier": False}}
        if path.endswith("/credits"):  # Vercel AI Gateway
            return {"balance": "95.50", "total_used": "4.50"}
        if path.endswith("/foundation-models"):  # AWS Bedrock control plane
            return {
                "modelSummaries": [
                    {
                        "modelId": "anthropic.claude-fake-sonnet-v1:0",
                        "modelName": "Claude Fake Sonnet",
                        "providerName": "Anthropic",
                        "outputModalities": ["TEXT"],
                    },
                    {
                        "modelId": "amazon.fake-titan-v1",
                        "modelName": "Fake Titan",
                        "providerName": "Amazon",
                        "outputModalities": ["TEXT"],
                    },
                ]
            }
        return None

    def _models(self) -> dict[str, Any]:
        if self.kind == "google":
            return {
                "models": [
                    {
                        "name": "models/gemini-fake-flash",
                        "displayName": "Gemini Fake Flash",
                        "inputTokenLimit": 1_000_000,
                        "supportedGenerationMethods": ["generateContent"],
                    }
                ]
            }
        if "anthropic-version" in self.record.headers:
            return {
                "data": [
                    {
                        "type": "model",
                        "id": "claude-fake-haiku",
                        "display_name": "Claude Fake Haiku",
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                ],
                "has_more": False,
                "first_id": "claude-fake-haiku",
                "last_id": "claude-fake-haiku",
            }
        return {
            "object": "list",
            "data": [
                {"id": "fake-gpt-mini", "object": "model", "created": 1_700_000_000},
                # OpenRouter and Vercel also give the context window and per-token prices.
                {
                    "id": "fake-gpt",
                    "object": "model",
                    "created": 1_700_000_000,
                    "name": "Fake GPT",
                    "context_length": 128_000,
                    "pricing": {
                        "prompt": "0.0000025",
                        "completion": "0.00001",
                        "input_cache_read": "0.00000025",
                        "input_cache_write": "0.000003125",
                        "web_search": "0.01",
                    },
                },
            ],
        }

    async def chat(self) -> None:
        message = {"role": "assistant", "content": self.answer.text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        await self._openai_answer("chatcmpl-fake", "chat.completion", choice)

    async def chat_stream(self) -> None:
        def choice(part: str | None, finish: str | None) -> dict[str, Any]:
            if part is None:  # the first chunk names the role
                delta = {"role": "assistant", "content": ""}
            else:
                delta = {"content": part} if part else {}
            return {"index": 0, "delta": delta, "finish_reason": finish}

        await self._openai_stream("chatcmpl-fake", "chat.completion.chunk", choice, first=True)

    async def completion(self) -> None:
        choice = {"index": 0, "text": self.answer.text, "logprobs": None, "finish_reason": "stop"}
        await self._openai_answer("cmpl-fake", "text_completion", choice)

    async def _openai_answer(self, answer_id: str, kind: str, choice: dict[str, Any]) -> None:
        await respond(
            self.send,
            200,
            {
                "id": answer_id,
                "object": kind,
                "created": int(time.time()),
                "model": self.model,
                "choices": [choice],
                "usage": openai_usage(self.answer, self.cache_writes),
                "service_tier": self.service_tier,
            },
        )

    async def completion_stream(self) -> None:
        def choice(part: str | None, finish: str | None) -> dict[str, Any]:
            return {"index": 0, "text": part or "", "logprobs": None, "finish_reason": finish}

        await self._openai_stream("cmpl-fake", "text_completion", choice, first=False)

    async def _openai_stream(
        self,
        answer_id: str,
        kind: str,
        choice: Callable[[str | None, str | None], dict[str, Any]],
        first: bool,
    ) -> None:
        """A chat or completions stream: (a role chunk,) a chunk per part, a stop chunk,
        and the usage chunk only if the request's stream_options asked for it."""
        options = self.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = {
            "id": answer_id,
            "object": kind,
            "created": int(time.time()),
            "model": self.model,
            "service_tier": self.service_tier,  # on every chunk, as OpenAI sends it
        }
        extra = {"usage": None} if include_usage else {}

        def chunk(part: str | None, finish: str | None = None) -> bytes:
            return sse({**base, "choices": [choice(part, finish)], **extra})

        events = [chunk(None)] if first else []
        events += [chunk(part) for part in self.answer.chunks]
        events.append(chunk("", "stop"))
        if include_usage:
            usage = openai_usage(self.answer, self.cache_writes)
            events.append(sse({**base, "choices": [], "usage": usage}))
        events.append(sse("[DONE]"))
        await self.stream(events, "text/event-stream", garbled=b"data: {not json\n\n")

    async def responses(self) -> None:
        await respond(self.send, 200, self._response("completed", usage=True))

    def _response(self, status: str, usage: bool) -> dict[str, Any]:
        text = self.answer.text if status == "completed" else ""
        output: list[dict[str, Any]] = (
            [
                {
                    "type": "message",
                    "id": "msg_fake",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
            if text
            else []
        )
        if status == "completed":  # each search the model ran is an item of the output
            output[:0] = [
                {
                    "type": "web_search_call",
                    "id": f"ws_fake_{index}",
                    "status": "completed",
                    "action": {"type": "search", "query": query},
                }
                for index, query in enumerate(self.searches)
            ]
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model,
            "service_tier": self.service_tier,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": responses_usage(self.answer, self.cache_writes) if usage else None,
        }

    async def responses_stream(self) -> None:
        events = [
            sse(
                {
                    "type": "response.created",
                    "sequence_number": 0,
                    "response": self._response("in_progress", usage=False),
                },
                "response.created",
            )
        ]
        for index, part in enumerate(self.answer.chunks):
            events.append(
                sse(
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": index + 1,
                        "item_id": "msg_fake",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": part,
                        "logprobs": [],
                    },
                    "response.output_text.delta",
                )
            )
        events.append(
            sse(
                {
                    "type": "response.completed",
                    "sequence_number": len(events),
                    "response": self._response("completed", usage=True),
                },
                "response.completed",
            )
        )
        await self.stream(events, "text/event-stream", garbled=b"event: x\ndata: {oops\n\n")

    # -- Anthropic ------------------------------------------------------------------------

    def _message(self) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": self.answer.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                **anthropic_usage(self.answer, hour_cache=self.hour_cache),
                **self._tools(),
                **self.inference,
            },
        }

    def _tools(self) -> dict[str, Any]:
        """The Messages API's count of server tool calls, when the model ran any."""
        if not self.searches:
            return {}
        return {
            "server_tool_use": {"web_search_requests": len(self.searches), "web_fetch_requests": 0}
        }

    async def messages(self) -> None:
        await respond(self.send, 200, self._message())

    def _message_events(self) -> list[dict[str, Any]]:
        start = {**self._message(), "content": [], "stop_reason": None}
        # The searches are counted in message_delta, once they have run.
        start["usage"] = {
            **anthropic_usage(self.answer, output=1, hour_cache=self.hour_cache),
            **self.inference,  # in message_start only: message_delta does not repeat it
        }
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {"type": "ping"},
        ]
        events += [
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": part},
            }
            for part in self.answer.chunks
        ]
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": self.answer.output_tokens, **self._tools()},
            },
            {"type": "message_stop"},
        ]
        return events

    async def messages_stream(self) -> None:
        events = [sse(event, event["type"]) for event in self._message_events()]
        await self.stream(
            events,
            "text/event-stream",
            garbled=b'event: content_block_delta\ndata: {"type": "content_block_delta", "del\n\n',
        )

    async def compact(self) -> None:
        """OpenAI's compaction: the conversation as one opaque item, with a Responses usage
        block (never streamed)."""
        item = {"type": "compaction", "id": "cmp_item_fake", "encrypted_content": "gAAAAfake"}
        compacted = {
            "id": "cmp_fake",
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [item],
            "usage": responses_usage(self.answer, self.cache_writes),
        }
        await respond(self.send, 200, compacted)

    async def count_tokens(self) -> None:
        await respond(self.send, 200, {"input_tokens": self.answer.input_tokens})

    async def input_tokens(self) -> None:
        """OpenAI's Responses input token count: the whole prompt, cached part included."""
        counted = self.answer.input_tokens + CACHE_READ_TOKENS
        await respond(self.send, 200, {"object": "response.input_tokens", "input_tokens": counted})

    async def google_count_tokens(self) -> None:
        counted = self.answer.input_tokens + CACHE_READ_TOKENS
        details = [{"modality": "TEXT", "tokenCount": counted}]
        await respond(self.send, 200, {"totalTokens": counted, "promptTokensDetails": details})

    async def bedrock(self) -> None:
        if self.body.get("anthropic_version") != "bedrock-2023-05-31" or "model" in self.body:
            message = "Malformed input request: anthropic_version and no model are required"
            await respond(self.send, 400, {"message": message})
            return
        self.model = unquote(self.record.path.split("/model/")[1].split("/")[0])
        await respond(self.send, 200, self._message())

    async def bedrock_count_tokens(self) -> None:
        """Bedrock's CountTokens: the invoke body, base64-encoded, in input.invokeModel."""
        try:
            invoke = json.loads(base64.b64decode(self.body["input"]["invokeModel"]["body"]))
        except (KeyError, TypeError, ValueError):
            message = "input.invokeModel.body must hold a base64-encoded invoke body"
            await respond(self.send, 400, {"message": message})
            return
        valid = isinstance(invoke, dict) and "model" not in invoke and "max_tokens" in invoke
        if not valid or invoke.get("anthropic_version") != "bedrock-2023-05-31":
            message = "Malformed input request: anthropic_version and max_tokens are required"
            await respond(self.send, 400, {"message": message})
            return
        prompt, system = prompt_of(invoke)
        counted = compose_answer(prompt, system, 1).input_tokens
        await respond(self.send, 200, {"inputTokens": "many" if self.control.garble else counted})

    async def bedrock_stream(self) -> None:
        if self.body.get("anthropic_version") != "bedrock-2023-05-31":
            await respond(self.send, 400, {"message": "anthropic_version is required"})
            return
        self.model = unquote(self.record.path.split("/model/")[1].split("/")[0])
        headers = {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        }
        frames = [
            eventstream_frame(
                json.dumps(
                    {"bytes": base64.b64encode(json.dumps(event).encode()).decode()}
                ).encode(),
                headers,
            )
            for event in self._message_events()
        ]
        await self.stream(frames, "application/vnd.amazon.eventstream", garbled=b"\x00\x00\x00")

    # -- Google ---------------------------------------------------------------------------

    def _candidate(self, text: str, finished: bool, searched: int = 0) -> dict[str, Any]:
        """``searched``: how many of the search queries to name in its grounding metadata."""
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finished:
            candidate["finishReason"] = "STOP"
        if searched:
            candidate["groundingMetadata"] = {
                "webSearchQueries": list(self.searches[:searched]),
                "groundingChunks": [],
            }
        return candidate

    def _tool_prompt(self) -> int:
        tools = self.body.get("tools")
        used = isinstance(tools, list) and any(
            isinstance(tool, dict) and any(name in tool for name in GOOGLE_SERVER_TOOLS)
            for tool in tools
        )
        return GOOGLE_TOOL_PROMPT_TOKENS if used else 0

    def _gemini_tier(self) -> tuple[tuple[bytes, bytes], ...]:
        """The tier Gemini served a call on, in the header it names it in: the one asked for
        (serviceTier), else standard."""
        asked = self.body.get("serviceTier", self.body.get("service_tier"))
        tier = asked if isinstance(asked, str) and asked else "standard"
        return ((b"x-gemini-service-tier", tier.encode()),)

    async def generate(self) -> None:
        await respond(
            self.send,
            200,
            {
                "candidates": [
                    self._candidate(self.answer.text, finished=True, searched=len(self.searches))
                ],
                "usageMetadata": google_usage(self.answer, tool_prompt=self._tool_prompt()),
                "modelVersion": self.model,
            },
            headers=self._gemini_tier(),
        )

    async def generate_stream(self) -> None:
        parts = self.answer.chunks
        tool_prompt = self._tool_prompt()
        # The grounding metadata grows over the last chunks, each naming the queries so far.
        searched = [max(len(self.searches) - (len(parts) - 1 - i), 0) for i in range(len(parts))]
        events = [
            sse(
                {
                    "candidates": [
                        self._candidate(part, finished=i == len(parts) - 1, searched=searched[i])
                    ],
                    "usageMetadata": google_usage(self.answer, i + 1, tool_prompt),
                    "modelVersion": self.model,
                }
            )
            for i, part in enumerate(parts)
        ]
        if "alt=sse" not in self.record.query:
            # Without alt=sse Google streams one JSON array; the gateway always asks for SSE.
            arrays = [json.loads(e.decode()[len("data: ") :]) for e in events]
            events = [json.dumps(arrays).encode()]
        await self.stream(
            events, "text/event-stream", garbled=b"data: [[[\n\n", headers=self._gemini_tier()
        )

    # -- streaming and faults -------------------------------------------------------------

    async def stream(
        self,
        events: list[bytes],
        content_type: str,
        garbled: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
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

"""A local stand-in for the providers' APIs, speaking their real wire formats.

OpenAI (chat completions, completions, responses, responses/compact,
responses/input_tokens, models),
Anthropic (messages, count_tokens, models), Google (generateContent, streamGenerateContent,
countTokens, models) and AWS Bedrock (invoke, invoke-with-response-stream in AWS event-stream
framing, and count-tokens), streaming or not, with usage blocks that include cache tokens.
It records every request it receives (headers and body) so tests can see exactly what
reached "the provider".

Each request can ask for a fault, with headers or, for calls made from the chat UI or a
coding agent, with a ``[[fake: ...]]`` tag in the last user message (``name=value`` pairs
separated by ``;``):

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
    x-fake-json-stream: 1     answer a stream request with one JSON body, as servers that
                              ignore "stream": true do
    x-fake-usage-on-content: 1  (chat completions) put the usage on the last chunk that has
                              choices, not on a chunk of its own

A tag can ask the "model" to call a tool the request offers, in any format (chat's
tool_calls, a Responses function_call item, Anthropic's tool_use, Gemini's functionCall):
``[[fake: tool=Bash; command=echo hi]]``. The other pairs are its arguments, typed by the
tool's schema (a ``command`` that is a list runs in bash); required ones not given get a
plain value. Once the request's last turn is the tool's result, the answer says what the
tool said ("Tool said: ..."). A system prompt holding ``TITLE_REQUEST`` (the chats' title
prompt) is answered with a chat title.

A key starting with ``sk-invalid`` (or no key at all) is refused with 401, as a provider would.
Keys can ask for faults too, for callers whose headers a test cannot set (the admin's "Test
connection"): ``sk-hang...`` never answers, ``sk-fail-503...`` answers that status,
``sk-fail-429-r5...`` is rate-limited with ``retry-after: 5`` (30 without ``-r``) and the
provider's own rate-limit headers, ``sk-reset...`` drops the connection in the middle of the
answer (as ``x-fake-reset``), and ``sk-echo...`` is refused with a message quoting it
(``sk-echo-escaped...``, ``sk-echo-body...``: quoted as ``x-fake-echo-key`` says).

Besides the model APIs it serves the cheap authenticated calls a connection test makes:
``GET /models`` in each format, OpenRouter's ``GET /key``, Vercel's ``GET /credits`` and
Bedrock's ``GET /foundation-models``.
Plain ASGI, no Django: ``manage.py fake_provider`` serves it, tests run it on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson

from lib.http1 import joined_headers

from .answers import error_body, sse
from .anthropic import AnthropicAnswers
from .asked import RecordedRequest, provided_key
from .exchange import ConnectionReset, Receive, Send, respond
from .google import GoogleAnswers
from .openai import OpenAIAnswers

REQUESTS_KEPT = 10_000


class FakeProvider:
    def __init__(self, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay
        # The latest requests only: a long-running fake must not grow without bound.
        self.requests: deque[RecordedRequest] = deque(maxlen=REQUESTS_KEPT)
        # Streams the client closed before the end (the gateway must close upstream calls).
        self.disconnects = 0
        self.started = time.time()
        # Requests being answered now, and the most there have been at once since the last
        # clear (what a concurrency limit in front of it holds to).
        self.in_flight = 0
        self.most_in_flight = 0

    def clear(self) -> None:
        self.requests.clear()
        self.disconnects = 0
        self.most_in_flight = self.in_flight

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
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await Exchange(self, record, receive, send).run()
        finally:
            self.in_flight -= 1

    async def _introspect(self, method: str, send: Send) -> None:
        if method == "DELETE":
            self.clear()
        data = {
            "requests": [r.as_dict() for r in self.requests],
            "disconnects": self.disconnects,
            "most_in_flight": self.most_in_flight,
        }
        await respond(send, 200, data)


class Exchange(OpenAIAnswers, AnthropicAnswers, GoogleAnswers):
    """One request and its answer: faults first, then the answer its path asks for."""

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
        if failing := re.match(r"sk-fail-(\d{3})(?:-r(\d+))?", key):
            control.status = int(failing.group(1))
            if control.status in (429, 529):
                self.extra_headers = self._rate_limit_headers(int(failing.group(2) or 30))
        if key.startswith("sk-reset"):
            control.reset = True  # the answer (or stream) starts, then the connection drops
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

    def _rate_limit_headers(self, seconds: int) -> tuple[tuple[bytes, bytes], ...]:
        """What a provider says with a 429: when to come back (``retry-after``), and its own
        rate-limit headers (OpenAI's durations, Anthropic's times)."""
        headers = [(b"retry-after", b"%d" % seconds)]
        if self.kind == "anthropic":
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
            headers += [
                (b"anthropic-ratelimit-requests-remaining", b"0"),
                (b"anthropic-ratelimit-requests-reset", at.encode()),
            ]
        elif self.kind != "google":
            headers += [
                (b"x-ratelimit-remaining-requests", b"0"),
                (b"x-ratelimit-reset-requests", b"%ds" % seconds),
            ]
        return tuple(headers)

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
        # json-stream: one JSON body, whatever the request asked for.
        stream = bool(self.body.get("stream")) and not self.control.json_stream
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
            return self.generate if self.control.json_stream else self.generate_stream
        if path.endswith(":countTokens"):
            return self.google_count_tokens
        if re.search(r"/model/[^/]+/invoke-with-response-stream$", path):
            return self.bedrock_stream
        if re.search(r"/model/[^/]+/invoke$", path):
            return self.bedrock
        if re.search(r"/model/[^/]+/count-tokens$", path):
            return self.bedrock_count_tokens
        return None

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

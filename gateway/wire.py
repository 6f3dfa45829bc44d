"""The three wire formats the gateway speaks: their endpoints, errors, usage and model lists.

Which format a provider type speaks is the registry's ``wire_format``; nothing here switches
on a provider type. Streams are read with byte searches only; the few events that carry usage
are kept and parsed once the stream ends, so a 20-chunk stream costs two JSON parses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from providers.registry import WireFormat

JSON = "application/json"


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # Of the cache writes, those kept for an hour (Anthropic's ttl "1h"), priced apart.
    cache_write_1h_tokens: int = 0
    # Web searches the provider ran for the call (its search tool, or Google Search
    # grounding): billed per search, on top of the tokens the results add.
    web_searches: int = 0
    # What a call ran under, where that changes its price: a service tier ("flex",
    # "priority", OpenAI's "ultrafast", or "unknown" for one no factor prices); Anthropic's
    # fast mode ("fast") and US-only inference ("us_inference"), which multiply. Empty for
    # the usual prices.
    price_variants: tuple[str, ...] = ()
    # Whether the provider reported a usage block at all. A call answered without one (an
    # upstream that sent none, or a stream cut before it) costs what is unknown, never 0.
    reported: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    # Where the model is named: in the JSON body, in the path (Google, a model's own entry),
    # or nowhere (listings).
    model_in: str = "body"
    # Answered from this server's catalog (the models the caller may use), never forwarded.
    listing: bool = False
    # A call that never reaches a model (token counting): recorded, but not metered.
    metered: bool = True
    # An API that answers one JSON body whatever the request says (token counts, Codex's
    # compaction): a "stream": true in it is not taken to mean a stream, so the answer is
    # relayed and read whole rather than decoded as a stream that is not there.
    streams: bool = True


@dataclass(frozen=True, slots=True)
class Match:
    endpoint: Endpoint
    model: str | None = None
    streaming_by_path: bool = False


# The most a usage row's token columns hold (PostgreSQL integer). A provider that reports
# more (any OpenAI-compatible server can say anything) gets this, not a row that would make
# the whole batch of other people's rows fail to write.
TOKEN_COUNT_MAX = 2_147_483_647


def _int(value: Any) -> int:
    """A token count from a provider's usage block: a positive integer, at most
    TOKEN_COUNT_MAX; anything else counts as 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, TOKEN_COUNT_MAX)
    return 0


class WireAdapter:
    format: WireFormat
    # The version segments the gateway's paths take (``/<type>/v1/...``).
    path_versions: tuple[str, ...] = ("v1",)
    # Statuses as this API names its errors.
    error_types: dict[int, str] = {}
    # (method, path after /v1) -> endpoint; and a model's own entry, ``GET /models/{model}``.
    ROUTES: dict[tuple[str, str], Endpoint] = {}
    MODEL = Endpoint("models.retrieve", "GET", model_in="path", listing=True)
    # The response header that names the service tier a call was served on, where the API
    # says it there rather than in the body (Gemini); None: none.
    tier_header: bytes | None = None

    def match(self, method: str, rest: str) -> Match | None:
        route = self.ROUTES.get((method, rest.rstrip("/")))
        if route:
            return Match(route)
        if method == "GET" and (model := _model_in_path(rest)):
            return Match(self.MODEL, model)
        return None

    def error(self, status: int, message: str, code: str = "") -> bytes:
        raise NotImplementedError

    def limit_headers(
        self, unit: str, limit: int, resets_at: datetime, now: datetime
    ) -> list[tuple[bytes, bytes]]:
        """The headers of a call refused by a budget or rate limit: when to try again, and
        where the SDKs read them, the provider's own rate-limit headers. A budget's refusal
        says not to retry: it does not come back in seconds (the SDKs retry a 429 unless
        told not to)."""
        wait = max(1, math.ceil((resets_at - now).total_seconds()))
        headers = [(b"retry-after", b"%d" % wait)]
        if unit == "usd":
            headers.append((b"x-should-retry", b"false"))
        elif unit in ("requests", "tokens"):
            headers += self.rate_limit_headers(unit, limit, wait, resets_at)
        return headers

    def rate_limit_headers(
        self, unit: str, limit: int, wait: int, resets_at: datetime
    ) -> list[tuple[bytes, bytes]]:
        return []

    def unknown_model(self, model: str) -> str:
        """What this API says of a model it does not have (in its own words)."""
        return f"The model `{model}` does not exist or you do not have access to it."

    def is_streaming(self, match: Match, body: dict[str, Any] | None) -> bool:
        if match.streaming_by_path:
            return True
        return bool(body and body.get("stream") is True and match.endpoint.streams)

    def usage_from_body(self, data: Any) -> Usage:
        raise NotImplementedError

    def stream_reader(self, client_wants_usage: bool, endpoint: str = "") -> StreamReader:
        """What watches a stream of ``endpoint`` go by."""
        raise NotImplementedError

    def billed_searches(self, model: str, searches: int) -> int:
        """Of the web searches a call to ``model`` ran, how many the provider bills."""
        return searches

    # The body fields, in this API, that cap the tokens a call may generate.
    output_cap_fields: tuple[str, ...] = ()

    def asked_output_tokens(self, body: dict[str, Any] | None) -> int | None:
        """The most output tokens the call asks the model for; None: it does not say."""
        for name in self.output_cap_fields:
            value = (body or {}).get(name)
            if type(value) is int and value > 0:
                return value
        return None

    def tier_variants(self, served: bytes) -> tuple[str, ...]:
        """The price variants of the service tier ``tier_header`` named."""
        return ()

    def prepare_body(
        self, match: Match, body: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """The body to send upstream (None: unchanged) and whether the client asked for usage."""
        return None, True

    def models_listing(self, models: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
        raise NotImplementedError

    def model_entry(self, identifier: str, name: str, created: int) -> dict[str, Any]:
        """One model as this API describes it, alone (``GET models/{model}``) or listed."""
        raise NotImplementedError


def _model_in_path(rest: str) -> str:
    """The model a ``/models/{model}`` path names ("" for none). OpenAI-compatible model ids
    may hold slashes (OpenRouter's ``openai/gpt-4o``), which the SDKs send encoded."""
    return rest.rstrip("/").removeprefix("/models/") if rest.startswith("/models/") else ""


EVENT_BOUNDARY = re.compile(rb"\r?\n\r?\n")
EVENT_BOUNDARY_KEPT = re.compile(rb"(\r?\n\r?\n)")
MAX_PARTIAL_EVENT = 64 * 1024


def _end_of_last_event(data: bytes, before: int | None = None) -> int:
    """Where the last complete event in ``data`` (or in ``data[:before]``) ends, after its
    blank line, or -1.

    Two byte searches instead of a regular expression: this runs on every chunk."""
    blank = data.rfind(b"\n\n", 0, before)
    blank_crlf = data.rfind(b"\n\r\n", 0, before)
    return max(blank + 2 if blank >= 0 else -1, blank_crlf + 3 if blank_crlf >= 0 else -1)


def _data_of(events: list[bytes]) -> list[Any]:
    """The JSON data lines of server-sent events (any that does not parse is passed over)."""
    parsed = []
    for event in events:
        for line in event.splitlines():
            if line.startswith(b"data:"):
                try:
                    parsed.append(orjson.loads(line[5:]))
                except ValueError:
                    continue
    return parsed


class StreamReader:
    """Watches a stream go by: returns what to forward, keeps the usage-bearing events."""

    usage_marker = b'"usage"'  # a cheap test before the pattern, on every chunk
    usage_pattern = re.compile(rb'"usage":\s*\{')
    keep_last_only = False
    # What only a stream's last event holds: once it is relayed, the call has succeeded,
    # whatever the client does next (SDKs close the connection as soon as they read it).
    # Byte searches, one a chunk mostly (a regular expression cost ~20k instructions a chunk).
    final_markers: tuple[bytes, ...] = ()

    def __init__(self) -> None:
        self.kept: list[bytes] = []
        self._tail = b""
        self.finished = False

    def _see_end(self, complete: bytes) -> None:
        if not self.finished:
            for marker in self.final_markers:
                if marker in complete:
                    self.finished = True
                    return

    def _complete_events(self, chunk: bytes) -> bytes:
        """The whole events completed by ``chunk`` (the partial rest waits for more)."""
        data = self._tail + chunk if self._tail else chunk
        end = _end_of_last_event(data)
        if end < 0:
            self._tail = data if len(data) <= MAX_PARTIAL_EVENT else b""
            return b""
        self._tail = data[end:]
        return data[:end]

    def _usage_start(self, complete: bytes) -> int:
        """Where the first event of ``complete`` that carries usage starts, or -1. The
        events before it are passed over whole: a burst of many events is split from there
        only (the usage comes last in most streams)."""
        if self.usage_marker not in complete:  # the cheap test first (most chunks)
            return -1
        found = self.usage_pattern.search(complete)
        return -1 if found is None else max(_end_of_last_event(complete, found.start()), 0)

    def _keep_usage(self, events: bytes) -> None:
        found = [e for e in EVENT_BOUNDARY.split(events) if self.usage_pattern.search(e)]
        if found:
            self.kept = found[-1:] if self.keep_last_only else [*self.kept, *found]

    def feed(self, chunk: bytes) -> bytes:
        complete = self._complete_events(chunk)
        self._see_end(complete)
        start = self._usage_start(complete)
        if start >= 0:
            self._keep_usage(complete[start:])
        return chunk

    def finish(self) -> bytes:
        """Anything held back, once the stream has ended."""
        return b""

    def events(self) -> list[Any]:
        return _data_of(self.kept)

    def usage(self) -> Usage:
        raise NotImplementedError


# -- OpenAI ---------------------------------------------------------------------------------


OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    426: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def openai_usage(usage_block: Any) -> Usage:
    if not isinstance(usage_block, dict):
        return Usage()
    if "prompt_tokens" in usage_block:  # chat completions
        total_in = _int(usage_block.get("prompt_tokens"))
        out = _int(usage_block.get("completion_tokens"))
        details = usage_block.get("prompt_tokens_details") or {}
    else:  # responses
        total_in = _int(usage_block.get("input_tokens"))
        out = _int(usage_block.get("output_tokens"))
        details = usage_block.get("input_tokens_details") or {}
    cached = written = 0
    if isinstance(details, dict):
        cached = _int(details.get("cached_tokens"))
        # OpenRouter and Vercel (for models that cache on request, such as Claude) also say
        # how much of the prompt was written to the cache: priced as cache writes, not input.
        reported = details.get("cache_write_tokens")
        written = _int(reported) if reported else 0  # no call when absent, as from OpenAI
    usage = Usage(max(total_in - cached - written, 0), out, cached, written, reported=True)
    # OpenRouter counts the web searches a call ran (its own, or the model's) here.
    server_tools = usage_block.get("server_tool_use")
    if isinstance(server_tools, dict):
        usage.web_searches = _int(server_tools.get("web_search_requests"))
    return usage


# The service tiers OpenAI prices apart (newer models name the priority tier "fast"), and
# those at the usual prices. Any other tier it names is priced by no factor: unknown.
OPENAI_PRICED_TIERS = {
    "flex": ("flex",),
    "priority": ("priority",),
    "fast": ("priority",),
    "ultrafast": ("ultrafast",),
}
OPENAI_USUAL_TIERS = frozenset({"default", "auto", "scale", "standard"})


def openai_answer_usage(answer: Any) -> Usage:
    """The usage of a whole answer (chat completion, or response; or a stream's chunk that
    carries the usage): its usage block, the service tier it ran on, and for a response the
    web searches it ran, each one an item of its output."""
    if not isinstance(answer, dict):
        return Usage()
    usage = openai_usage(answer.get("usage"))
    tier = answer.get("service_tier")  # OpenAI names it on every answer, "default" mostly
    if type(tier) is str and tier not in OPENAI_USUAL_TIERS:
        usage.price_variants = OPENAI_PRICED_TIERS.get(tier, ("unknown",))
    output = answer.get("output")  # none in a chat completion
    if isinstance(output, list) and not usage.web_searches:  # counted once, not twice
        for item in output:
            if isinstance(item, dict) and item.get("type") == "web_search_call":
                usage.web_searches += 1
    return usage


class OpenAIStreamReader(StreamReader):
    """Chat completions and responses streams. When the gateway asked for usage on the
    client's behalf, the usage-only chunk is held back from the client."""

    empty_choices = re.compile(rb'"choices":\s*\[\]')
    # Chat and completions end with [DONE]; the Responses API with its response's last state.
    final_markers: tuple[bytes, ...] = (b"[DONE]",)
    # The Responses API ends with its response's last state, and sends no [DONE].
    RESPONSES_FINAL = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')

    def __init__(self, client_wants_usage: bool, responses: bool = False) -> None:
        super().__init__()
        self.strip_usage = not client_wants_usage
        self._pending = b""
        if responses:
            self.final_markers = self.RESPONSES_FINAL

    def feed(self, chunk: bytes) -> bytes:
        if not self.strip_usage:
            return super().feed(chunk)
        # Forward whole events only, without the usage the client did not ask for: the
        # usage-only chunk dropped, a usage on a chunk with choices taken off it.
        data = self._pending + chunk if self._pending else chunk
        end = _end_of_last_event(data)
        if end < 0:
            self._pending = data
            return b""
        complete, self._pending = data[:end], data[end:]
        self._see_end(complete)
        start = self._usage_start(complete)
        if start < 0:
            return complete
        tail = complete[start:]
        self._keep_usage(tail)
        parts = EVENT_BOUNDARY_KEPT.split(tail)  # event, blank line, event, ..., rest
        kept = []
        for event, blank in zip(parts[::2], parts[1::2], strict=False):
            if self.usage_pattern.search(event):
                if self.empty_choices.search(event):
                    continue
                event = _without_usage(event)
            kept.append(event + blank)
        return complete[:start] + b"".join(kept) + parts[-1]

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def usage(self) -> Usage:
        found = Usage()
        for event in self.events():
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("usage"), dict):  # chat: the last chunk
                found = openai_answer_usage(event)
            response = event.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                found = openai_answer_usage(response)
        return found


def _without_usage(event: bytes) -> bytes:
    """A chunk's event with its usage taken off (some servers put the usage on the last chunk
    that has choices, even when the client did not ask for it)."""
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:])
            except ValueError:
                lines.append(line)
                continue
            if isinstance(data, dict):
                data.pop("usage", None)
            line = b"data: " + orjson.dumps(data)
        lines.append(line)
    return b"\n".join(lines)


class OpenAIWire(WireAdapter):
    format = WireFormat.OPENAI
    CHAT = Endpoint("chat.completions", "POST")
    # The older completions API: what editors' autocomplete (fill-in-the-middle) calls.
    COMPLETIONS = Endpoint("completions", "POST")
    RESPONSES = Endpoint("responses", "POST")
    # Codex's remote compaction of a long conversation: a model call, answered whole.
    COMPACT = Endpoint("responses.compact", "POST", streams=False)
    INPUT_TOKENS = Endpoint("responses.input_tokens", "POST", metered=False, streams=False)
    MODELS = Endpoint("models", "GET", model_in="none", listing=True)
    ROUTES = {
        ("POST", "/chat/completions"): CHAT,
        ("POST", "/completions"): COMPLETIONS,
        ("POST", "/responses"): RESPONSES,
        ("POST", "/responses/compact"): COMPACT,
        ("POST", "/responses/input_tokens"): INPUT_TOKENS,
        ("GET", "/models"): MODELS,
    }

    # Chat Completions (the current field, then the legacy one), then Responses.
    output_cap_fields = ("max_completion_tokens", "max_tokens", "max_output_tokens")

    def rate_limit_headers(
        self, unit: str, limit: int, wait: int, resets_at: datetime
    ) -> list[tuple[bytes, bytes]]:
        # x-ratelimit-{limit,remaining,reset}-{requests,tokens}; reset as a duration ("23s")
        return [
            (b"x-ratelimit-limit-" + unit.encode(), b"%d" % limit),
            (b"x-ratelimit-remaining-" + unit.encode(), b"0"),
            (b"x-ratelimit-reset-" + unit.encode(), b"%ds" % wait),
        ]

    def error(self, status: int, message: str, code: str = "") -> bytes:
        kind = OPENAI_ERROR_TYPES.get(status, "api_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": code or None}}
        return orjson.dumps(body)

    def prepare_body(
        self, match: Match, body: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, bool]:
        endpoint = match.endpoint
        if endpoint is not self.CHAT and endpoint is not self.COMPLETIONS:
            return None, True
        if not body or body.get("stream") is not True:
            return None, True
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return None, True
        # Every stream is metered: ask for usage even when the client did not.
        extra = options if isinstance(options, dict) else {}
        return {**body, "stream_options": {**extra, "include_usage": True}}, False

    def usage_from_body(self, data: Any) -> Usage:
        return openai_answer_usage(data)

    def stream_reader(self, client_wants_usage: bool, endpoint: str = "") -> StreamReader:
        return OpenAIStreamReader(client_wants_usage, responses=endpoint == "responses")

    def models_listing(self, models: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_entry(*model) for model in models]}

    def model_entry(self, identifier: str, name: str, created: int) -> dict[str, Any]:
        return {"id": identifier, "object": "model", "created": created, "owned_by": "llmcp"}


# -- Anthropic ------------------------------------------------------------------------------

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    426: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}


def anthropic_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    # The writes by how long their entries are kept; in the total above, never beyond it.
    by_ttl = usage.get("cache_creation")
    hour = _int(by_ttl.get("ephemeral_1h_input_tokens")) if isinstance(by_ttl, dict) else 0
    server_tools = usage.get("server_tool_use")
    searches = server_tools.get("web_search_requests") if isinstance(server_tools, dict) else 0
    return Usage(
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        _int(usage.get("cache_read_input_tokens")),
        cache_write,
        min(hour, cache_write),
        _int(searches),
        _anthropic_variants(usage),
        reported=True,
    )


def _anthropic_variants(usage: dict[str, Any]) -> tuple[str, ...]:
    """Fast mode (speed "fast") and US-only inference (inference_geo "us"), where the usage
    says the call ran so: each costs more on the models that offer it. Anything else
    ("standard", "global", absent) is the usual prices."""
    variants: tuple[str, ...] = ()
    if usage.get("speed") == "fast":
        variants += ("fast",)
    if usage.get("inference_geo") == "us":
        variants += ("us_inference",)
    return variants


class AnthropicStreamReader(StreamReader):
    final_markers = (b"message_stop",)

    def usage(self) -> Usage:
        found = Usage()
        for event in self.events():
            if not isinstance(event, dict):
                continue
            usage = event.get("usage")
            if event.get("type") == "message_start":
                usage = (event.get("message") or {}).get("usage")
            if not isinstance(usage, dict):
                continue
            # message_start has the input side; message_delta the final output (and, in
            # newer API versions, the input side again).
            seen = anthropic_usage(usage)
            found = Usage(
                seen.input_tokens or found.input_tokens,
                seen.output_tokens or found.output_tokens,
                seen.cache_read_tokens or found.cache_read_tokens,
                seen.cache_write_tokens or found.cache_write_tokens,
                # message_delta repeats the total but not its split by ttl.
                seen.cache_write_1h_tokens or found.cache_write_1h_tokens,
                seen.web_searches or found.web_searches,
                # message_start says where and how fast; message_delta may say it again.
                found.price_variants
                + tuple(v for v in seen.price_variants if v not in found.price_variants),
                reported=True,
            )
        return found


class AnthropicWire(WireAdapter):
    format = WireFormat.ANTHROPIC
    MESSAGES = Endpoint("messages", "POST")
    COUNT_TOKENS = Endpoint("messages.count_tokens", "POST", metered=False, streams=False)
    MODELS = Endpoint("models", "GET", model_in="none", listing=True)
    ROUTES = {
        ("POST", "/messages"): MESSAGES,
        ("POST", "/messages/count_tokens"): COUNT_TOKENS,
        ("GET", "/models"): MODELS,
    }

    output_cap_fields = ("max_tokens",)

    def unknown_model(self, model: str) -> str:
        return f"model: {model}. This model is not available here."

    def rate_limit_headers(
        self, unit: str, limit: int, wait: int, resets_at: datetime
    ) -> list[tuple[bytes, bytes]]:
        # anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}; reset in RFC 3339
        prefix = b"anthropic-ratelimit-" + unit.encode()
        return [
            (prefix + b"-limit", b"%d" % limit),
            (prefix + b"-remaining", b"0"),
            (prefix + b"-reset", resets_at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()),
        ]

    def error(self, status: int, message: str, code: str = "") -> bytes:
        error: dict[str, Any] = {
            "type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
            "message": message,
        }
        if code:
            error["code"] = code
        return orjson.dumps({"type": "error", "error": error})

    def usage_from_body(self, data: Any) -> Usage:
        return anthropic_usage(data.get("usage") if isinstance(data, dict) else None)

    def stream_reader(self, client_wants_usage: bool, endpoint: str = "") -> StreamReader:
        return AnthropicStreamReader()

    def models_listing(self, models: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
        data = [self.model_entry(*model) for model in models]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def model_entry(self, identifier: str, name: str, created: int) -> dict[str, Any]:
        return {
            "type": "model",
            "id": identifier,
            "display_name": name,
            "created_at": _iso(created),
        }


def _iso(timestamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- Google ---------------------------------------------------------------------------------

GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    426: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
GOOGLE_MODEL_CALL = re.compile(
    r"^/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$"
)
GOOGLE_MODEL = re.compile(r"^/models/([^/:]+)/?$")
GEMINI_PRICED_TIERS = {b"flex": ("flex",), b"priority": ("priority",)}
# Gemini 1.x and 2.x: Google bills Search grounding per grounded prompt, not per query.
GEMINI_BILLED_PER_PROMPT = re.compile(r"^(?:models/)?gemini-[12](?:[.-]|$)")


def google_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    cached = _int(usage.get("cachedContentTokenCount"))
    prompt = _int(usage.get("promptTokenCount"))
    # What a server-side tool (Google Search, URL context, code execution) fed the model is
    # counted apart from the prompt, and billed as input: often far more than the prompt.
    tool_prompt = _int(usage.get("toolUsePromptTokenCount"))
    fresh = min(max(prompt - cached, 0) + tool_prompt, TOKEN_COUNT_MAX)
    thoughts = _int(usage.get("thoughtsTokenCount"))
    output = min(_int(usage.get("candidatesTokenCount")) + thoughts, TOKEN_COUNT_MAX)
    return Usage(fresh, output, cached, 0, reported=True)


def google_search_queries(answer: Any) -> set[tuple[int, str]]:
    """The Google Search queries run for an answer or a stream's chunk (Google bills grounding
    per query), as (candidate, query) pairs, from its candidates' grounding metadata."""
    queries: set[tuple[int, str]] = set()
    candidates = answer.get("candidates") if isinstance(answer, dict) else None
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
        asked = grounding.get("webSearchQueries") if isinstance(grounding, dict) else None
        if isinstance(asked, list):
            index = candidate.get("index")
            index = index if type(index) is int else position
            queries.update((index, query) for query in asked if isinstance(query, str))
    return queries


class GoogleStreamReader(StreamReader):
    usage_marker = b'"usageMetadata"'
    usage_pattern = re.compile(rb'"usageMetadata":\s*\{')
    # Each chunk carries the running total: the last one is the final usage.
    keep_last_only = True
    searches_marker = b'"webSearchQueries"'
    # Only a candidate's last chunk says why it finished.
    final_markers = (b'"finishReason"',)

    def __init__(self) -> None:
        super().__init__()
        # The search queries named so far. A stream may name them in one chunk or spread
        # over several, and may repeat them: each distinct query counts once.
        self.queries: set[tuple[int, str]] = set()

    def feed(self, chunk: bytes) -> bytes:
        complete = self._complete_events(chunk)
        self._see_end(complete)
        start = self._usage_start(complete)
        if start >= 0:
            self._keep_usage(complete[start:])
        if self.searches_marker in complete:  # a byte search on every chunk; rarely true
            named = [e for e in EVENT_BOUNDARY.split(complete) if self.searches_marker in e]
            for event in _data_of(named):
                self.queries |= google_search_queries(event)
        return chunk

    def usage(self) -> Usage:
        found = Usage()
        for event in self.events():
            if isinstance(event, dict):
                found = google_usage(event.get("usageMetadata"))
        found.web_searches = min(len(self.queries), TOKEN_COUNT_MAX)
        return found


class GoogleWire(WireAdapter):
    format = WireFormat.GOOGLE
    # The Gemini SDKs (and the tools built on them, such as Gemini CLI) call v1beta unless
    # told otherwise: both name the same endpoints here.
    path_versions = ("v1", "v1beta")
    # Google streams by path alone: a "stream" field in a body streams nothing.
    GENERATE = Endpoint("generateContent", "POST", model_in="path", streams=False)
    STREAM = Endpoint("streamGenerateContent", "POST", model_in="path")
    COUNT_TOKENS = Endpoint("countTokens", "POST", model_in="path", metered=False, streams=False)
    MODELS = Endpoint("models", "GET", model_in="none", listing=True)
    MODEL = Endpoint("models.get", "GET", model_in="path", listing=True)
    CALLS = {
        "generateContent": GENERATE,
        "streamGenerateContent": STREAM,
        "countTokens": COUNT_TOKENS,
    }

    def asked_output_tokens(self, body: dict[str, Any] | None) -> int | None:
        config = (body or {}).get("generationConfig") or (body or {}).get("generation_config")
        value = config.get("maxOutputTokens") if isinstance(config, dict) else None
        return value if type(value) is int and value > 0 else None

    def match(self, method: str, rest: str) -> Match | None:
        if method == "GET":
            if rest.rstrip("/") == "/models":
                return Match(self.MODELS)
            found = GOOGLE_MODEL.match(rest)
            return Match(self.MODEL, found.group(1)) if found else None
        found = GOOGLE_MODEL_CALL.match(rest)
        if method != "POST" or not found:
            return None
        endpoint = self.CALLS[found.group(2)]
        return Match(endpoint, found.group(1), endpoint is self.STREAM)

    def unknown_model(self, model: str) -> str:
        return f"models/{model} is not found here, or is not supported for this method."

    def error(self, status: int, message: str, code: str = "") -> bytes:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUSES.get(status, "INTERNAL"),
        }
        if code:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "llmcp",
                }
            ]
        return orjson.dumps({"error": error})

    def usage_from_body(self, data: Any) -> Usage:
        if not isinstance(data, dict):
            return Usage()
        usage = google_usage(data.get("usageMetadata"))
        if "candidates" in data:
            usage.web_searches = min(len(google_search_queries(data)), TOKEN_COUNT_MAX)
        return usage

    def stream_reader(self, client_wants_usage: bool, endpoint: str = "") -> StreamReader:
        return GoogleStreamReader()

    # Gemini serves a call on the tier asked for (flex at half the usual prices, priority at
    # 75 to 100% more) unless it must fall back, and names the tier served in this header.
    tier_header = b"x-gemini-service-tier"

    def tier_variants(self, served: bytes) -> tuple[str, ...]:
        if served in (b"standard", b"default", b""):
            return ()
        return GEMINI_PRICED_TIERS.get(served, ("unknown",))

    def billed_searches(self, model: str, searches: int) -> int:
        """Gemini 3 and later are billed per search query; Gemini 2.x and older per prompt
        grounded, however many queries it ran (an alias such as ``gemini-flash-latest``
        names the newest models, billed per query)."""
        if searches > 1 and GEMINI_BILLED_PER_PROMPT.match(model):
            return 1
        return searches

    def models_listing(self, models: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
        return {"models": [self.model_entry(*model) for model in models]}

    def model_entry(self, identifier: str, name: str, created: int) -> dict[str, Any]:
        return {
            "name": f"models/{identifier}",
            "displayName": name,
            "supportedGenerationMethods": [
                "generateContent",
                "streamGenerateContent",
                "countTokens",
            ],
        }


ADAPTERS: dict[WireFormat, WireAdapter] = {
    WireFormat.OPENAI: OpenAIWire(),
    WireFormat.ANTHROPIC: AnthropicWire(),
    WireFormat.GOOGLE: GoogleWire(),
}


def adapter_for_headers(headers: dict[bytes, bytes]) -> WireAdapter:
    """For errors before the provider type is known: guess the caller from its auth header."""
    if b"x-goog-api-key" in headers:
        return ADAPTERS[WireFormat.GOOGLE]
    if b"x-api-key" in headers or b"anthropic-version" in headers:
        return ADAPTERS[WireFormat.ANTHROPIC]
    return ADAPTERS[WireFormat.OPENAI]

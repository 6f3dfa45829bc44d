"""What the fake "model" says to a request, and the pieces every format builds on: usage
blocks, error bodies, server-sent events and AWS event-stream frames."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .asked import TAG

CACHE_READ_TOKENS = 4
CACHE_WRITE_TOKENS = 2
# What a Google server-side tool (Search, URL context) "fed the model", reported apart from
# the prompt as toolUsePromptTokenCount, when the request turns such a tool on.
GOOGLE_TOOL_PROMPT_TOKENS = 250
GOOGLE_SERVER_TOOLS = ("googleSearch", "google_search", "urlContext", "url_context")
# The searches the "model" runs when a request turns a web search tool on: Anthropic's
# web_search_*, OpenAI's web_search (Responses), Google Search grounding.
WEB_SEARCH_QUERIES = ("fake search one", "fake search two")
# A request whose system prompt holds this is answered with a chat title (the chats' title
# prompt starts with it; a test checks they agree). Coding agents' own prompts mention
# titles too, so the word alone is not enough.
TITLE_REQUEST = "Write a title of at most six words"
FAKE_TITLE = "Fake chat title"


@dataclass
class ToolCall:
    """A call the "model" asks the client to make: a tool it offered, with arguments."""

    name: str
    arguments: dict[str, Any]
    id: str = "call_fake_1"

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()


@dataclass
class Answer:
    """What the fake "model" says, and the usage it reports, for one request."""

    text: str
    input_tokens: int
    chunks: list[str] = field(default_factory=list)
    tool_call: ToolCall | None = None

    @property
    def output_tokens(self) -> int:
        called = len(self.tool_call.arguments_json) // 4 + 1 if self.tool_call else 0
        return len(self.chunks) + called


def compose_answer(
    prompt: str,
    system: str,
    chunks: int,
    *,
    tool_result: str | None = None,
    tool_call: ToolCall | None = None,
    json_schema: dict[str, Any] | None = None,
) -> Answer:
    """The reply: JSON that follows the schema when structured output is asked for; a title
    when asked for one; what a tool said, once the agent sends its result; a short lead-in
    to a tool call it asks for; else the prompt said back."""
    clean = TAG.sub("", prompt).strip()
    if json_schema is not None:
        text = orjson.dumps(value_for(json_schema)).decode()
        tool_call = None
    elif TITLE_REQUEST in system:
        text = FAKE_TITLE
    elif tool_result is not None:
        text = f"Tool said: {' '.join(tool_result.split())[:200]}"
        tool_call = None
    elif tool_call is not None:
        text = f"Calling {tool_call.name}."
    else:
        text = f"You said: {clean[:200]}" if clean else "Hello from the fake provider."
    size = max(1, -(-len(text) // chunks))
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    while len(parts) < chunks:
        parts.append(".")
    input_tokens = 10 + len(clean.split()) + len(system.split())
    return Answer("".join(parts), input_tokens, parts, tool_call)


def value_for(schema: dict[str, Any]) -> Any:
    """The plainest value a JSON schema allows (an object gets its required properties):
    what a model asked for structured output answers."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {
            name: value_for(properties.get(name) or {})
            for name in required
            if isinstance(properties.get(name, {}), dict)
        }
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "fake"


def tool_arguments(schema: dict[str, Any] | None, given: dict[str, str]) -> dict[str, Any]:
    """Arguments for a tool with ``schema``: what the tag gave, typed as the schema says (a
    ``command`` that is a list runs in bash), and a plain value for each other required
    property."""
    properties = (schema or {}).get("properties") or {}
    required = (schema or {}).get("required") or []
    arguments: dict[str, Any] = {}
    for name in [*given, *(n for n in required if n not in given)]:
        kind = (properties.get(name) or {}).get("type", "string")
        value = given.get(name)
        if kind == "array":
            if value is None:
                arguments[name] = []
            elif name in ("command", "cmd", "argv"):
                arguments[name] = ["bash", "-lc", value]
            else:
                arguments[name] = _json_or(value, [value])
        elif kind in ("integer", "number"):
            arguments[name] = _json_or(value or "1", 1)
        elif kind == "boolean":
            arguments[name] = value in ("1", "true", "yes")
        elif kind == "object":
            arguments[name] = _json_or(value or "{}", {})
        else:
            arguments[name] = value if value is not None else "fake"
    return arguments


def _json_or(text: str, default: Any) -> Any:
    try:
        return orjson.loads(text)
    except ValueError:
        return default


# -- usage blocks --------------------------------------------------------------------------


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


# -- framing -------------------------------------------------------------------------------


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


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` in at most ``pieces`` consecutive parts (a tool call's arguments, streamed)."""
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


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


def path_model(path: str) -> str:
    """The model a path names (``/models/{model}:…``, Bedrock's ``/model/{model}/…``)."""
    from urllib.parse import unquote

    found = re.search(r"/models?/([^/:]+)", path)
    return unquote(found.group(1)) if found else ""

"""What a request asks the fake provider for: its recorded form, the faults and tool calls it
asks for (headers, or a ``[[fake: ...]]`` tag in the prompt), and what it says in each API's
shape (the prompt, a tool's result, the tools it offers)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

TAG = re.compile(r"\[\[fake:([^\]]*)\]\]")
# The names a tag or an x-fake-* header gives faults by; any other name in a tag is an
# argument of the tool call it asks for.
CONTROL_NAMES = frozenset(
    {
        "status",
        "delay",
        "chunk-delay",
        "chunks",
        "garble",
        "reset",
        "hang",
        "stall",
        "echo-key",
        "tool",
        "headers",
        "json-stream",
        "usage-on-content",
    }
)


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
    # The tool to call (its name) and the arguments the tag gave.
    tool: str = ""
    tool_arguments: dict[str, str] = field(default_factory=dict)
    # Answer a stream request with one JSON body, as some OpenAI-compatible servers do.
    json_stream: bool = False
    # Put the usage on the last chunk that has choices (as some servers do), not on a chunk
    # of its own.
    usage_on_content: bool = False

    @classmethod
    def read(cls, headers: dict[str, str], text: str, default_chunk_delay: float) -> Control:
        values = {k[len("x-fake-") :]: v for k, v in headers.items() if k.startswith("x-fake-")}
        tagged: dict[str, str] = {}
        for tag in TAG.findall(text):
            for part in tag.split(";"):
                name, _, value = part.strip().partition("=")
                if name:
                    tagged[name.strip()] = value.strip() or "1"
        values.update(tagged)
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
        control.tool = values.get("tool", "")
        control.tool_arguments = {k: v for k, v in tagged.items() if k not in CONTROL_NAMES}
        control.json_stream = "json-stream" in values
        control.usage_on_content = "usage-on-content" in values
        return control


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            text_of(part.get("text", "")) if isinstance(part, dict) else str(part)
            for part in content
        )
    return ""


def last_text_of(content: Any) -> str:
    """The text a person typed last in a message: a list of parts (coding agents put their
    reminders first and the prompt last) gives its last text part."""
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return texts[-1] if texts else ""
    return text_of(content)


def prompt_of(body: Any) -> tuple[str, str]:
    """(last user text, system text) of an OpenAI, Anthropic, Responses or Google body."""
    if not isinstance(body, dict):
        return "", ""
    system = text_of(body.get("system") or body.get("instructions") or "")
    if "messages" in body and isinstance(body["messages"], list):
        users = [m for m in body["messages"] if isinstance(m, dict)]
        system += " ".join(
            text_of(m.get("content")) for m in users if m.get("role") in ("system", "developer")
        )
        user = [m for m in users if m.get("role") == "user"]
        return (last_text_of(user[-1].get("content")) if user else ""), system
    if "prompt" in body:  # OpenAI's completions (autocomplete, fill-in-the-middle)
        prompt = body["prompt"]
        if isinstance(prompt, list):
            prompt = prompt[-1] if prompt else ""
        return text_of(prompt), system
    if "input" in body:
        value = body["input"]
        if isinstance(value, list):
            messages = [i for i in value if isinstance(i, dict) and i.get("role") == "user"]
            value = messages[-1].get("content", "") if messages else ""
        return last_text_of(value), system
    if "contents" in body and isinstance(body["contents"], list) and body["contents"]:
        last = body["contents"][-1]
        parts = last.get("parts", []) if isinstance(last, dict) else []
        instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
        if isinstance(instruction, dict):
            system += text_of(instruction.get("parts", []))
        return last_text_of(parts), system
    return "", system


def tool_result_last(body: Any) -> str | None:
    """The text of a tool's result when that is the request's last turn (the agent ran the
    tool the model asked for), in any of the four shapes; else None."""
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        last = messages[-1]
        if last.get("role") == "tool":  # OpenAI chat
            return text_of(last.get("content"))
        content = last.get("content")
        if last.get("role") == "user" and isinstance(content, list):  # Anthropic
            results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
            if results:
                inner = results[-1].get("content")
                return inner if isinstance(inner, str) else text_of(inner)
    items = body.get("input")
    last_item = items[-1] if isinstance(items, list) and items else None
    if isinstance(last_item, dict) and last_item.get("type") in (
        "function_call_output",
        "custom_tool_call_output",
    ):
        output = last_item.get("output")
        return output if isinstance(output, str) else text_of(output)
    contents = body.get("contents")
    if isinstance(contents, list) and contents and isinstance(contents[-1], dict):
        for part in contents[-1].get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
                return orjson.dumps(part["functionResponse"].get("response")).decode()
    return None


def tool_schema(body: Any, name: str) -> dict[str, Any] | None:
    """The JSON schema of the arguments of the tool ``name`` the request offers, if any."""
    tools = body.get("tools") if isinstance(body, dict) else None
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        declared = [tool.get("function") or tool, *(tool.get("functionDeclarations") or [])]
        for item in declared:
            if isinstance(item, dict) and item.get("name") == name:
                for key in ("parameters", "input_schema", "parametersJsonSchema"):
                    if isinstance(item.get(key), dict):
                        return item[key]
                return {}
    return None


def provided_key(headers: dict[str, str]) -> str:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:]
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or headers.get("api-key", "")


def cache_controls(body: Any) -> list[dict[str, Any]]:
    """Every ``cache_control`` marker in a request, however deep."""
    if isinstance(body, dict):
        control = body.get("cache_control")
        found = [control] if isinstance(control, dict) else []
        return found + [c for value in body.values() for c in cache_controls(value)]
    if isinstance(body, list):
        return [c for item in body for c in cache_controls(item)]
    return []


def json_asked(body: Any) -> dict[str, Any] | None:
    """The JSON schema an answer must follow when the request asks for structured output
    (``{}``: any JSON), in any of the four shapes; else None."""
    if not isinstance(body, dict):
        return None
    config = body.get("generationConfig") or {}
    if isinstance(config, dict) and config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
        return schema if isinstance(schema, dict) else {}
    formats = [body.get("response_format"), (body.get("text") or {}).get("format")]
    formats += [body.get("output_format"), (body.get("output_config") or {}).get("format")]
    for wanted in formats:
        if isinstance(wanted, dict) and wanted.get("type") in ("json_schema", "json_object"):
            schema = wanted.get("schema") or (wanted.get("json_schema") or {}).get("schema") or {}
            return schema if isinstance(schema, dict) else {}
    return None

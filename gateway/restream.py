"""Answers in the shape the caller asked for, when the upstream gave another.

- An upstream that ignores ``"stream": true`` (some OpenAI-compatible servers do) answers
  one JSON body: ``as_stream`` turns it into the stream the caller's SDK reads, event for
  event as each API documents its streams (OpenAI's chat and completions chunks, the
  Responses API's events, Anthropic's message events, Gemini's chunks).
- Gemini's ``streamGenerateContent`` without ``alt=sse`` answers one JSON array; the gateway
  always asks upstream for events (it meters them), so ``JsonArrayFramer`` writes them back
  as the array, element by element.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from providers.registry import WireFormat


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def as_stream(
    wire: WireFormat, endpoint: str, answer: dict[str, Any], client_wants_usage: bool
) -> bytes:
    """The events a stream of ``answer`` (a whole answer of ``endpoint``) would have sent."""
    if wire == WireFormat.ANTHROPIC:
        return _anthropic_events(answer)
    if wire == WireFormat.GOOGLE:
        return _sse(answer)
    if endpoint == "responses":
        return _responses_events(answer)
    return _chat_chunks(answer, client_wants_usage)


def _chat_chunks(answer: dict[str, Any], client_wants_usage: bool) -> bytes:
    """Chat completions (a message per choice) or completions (a text per choice)."""
    completions = answer.get("object") == "text_completion"
    base = {
        "id": answer.get("id", ""),
        "object": "text_completion" if completions else "chat.completion.chunk",
        "created": answer.get("created", int(time.time())),
        "model": answer.get("model", ""),
    }
    events = []
    for choice in answer.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        index, finish = choice.get("index", 0), choice.get("finish_reason")
        if completions:
            text_choice = {"index": index, "text": choice.get("text") or "", "logprobs": None}
            events.append(_sse({**base, "choices": [{**text_choice, "finish_reason": finish}]}))
            continue
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        for key in ("content", "refusal", "reasoning_content", "reasoning"):
            if message.get(key) is not None:
                delta[key] = message[key]
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            delta["tool_calls"] = [
                {**call, "index": position}
                for position, call in enumerate(calls)
                if isinstance(call, dict)
            ]
        events.append(
            _sse({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        )
        events.append(
            _sse({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
        )
    if client_wants_usage and answer.get("usage") is not None:
        events.append(_sse({**base, "choices": [], "usage": answer["usage"]}))
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def _responses_events(response: dict[str, Any]) -> bytes:
    """The Responses API's events for a completed response: created and in progress, each
    output item added, its content (text deltas, call arguments) and done, then completed."""
    unfinished = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": unfinished}),
        ("response.in_progress", {"response": unfinished}),
    ]
    for index, item in enumerate(response.get("output") or []):
        if not isinstance(item, dict):
            continue
        where = {"item_id": item.get("id", ""), "output_index": index}
        kind = item.get("type")
        started = {**item, "status": "in_progress"}
        if kind == "message":
            started["content"] = []
        elif kind == "function_call":
            started["arguments"] = ""
        events.append(("response.output_item.added", {"output_index": index, "item": started}))
        if kind == "message":
            for position, part in enumerate(item.get("content") or []):
                if not isinstance(part, dict):
                    continue
                at = {**where, "content_index": position}
                empty = {**part, "text": ""} if "text" in part else part
                events.append(("response.content_part.added", {**at, "part": empty}))
                if part.get("type") == "output_text":
                    text = part.get("text") or ""
                    events.append(
                        ("response.output_text.delta", {**at, "delta": text, "logprobs": []})
                    )
                    events.append(
                        ("response.output_text.done", {**at, "text": text, "logprobs": []})
                    )
                events.append(("response.content_part.done", {**at, "part": part}))
        elif kind == "function_call":
            arguments = item.get("arguments") or ""
            events.append(("response.function_call_arguments.delta", {**where, "delta": arguments}))
            events.append(
                ("response.function_call_arguments.done", {**where, "arguments": arguments})
            )
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    final = response.get("status")
    last = {"failed": "response.failed", "incomplete": "response.incomplete"}.get(
        final if isinstance(final, str) else "", "response.completed"
    )
    events.append((last, {"response": response}))
    return b"".join(
        _sse({"type": name, "sequence_number": number, **data}, name)
        for number, (name, data) in enumerate(events)
    )


def _anthropic_events(message: dict[str, Any]) -> bytes:
    """message_start, each content block (started empty, its whole content as one delta,
    stopped), message_delta with the stop reason and output usage, message_stop."""
    usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events = [_sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message.get("content") or []):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        opened = dict(block)
        delta: dict[str, Any] | None = None
        if kind == "text":
            opened["text"] = ""
            delta = {"type": "text_delta", "text": block.get("text") or ""}
        elif kind in ("tool_use", "server_tool_use"):
            opened["input"] = {}
            delta = {
                "type": "input_json_delta",
                "partial_json": orjson.dumps(block.get("input") or {}).decode(),
            }
        elif kind == "thinking":
            opened["thinking"], opened["signature"] = "", ""
            delta = {"type": "thinking_delta", "thinking": block.get("thinking") or ""}
        start_event = {"type": "content_block_start", "index": index, "content_block": opened}
        events.append(_sse(start_event, "content_block_start"))
        if delta is not None:
            delta_event = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(_sse(delta_event, "content_block_delta"))
        if kind == "thinking" and block.get("signature"):
            signature = {"type": "signature_delta", "signature": block["signature"]}
            events.append(
                _sse(
                    {"type": "content_block_delta", "index": index, "delta": signature},
                    "content_block_delta",
                )
            )
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    ending = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
    }
    events.append(_sse({"type": "message_delta", "delta": ending, "usage": usage}, "message_delta"))
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return b"".join(events)


class JsonArrayFramer:
    """Gemini's stream events written back as the one JSON array Gemini answers without
    ``alt=sse``: ``[`` and the first element, ``,\\r\\n`` and each next one, ``]``."""

    __slots__ = ("_held", "_opened")

    def __init__(self) -> None:
        self._held = b""
        self._opened = False

    def feed(self, data: bytes) -> bytes:
        data = self._held + data if self._held else data
        end = max(data.rfind(b"\n\n") + 2, data.rfind(b"\n\r\n") + 3, 0)
        self._held = data[end:]
        out = []
        for line in data[:end].splitlines():
            if line.startswith(b"data:"):
                out.append((b",\r\n" if self._opened else b"[") + line[5:].strip())
                self._opened = True
        return b"".join(out)

    def finish(self) -> bytes:
        rest = self.feed(b"\n\n") if self._held else b""
        return rest + (b"]" if self._opened else b"[]")

    def error(self, event: bytes) -> bytes:
        """A stream's closing error event, as the array's last element."""
        return self.feed(event) + b"]"

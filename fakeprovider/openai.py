"""OpenAI's APIs as the fake answers them: chat completions and completions (streamed as
chunks), responses (streamed event for event as the Responses API documents it, so the
SDKs' stream helpers and Codex read it), compaction and token counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .answers import (
    CACHE_READ_TOKENS,
    openai_usage,
    responses_usage,
    split_text,
    sse,
)
from .exchange import ExchangeBase, respond


class OpenAIAnswers(ExchangeBase):
    # -- chat completions and completions ------------------------------------------------

    def _chat_message(self) -> dict[str, Any]:
        call = self.answer.tool_call
        if call is None:
            return {"role": "assistant", "content": self.answer.text}
        tool = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }
        return {"role": "assistant", "content": self.answer.text, "tool_calls": [tool]}

    def _finish_reason(self) -> str:
        return "tool_calls" if self.answer.tool_call else "stop"

    async def chat(self) -> None:
        choice = {
            "index": 0,
            "message": self._chat_message(),
            "finish_reason": self._finish_reason(),
        }
        await self._openai_answer("chatcmpl-fake", "chat.completion", choice)

    async def chat_stream(self) -> None:
        def choice(part: str | None, finish: str | None) -> dict[str, Any]:
            if part is None:  # the first chunk names the role
                delta: dict[str, Any] = {"role": "assistant", "content": ""}
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
        """A chat or completions stream: (a role chunk,) a chunk per part, the tool call's
        chunks, a finish chunk, and the usage chunk only if stream_options asked for it
        (``usage-on-content``: on the finish chunk, which has choices, as some servers do)."""
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
        usage = openai_usage(self.answer, self.cache_writes)

        def chunk(delta_choice: dict[str, Any], **more: Any) -> bytes:
            return sse({**base, "choices": [delta_choice], **extra, **more})

        events = [chunk(choice(None, None))] if first else []
        events += [chunk(choice(part, None)) for part in self.answer.chunks]
        call = self.answer.tool_call
        if call is not None and first:  # chat only: completions have no tools
            opening = {
                "index": 0,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(
                chunk({"index": 0, "delta": {"tool_calls": [opening]}, "finish_reason": None})
            )
            for piece in split_text(call.arguments_json, 3):
                more = {"index": 0, "function": {"arguments": piece}}
                events.append(
                    chunk({"index": 0, "delta": {"tool_calls": [more]}, "finish_reason": None})
                )
        finish = {**choice("", self._finish_reason() if first else "stop")}
        if self.control.usage_on_content:
            events.append(chunk(finish, usage=usage))
        else:
            events.append(chunk(finish))
            if include_usage:
                events.append(sse({**base, "choices": [], "usage": usage}))
        events.append(sse("[DONE]"))
        await self.stream(events, "text/event-stream", garbled=b"data: {not json\n\n")

    # -- responses -----------------------------------------------------------------------

    def _output_items(self, done: bool) -> list[dict[str, Any]]:
        """The response's output items: each search the model ran, the message, the call."""
        status = "completed" if done else "in_progress"
        items: list[dict[str, Any]] = [
            {
                "type": "web_search_call",
                "id": f"ws_fake_{index}",
                "status": status,
                "action": {"type": "search", "query": query},
            }
            for index, query in enumerate(self.searches)
        ]
        items.append(
            {
                "type": "message",
                "id": "msg_fake",
                "status": status,
                "role": "assistant",
                "content": (
                    [{"type": "output_text", "text": self.answer.text, "annotations": []}]
                    if done
                    else []
                ),
            }
        )
        call = self.answer.tool_call
        if call is not None:
            items.append(
                {
                    "type": "function_call",
                    "id": "fc_fake_1",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments_json if done else "",
                    "status": status,
                }
            )
        return items

    def _response(self, status: str, usage: bool) -> dict[str, Any]:
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model,
            "service_tier": self.service_tier,
            "output": self._output_items(done=True) if status == "completed" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": responses_usage(self.answer, self.cache_writes) if usage else None,
        }

    async def responses(self) -> None:
        await respond(self.send, 200, self._response("completed", usage=True))

    async def responses_stream(self) -> None:
        """Every event the Responses API sends, in its order: the response created and in
        progress; for each output item its ``output_item.added``, its content (a message's
        content part and text deltas, a call's argument deltas, a search's progress) and its
        ``output_item.done``; then ``response.completed`` with the usage."""
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": self._response("in_progress", usage=False)}),
            ("response.in_progress", {"response": self._response("in_progress", usage=False)}),
        ]
        started, finished = self._output_items(done=False), self._output_items(done=True)
        for index, (item, done) in enumerate(zip(started, finished, strict=True)):
            events.append(("response.output_item.added", {"output_index": index, "item": item}))
            where = {"item_id": item["id"], "output_index": index}
            if item["type"] == "message":
                part = {"type": "output_text", "text": "", "annotations": []}
                at = {**where, "content_index": 0}
                events.append(("response.content_part.added", {**at, "part": part}))
                for piece in self.answer.chunks:
                    delta = {**at, "delta": piece, "logprobs": []}
                    events.append(("response.output_text.delta", delta))
                text = self.answer.text
                events.append(("response.output_text.done", {**at, "text": text, "logprobs": []}))
                events.append(
                    ("response.content_part.done", {**at, "part": {**part, "text": text}})
                )
            elif item["type"] == "function_call":
                arguments = done["arguments"]
                for piece in split_text(arguments, 3):
                    events.append(
                        ("response.function_call_arguments.delta", {**where, "delta": piece})
                    )
                events.append(
                    ("response.function_call_arguments.done", {**where, "arguments": arguments})
                )
            else:  # a web search, in its three steps
                for step in ("in_progress", "searching", "completed"):
                    events.append((f"response.web_search_call.{step}", where))
            events.append(("response.output_item.done", {"output_index": index, "item": done}))
        events.append(("response.completed", {"response": self._response("completed", usage=True)}))
        framed = [
            sse({"type": name, "sequence_number": number, **data}, name)
            for number, (name, data) in enumerate(events)
        ]
        await self.stream(framed, "text/event-stream", garbled=b"event: x\ndata: {oops\n\n")

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

    async def input_tokens(self) -> None:
        """OpenAI's Responses input token count: the whole prompt, cached part included."""
        counted = self.answer.input_tokens + CACHE_READ_TOKENS
        await respond(self.send, 200, {"object": "response.input_tokens", "input_tokens": counted})

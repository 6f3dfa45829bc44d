"""Anthropic's Messages API as the fake answers it (streamed event for event, tool use
included), its token count, and AWS Bedrock's invoke APIs over the same messages (AWS
event-stream framing)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote

from .answers import anthropic_usage, compose_answer, eventstream_frame, split_text, sse
from .asked import prompt_of
from .exchange import ExchangeBase, respond


class AnthropicAnswers(ExchangeBase):
    def _content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": self.answer.text}]
        call = self.answer.tool_call
        if call is not None:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_fake_1",
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        return blocks

    def _stop_reason(self) -> str:
        return "tool_use" if self.answer.tool_call else "end_turn"

    def _message(self) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self._content(),
            "stop_reason": self._stop_reason(),
            "stop_sequence": None,
            "usage": {
                **anthropic_usage(self.answer, hour_cache=self.hour_cache),
                **self._server_tools(),
                **self.inference,
            },
        }

    def _server_tools(self) -> dict[str, Any]:
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
        events.append({"type": "content_block_stop", "index": 0})
        call = self.answer.tool_call
        if call is not None:
            block = {"type": "tool_use", "id": "toolu_fake_1", "name": call.name, "input": {}}
            events.append({"type": "content_block_start", "index": 1, "content_block": block})
            events += [
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }
                for piece in split_text(call.arguments_json, 3)
            ]
            events.append({"type": "content_block_stop", "index": 1})
        events += [
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(), "stop_sequence": None},
                "usage": {"output_tokens": self.answer.output_tokens, **self._server_tools()},
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

    async def count_tokens(self) -> None:
        await respond(self.send, 200, {"input_tokens": self.answer.input_tokens})

    # -- AWS Bedrock ---------------------------------------------------------------------

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

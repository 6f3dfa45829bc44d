"""Google's Gemini API as the fake answers it: generateContent, streamGenerateContent (server-
sent events with ``alt=sse``, else one JSON array written element by element, as Google
does), function calls, Search grounding and token counts."""

from __future__ import annotations

from typing import Any

import orjson

from .answers import (
    CACHE_READ_TOKENS,
    GOOGLE_SERVER_TOOLS,
    GOOGLE_TOOL_PROMPT_TOKENS,
    google_usage,
    sse,
)
from .exchange import ExchangeBase, respond


class GoogleAnswers(ExchangeBase):
    def _candidate(
        self, text: str, finished: bool, searched: int = 0, call: bool = False
    ) -> dict[str, Any]:
        """``searched``: how many of the search queries to name in its grounding metadata;
        ``call``: with the function call the model makes."""
        parts: list[dict[str, Any]] = [{"text": text}]
        if call and self.answer.tool_call is not None:
            tool = self.answer.tool_call
            parts.append({"functionCall": {"name": tool.name, "args": tool.arguments}})
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
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
        candidate = self._candidate(
            self.answer.text, finished=True, searched=len(self.searches), call=True
        )
        await respond(
            self.send,
            200,
            {
                "candidates": [candidate],
                "usageMetadata": google_usage(self.answer, tool_prompt=self._tool_prompt()),
                "modelVersion": self.model,
            },
            headers=self._gemini_tier(),
        )

    async def generate_stream(self) -> None:
        parts = self.answer.chunks
        tool_prompt = self._tool_prompt()
        last = len(parts) - 1
        # The grounding metadata grows over the last chunks, each naming the queries so far.
        searched = [max(len(self.searches) - (last - i), 0) for i in range(len(parts))]
        chunks = [
            {
                "candidates": [
                    self._candidate(part, finished=i == last, searched=searched[i], call=i == last)
                ],
                "usageMetadata": google_usage(self.answer, i + 1, tool_prompt),
                "modelVersion": self.model,
            }
            for i, part in enumerate(parts)
        ]
        if "alt=sse" in self.record.query:
            events = [sse(chunk) for chunk in chunks]
            content_type = "text/event-stream"
        else:  # one JSON array, written element by element
            events = [
                (b"[" if i == 0 else b",\r\n") + orjson.dumps(chunk)
                for i, chunk in enumerate(chunks)
            ]
            events.append(b"]")
            content_type = "application/json"
        await self.stream(
            events, content_type, garbled=b"data: [[[\n\n", headers=self._gemini_tier()
        )

    async def google_count_tokens(self) -> None:
        counted = self.answer.input_tokens + CACHE_READ_TOKENS
        details = [{"modality": "TEXT", "tokenCount": counted}]
        await respond(self.send, 200, {"totalTokens": counted, "promptTokensDetails": details})

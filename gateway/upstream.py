"""How a call in a type's wire format is addressed to the provider: its URL, its body, and
(for AWS Bedrock) how its stream is turned back into the wire format's events.

Chosen by the registry's ``upstream`` style; used by the gateway and by direct chat calls.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any
from urllib.parse import quote

import orjson

from providers.registry import AZURE_API_VERSION, UpstreamStyle

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


class UnsupportedCall(Exception):
    """This provider type has no equivalent of the requested endpoint."""


class GarbledStream(Exception):
    """The upstream stream cannot be decoded."""


class GarbledAnswer(Exception):
    """The upstream answer cannot be turned into the wire format's."""


class Dialect:
    def url(self, api_root: str, rest: str, query: str, *, model: str | None, stream: bool) -> str:
        if rest.startswith("/models/") and rest.endswith(":streamGenerateContent"):
            # Google streams one JSON array unless asked for server-sent events.
            params = [p for p in query.split("&") if p and not p.startswith("alt=")]
            query = "&".join([*params, "alt=sse"])
        return f"{api_root}{rest}" + (f"?{query}" if query else "")

    def body(self, body: dict[str, Any] | None, raw: bytes, *, rest: str, stream: bool) -> bytes:
        return raw if body is None else orjson.dumps(body)

    def answer(self, rest: str, content: bytes) -> bytes:
        """A successful, whole answer in the wire format (raises ``GarbledAnswer``)."""
        return content

    def decoder(self) -> EventStreamToSSE | None:
        """A converter for the response stream, if it is not already the wire format's."""
        return None


class AzureDialect(Dialect):
    def url(self, api_root: str, rest: str, query: str, *, model: str | None, stream: bool) -> str:
        if "/openai/deployments/" in api_root and "api-version=" not in query:
            query = "&".join(p for p in (query, f"api-version={AZURE_API_VERSION}") if p)
        return super().url(api_root, rest, query, model=model, stream=stream)


class BedrockDialect(Dialect):
    """Anthropic Messages in, Bedrock's runtime API out: the model moves into the path, the
    body names Bedrock's Anthropic version, streams arrive as AWS event-stream frames, and
    ``count_tokens`` becomes Bedrock's CountTokens over the same invoke body."""

    ACTIONS = {"/messages": "invoke", "/messages/count_tokens": "count-tokens"}

    def url(self, api_root: str, rest: str, query: str, *, model: str | None, stream: bool) -> str:
        action = self.ACTIONS.get(rest.rstrip("/"))
        if action is None or not model:
            raise UnsupportedCall("AWS Bedrock has no equivalent of this endpoint.")
        if stream and action == "invoke":
            action = "invoke-with-response-stream"
        return f"{api_root}/model/{quote(model, safe='')}/{action}"

    def body(self, body: dict[str, Any] | None, raw: bytes, *, rest: str, stream: bool) -> bytes:
        source = body if body is not None else orjson.loads(raw)
        translated = {k: v for k, v in source.items() if k not in ("model", "stream")}
        translated.setdefault("anthropic_version", BEDROCK_ANTHROPIC_VERSION)
        if rest.rstrip("/") != "/messages/count_tokens":
            return orjson.dumps(translated)
        # Counted as the invoke call it would be; an invoke body needs max_tokens, which
        # Anthropic's count_tokens does not take and which does not change the count.
        translated.setdefault("max_tokens", 1)
        invoke_body = base64.b64encode(orjson.dumps(translated)).decode()
        return orjson.dumps({"input": {"invokeModel": {"body": invoke_body}}})

    def answer(self, rest: str, content: bytes) -> bytes:
        if rest.rstrip("/") != "/messages/count_tokens":
            return content
        try:
            counted = orjson.loads(content)["inputTokens"]
        except (ValueError, KeyError, TypeError) as error:
            raise GarbledAnswer("the token count holds no inputTokens") from error
        if type(counted) is not int:
            raise GarbledAnswer("the token count is not a whole number")
        return orjson.dumps({"input_tokens": counted})

    def decoder(self) -> EventStreamToSSE:
        return EventStreamToSSE()


DIALECTS: dict[str, Dialect] = {
    UpstreamStyle.STANDARD: Dialect(),
    UpstreamStyle.AZURE: AzureDialect(),
    UpstreamStyle.BEDROCK: BedrockDialect(),
}


class EventStreamToSSE:
    """AWS event-stream frames (Bedrock) -> Anthropic server-sent events, incrementally."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = []
        while len(self._buffer) >= 16:
            total, headers_length = struct.unpack(">II", self._buffer[:8])
            if total < 16 or total > 16 * 1024 * 1024:
                raise GarbledStream("an event-stream frame has an impossible length")
            if len(self._buffer) < total:
                break
            frame, self._buffer = self._buffer[:total], self._buffer[total:]
            out.append(self._convert(frame, headers_length))
        return b"".join(out)

    def finish(self) -> bytes:
        if self._buffer:
            raise GarbledStream("the stream ended in the middle of a frame")
        return b""

    def _convert(self, frame: bytes, headers_length: int) -> bytes:
        (prelude_crc,) = struct.unpack(">I", frame[8:12])
        (message_crc,) = struct.unpack(">I", frame[-4:])
        if zlib.crc32(frame[:8]) != prelude_crc or zlib.crc32(frame[:-4]) != message_crc:
            raise GarbledStream("an event-stream frame failed its checksum")
        headers = _headers(frame[12 : 12 + headers_length])
        payload = frame[12 + headers_length : -4]
        try:
            data = orjson.loads(payload)
            if headers.get(":message-type") == "exception":
                error = {"type": "api_error", "message": str(data.get("message", "error"))}
                return _sse({"type": "error", "error": error})
            event = orjson.loads(base64.b64decode(data["bytes"]))
        except (ValueError, KeyError, TypeError) as error:
            raise GarbledStream("an event-stream frame holds no Anthropic event") from error
        return _sse(event)


def _sse(event: dict[str, Any]) -> bytes:
    body = json.dumps(event, separators=(",", ":"))
    return f"event: {event.get('type', 'message')}\ndata: {body}\n\n".encode()


def _headers(raw: bytes) -> dict[str, str]:
    headers, position = {}, 0
    while position < len(raw):
        name_length = raw[position]
        name = raw[position + 1 : position + 1 + name_length].decode()
        position += 1 + name_length
        kind = raw[position]
        position += 1
        if kind != 7:  # only string headers are used by Bedrock's stream
            raise GarbledStream("an event-stream header has an unexpected type")
        (length,) = struct.unpack(">H", raw[position : position + 2])
        headers[name] = raw[position + 2 : position + 2 + length].decode()
        position += 2 + length
    return headers

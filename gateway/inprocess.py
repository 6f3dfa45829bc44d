"""Calling the gateway from inside the server, with no network hop.

An ``httpx.AsyncClient`` over an ASGI transport to the gateway app. The caller's identity
(user and platform token) goes into the ASGI scope, never into a header: nothing an outside
caller sends can put it there. httpx's own ASGITransport waits for the whole response, so this
one hands the body over chunk by chunk, and tells the app the client went away when the
response is closed early (which closes the upstream call).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from routing.deployment import IN_PROCESS_GATEWAY_ORIGIN
from routing.routes import GatewayIdentity

from .app import IDENTITY_SCOPE_KEY, application

_END = object()


class _Body(httpx.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[Any], disconnect: asyncio.Event, task: Any) -> None:
        self.queue, self.disconnect, self.task = queue, disconnect, task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(str(item)) from item
            yield item

    async def aclose(self) -> None:
        self.disconnect.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 10)


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any, identity: GatewayIdentity) -> None:
        self.app, self.identity = app, identity

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (request.url.host, request.url.port or 80),
            "client": ("127.0.0.1", 0),
            IDENTITY_SCOPE_KEY: self.identity,
        }
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        disconnect = asyncio.Event()
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body"):
                    await chunks.put(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as error:  # the app failed: end the body with an error
                if not started.done():
                    started.set_exception(error)
                await chunks.put(error)
            finally:
                await chunks.put(_END)
                disconnect.set()

        task = asyncio.get_running_loop().create_task(run())
        status, headers = await started
        return httpx.Response(status, headers=headers, stream=_Body(chunks, disconnect, task))


def client(identity: GatewayIdentity, timeout: float = 600) -> httpx.AsyncClient:
    """A client for in-process gateway calls made on ``identity``'s behalf."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(application, identity),
        base_url=IN_PROCESS_GATEWAY_ORIGIN,
        timeout=timeout,
    )

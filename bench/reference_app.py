"""The benchmark's second reference line: the design the latency target was set against.

The target (0.5 ms added) came with a measured design: a raw ASGI gateway, one prepared async
psycopg query per request, aiohttp to the provider, usage rows batched off the request path;
quoted at 0.33 ms added on this kind of machine. This app is that design's request path on
today's machine: uvicorn, the gateway's own lookup query through psycopg (prepared), aiohttp
to the provider, the answer relayed (a stream chunk by chunk). Nothing else, like the floor;
unlike the floor, no CPU yields, since the quoted design had none. Measured in the same
rounds as the gateway, it says how fast today's machine is against the day of the quote.

    python -m uvicorn bench.reference_app:app   (with DATABASE_URL and BENCH_PROVIDER_URL set)
"""

from __future__ import annotations

from typing import Any

import aiohttp
import psycopg

from bench import lines  # before the project's modules: it sets Django up
from gateway.store import CALL_BY_LOOKUP_ID

_database: Any = None
_session: Any = None


async def _connections() -> tuple[Any, Any]:
    global _database, _session
    if _database is None:
        db = lines.database()
        _database = await psycopg.AsyncConnection.connect(
            dbname=db["name"],
            user=db["user"],
            password=db["password"],
            host=db["host"],
            port=db["port"],
            autocommit=True,
            application_name=lines.APPLICATION_NAME,
        )
        _session = aiohttp.ClientSession(auto_decompress=False)
    return _database, _session


async def _close() -> None:
    if _session is not None:
        await _session.close()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lines.lifespan(receive, send, on_shutdown=_close)
        return
    headers = dict(scope["headers"])
    body = (await receive())["body"]
    database, session = await _connections()
    cursor = await database.execute(CALL_BY_LOOKUP_ID, lines.lookup(headers), prepare=True)
    await cursor.fetchone()
    async with session.post(
        lines.UPSTREAM, data=body, headers=lines.upstream_headers(headers)
    ) as response:
        if lines.is_stream(body):
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            content = await response.read()
            await send(lines.answer_head(response.status, content))
            await send({"type": "http.response.body", "body": content})

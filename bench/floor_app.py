"""The benchmark's reference line: the least a gateway of this design does per call.

uvicorn serves it like the real gateway. For each call it runs the gateway's own lookup
query on asyncpg, calls the provider through ``lib.outbound`` with the central key, and
relays the answer (a stream chunk by chunk), yielding the CPU at the same two points as the
gateway (after a stream's first bytes, after a whole answer). There is no token check, no
credential decision, no header filtering, no usage row and no error handling: it is not a
gateway, only the floor under one. ``bench/gateway_bench.py`` measures it in the same rounds
as the gateway, so the difference is this project's per-call code, whatever the machine's
speed.

    python -m uvicorn bench.floor_app:app   (with DATABASE_URL and BENCH_PROVIDER_URL set)
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg

from bench import lines  # before the project's modules: it sets Django up
from gateway.store import CALL_BY_LOOKUP_ID_NUMBERED
from lib import outbound

_connection: Any = None


async def _database() -> Any:
    global _connection
    if _connection is None:
        db = lines.database()
        _connection = await asyncpg.connect(
            database=db["name"],
            user=db["user"],
            password=db["password"],
            host=db["host"],
            port=db["port"],
            server_settings={"application_name": lines.APPLICATION_NAME},
        )
    return _connection


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lines.lifespan(receive, send)
        return
    headers = dict(scope["headers"])
    body = (await receive())["body"]
    database = await _database()
    await database.fetchrow(CALL_BY_LOOKUP_ID_NUMBERED, *lines.lookup(headers))
    response = await outbound.request(
        "POST", lines.UPSTREAM, headers=lines.upstream_headers(headers), data=body
    )
    try:
        if lines.is_stream(body):
            start = {"type": "http.response.start", "status": response.status, "headers": []}
            started = False
            async for chunk in response.iter_chunks():
                if not started:
                    start["headers"] = [(b"content-type", b"text/event-stream")]
                    await send(start)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if not started:
                    os.sched_yield()
                    started = True
            await send({"type": "http.response.body", "body": b""})
        else:
            content = await response.read()
            await send(lines.answer_head(response.status, content))
            await send({"type": "http.response.body", "body": content})
            os.sched_yield()
    finally:
        response.release()

"""The benchmark's reference line: the least a gateway of this design does per call.

uvicorn serves it like the real gateway. For each call it runs the gateway's own lookup
query on asyncpg, calls the provider through ``lib.outbound`` with the central key, and
relays the answer (a stream chunk by chunk), yielding the CPU at the same two points as the
gateway (after a stream's first bytes, after a whole answer). There is no token check, no credential
decision, no header filtering, no usage row and no error handling: it is not a gateway,
only the floor under one. ``bench/gateway_bench.py`` measures it in the same rounds as the
gateway, so the difference is this project's per-call code, whatever the machine's speed.

    python -m uvicorn bench.floor_app:app   (with DATABASE_URL and FLOOR_PROVIDER_URL set)
"""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

import asyncpg  # noqa: E402
from django.db import connections  # noqa: E402

from gateway.store import CALL_BY_LOOKUP_ID_NUMBERED  # noqa: E402
from lib import outbound  # noqa: E402

PROVIDER_TYPE = "openai-compatible"
MODEL = "bench-model"
CENTRAL_KEY = "sk-bench-central"
UPSTREAM = os.environ.get("FLOOR_PROVIDER_URL", "") + "/chat/completions"

_connection: Any = None


async def _database() -> Any:
    global _connection
    if _connection is None:
        db = connections["default"].settings_dict
        _connection = await asyncpg.connect(
            database=db["NAME"],
            user=db.get("USER") or None,
            host=db.get("HOST") or None,
            port=int(db["PORT"]) if db.get("PORT") else None,
            # Named by the benchmark, which does not count it as one of the gateway's.
            server_settings={"application_name": os.environ.get("FLOOR_APPLICATION_NAME", "")},
        )
    return _connection


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    headers = dict(scope["headers"])
    token = headers[b"authorization"].decode("latin-1").removeprefix("Bearer ")
    body = (await receive())["body"]
    database = await _database()
    await database.fetchrow(CALL_BY_LOOKUP_ID_NUMBERED, PROVIDER_TYPE, MODEL, token[6:14])
    response = await outbound.request(
        "POST",
        UPSTREAM,
        headers={
            "authorization": f"Bearer {CENTRAL_KEY}",
            "content-type": "application/json",
            "x-fake-chunks": headers.get(b"x-fake-chunks", b"1").decode("latin-1"),
        },
        data=body,
    )
    try:
        if b'"stream": true' in body or b'"stream":true' in body:
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
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(content)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
            os.sched_yield()
    finally:
        response.release()

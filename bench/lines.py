"""What the benchmark's two reference lines (``floor_app`` and ``reference_app``) share: the
benchmark's provider, model and central key, the database settings, the lifespan, and how a
call is read and passed to the fake provider. Importing it sets Django up."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.db import connections  # noqa: E402

from tokens.token_format import lookup_id_of  # noqa: E402

PROVIDER_TYPE = "openai-compatible"
MODEL = "bench-model"
CENTRAL_KEY = "sk-bench-central"
UPSTREAM = os.environ.get("BENCH_PROVIDER_URL", "") + "/chat/completions"
# Named by the benchmark, which does not count these connections as the gateway's.
APPLICATION_NAME = os.environ.get("BENCH_APPLICATION_NAME", "")


def database() -> dict[str, Any]:
    """The database's name, user, password, host and port (None where not set)."""
    db = connections["default"].settings_dict
    return {
        "name": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": int(db["PORT"]) if db.get("PORT") else None,
    }


def lookup(headers: dict[bytes, bytes]) -> tuple[str, str, str]:
    """The gateway's lookup query's parameters for a call with these headers."""
    token = headers[b"authorization"].decode("latin-1").removeprefix("Bearer ")
    return PROVIDER_TYPE, MODEL, lookup_id_of(token) or ""


def upstream_headers(headers: dict[bytes, bytes]) -> dict[str, str]:
    return {
        "authorization": f"Bearer {CENTRAL_KEY}",
        "content-type": "application/json",
        "x-fake-chunks": headers.get(b"x-fake-chunks", b"1").decode("latin-1"),
    }


def is_stream(body: bytes) -> bool:
    return b'"stream": true' in body or b'"stream":true' in body


def answer_head(status: int, content: bytes) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(content)),
        ],
    }


async def lifespan(
    receive: Any, send: Any, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.shutdown" and on_shutdown is not None:
            await on_shutdown()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return

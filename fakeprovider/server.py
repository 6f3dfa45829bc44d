"""Run the fake provider on a loopback port, in a thread (tests) or in the foreground."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from .app import FakeProvider


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread of this process
    (so a test can look at the app's own state); yields its base URL, e.g.
    http://127.0.0.1:PORT."""
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", lifespan="off", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running_fake_provider(chunk_delay: float = 0.0) -> Iterator[tuple[FakeProvider, str]]:
    """Yields the app (to read what it received) and its base URL, e.g. http://127.0.0.1:PORT."""
    fake = FakeProvider(chunk_delay=chunk_delay)
    with serve_in_thread(fake) as base:
        yield fake, base

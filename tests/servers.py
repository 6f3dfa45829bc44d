"""Real servers for tests: the app under uvicorn worker processes, on a free loopback port,
against the test database (committed data only, so use transactional tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CSRF_TOKEN = "x" * 32
# What the last server started by served_app wrote (its log), once it stopped.
last_output = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
        return f"postgres://{db.get('USER') or 'postgres'}@{host}:{port}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


@contextmanager
def served_app(workers: int = 4, serve_args: tuple[str, ...] = (), **env: str) -> Iterator[str]:
    """``manage.py serve`` with ``workers`` processes (and ``serve_args``); yields its base
    URL."""
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "DATABASE_POOL": "false",
        "LLMCP_ENCRYPTION_KEYS": settings.ENCRYPTION_KEYS,
        "SECRET_KEY": settings.SECRET_KEY,
        # Rows written a moment after each call, not 0.2 s: tests wait for them.
        "AI_GATEWAY_USAGE_BATCH_WAIT": "0.02",
        **env,
    }
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # A file, not a pipe: a chatty server must never block on a full pipe buffer.
    command = [sys.executable, "manage.py", "serve", "--port", str(port)]
    command += ["--workers", str(workers), *serve_args]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=log,  # uvicorn's access log, at info level
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{base}/healthz", process)
            yield base
        finally:
            global last_output
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            last_output = log.read().decode("utf-8", "replace")


def signed_in_client(base_url: str, user: Any) -> httpx.Client:
    """An HTTP client with ``user``'s session and a CSRF token, as a browser would have."""
    from django.test import Client

    django_client = Client()
    django_client.force_login(user)
    session = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return httpx.Client(
        base_url=base_url,
        cookies={settings.SESSION_COOKIE_NAME: session, settings.CSRF_COOKIE_NAME: CSRF_TOKEN},
        headers={"X-CSRFToken": CSRF_TOKEN},
        timeout=60,
    )


class ForwardingProxy:
    """An HTTP forward proxy on loopback, in a thread: each absolute-form request is sent on
    to its origin (on a connection of its own, closed after) and the answer relayed as it
    came. Records every request head it was asked."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.port = 0
        self._loop: Any = None
        self._stop: Any = None
        self._thread: Any = None

    async def _serve(self, reader: Any, writer: Any) -> None:
        import asyncio
        from urllib.parse import urlsplit

        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                request_line, _, rest = head.partition(b"\r\n")
                method, target, version = request_line.split(b" ")
                length = 0
                kept = []
                for line in rest.split(b"\r\n"):
                    name = line.partition(b":")[0].strip().lower()
                    if name == b"content-length":
                        length = int(line.partition(b":")[2])
                    if name and name not in (b"connection", b"proxy-authorization"):
                        kept.append(line)
                body = await reader.readexactly(length) if length else b""
                url = urlsplit(target.decode())
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                upstream_reader, upstream = await asyncio.open_connection(url.hostname, url.port)
                line = b"%s %s %s" % (method, path.encode(), version)
                upstream.write(b"\r\n".join([line, *kept, b"connection: close", b"", b""]) + body)
                while data := await upstream_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                upstream.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> ForwardingProxy:
        import asyncio
        import threading

        started = threading.Event()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with await asyncio.start_server(self._serve, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                started.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the forwarding proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

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
# What the last server started by served_app wrote on stderr (its log), once it stopped.
last_stderr = ""


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
def served_app(workers: int = 4, **env: str) -> Iterator[str]:
    """``manage.py serve`` with ``workers`` processes; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "DATABASE_POOL": "false",
        "LLMCP_ENCRYPTION_KEYS": settings.ENCRYPTION_KEYS,
        "SECRET_KEY": settings.SECRET_KEY,
        **env,
    }
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # A file, not a pipe: a chatty server must never block on a full pipe buffer.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{base}/healthz", process)
            yield base
        finally:
            global last_stderr
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            last_stderr = log.read().decode("utf-8", "replace")


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

"""Redis for the tests: the machine's (127.0.0.1:6379, as .ci/run checks), a database number
per test worker, emptied before each test; or a private server a test may stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.servers import free_port

MACHINE_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def machine_redis_url() -> str:
    """The machine's Redis, a database of this test worker's own (1-15), emptied; the test
    is skipped (failed in CI: REQUIRE_REDIS_TESTS) if it is not running."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    url = f"{MACHINE_REDIS}/{1 + int(worker or 0) % 15}"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        message = f"needs Redis at {MACHINE_REDIS} (as .ci/run checks)"
        if os.environ.get("REQUIRE_REDIS_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return url


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of the test's own (keeping nothing on disk), which it may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    process.kill()
                    raise
                time.sleep(0.05)
        client.close()
        try:
            yield url, process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()

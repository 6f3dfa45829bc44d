import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Serve the product and its AI Gateway with uvicorn. The configuration is checked "
        "once before any worker starts, so a bad setting is one line, not a restart loop."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="worker processes")
        parser.add_argument("--log-level", default="warning")
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For/Proto from --forwarded-allow-ips (behind a proxy)",
        )
        parser.add_argument("--forwarded-allow-ips", default="127.0.0.1")
        parser.add_argument(
            "--graceful-timeout",
            type=int,
            default=30,
            help="seconds calls in flight get to finish after SIGTERM before they are cut "
            "(streams end with an error event in the caller's format; every call keeps its "
            "usage row) (default: 30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        if options["graceful_timeout"] < 0:
            raise CommandError("--graceful-timeout cannot be negative")

        metrics_folder = _metrics_folder(options["workers"])
        try:
            self._serve(uvicorn, options)
        finally:
            if metrics_folder is not None:
                shutil.rmtree(metrics_folder, ignore_errors=True)

    def _serve(self, uvicorn: Any, options: dict[str, Any]) -> None:
        uvicorn.run(
            "config.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            log_level=options["log_level"],
            loop="uvloop",
            http="httptools",
            # WebSocket handshakes are only ever refused (Codex tries one before HTTP). The
            # wsproto implementation sends the refusal cleanly; websockets-sansio, uvicorn's
            # default, logs an error for each (uvicorn PR #3138).
            ws="wsproto",
            lifespan="on",
            proxy_headers=options["proxy_headers"],
            forwarded_allow_ips=options["forwarded_allow_ips"],
            # Below "info" nothing would be written: skip the work per request.
            access_log=options["log_level"] in ("trace", "debug", "info"),
            timeout_graceful_shutdown=options["graceful_timeout"],
            # No "server: uvicorn" on every answer: it tells callers nothing they need.
            server_header=False,
        )


def _metrics_folder(workers: int) -> str | None:
    """With metrics on and several workers, the folder where prometheus_client's
    multiprocess mode keeps each worker's figures: PROMETHEUS_MULTIPROC_DIR if set (emptied
    first: figures of an earlier run would add up with this one's), else a fresh one,
    removed at the end (returned). One worker keeps its figures in memory, unless the folder
    is set (emptied all the same)."""
    if not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS):
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return None
    if workers < 2:
        return None
    made = tempfile.mkdtemp(prefix="llmcp-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made

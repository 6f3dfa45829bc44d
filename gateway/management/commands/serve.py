from typing import Any

from django.core.management.base import CommandParser

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

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        uvicorn.run(
            "config.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            log_level=options["log_level"],
            loop="uvloop",
            http="httptools",
            lifespan="on",
            proxy_headers=options["proxy_headers"],
            forwarded_allow_ips=options["forwarded_allow_ips"],
            # Below "info" nothing would be written: skip the work per request.
            access_log=options["log_level"] in ("trace", "debug", "info"),
            timeout_graceful_shutdown=30,
            # No "server: uvicorn" on every answer: it tells callers nothing they need.
            server_header=False,
        )

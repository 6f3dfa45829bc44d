from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Serve the local fake provider (OpenAI, Anthropic, Google and Bedrock wire formats, "
        "streaming included) for demos, benchmarks and manual tests. It answers any key but "
        "one starting with sk-invalid, and records nothing to disk."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9999)
        parser.add_argument(
            "--chunk-delay",
            type=float,
            default=0.05,
            help="seconds between streamed chunks (default 0.05, so streaming is visible)",
        )
        parser.add_argument("--workers", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        import os

        import uvicorn

        os.environ["FAKE_PROVIDER_CHUNK_DELAY"] = str(options["chunk_delay"])
        self.stdout.write(
            f"Fake provider on http://{options['host']}:{options['port']} "
            f"(OpenAI: /v1, Anthropic: /, Google: /v1beta). Ctrl+C to stop.\n"
            "In a message, [[fake: chunk-delay=0.5; chunks=40]] streams the reply slowly, "
            "[[fake: status=503]] fails it, [[fake: tool=Bash; command=ls]] calls a tool "
            "(see docs/gateway.md, Local fake provider)."
        )
        uvicorn.run(
            "fakeprovider.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            log_level="warning",
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            proxy_headers=False,
        )

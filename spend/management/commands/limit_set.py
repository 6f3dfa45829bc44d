from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.commands._people import run
from lib.commands import OperatorCommand
from spend.services import limit_set

from ._target import RATE_OPTIONS, add_scope_arguments, count, scope_target


class Command(OperatorCommand):
    help = (
        "Set rate limits for everyone (the whole deployment), a group (its members' calls "
        "together), a person or a platform token: requests or tokens per minute (UTC), "
        "calls at once. Each given is set; others stay as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser, "rate limit")
        parser.add_argument(RATE_OPTIONS["requests"], metavar="N", help="requests per minute")
        parser.add_argument(RATE_OPTIONS["tokens"], metavar="N", help="tokens per minute")
        parser.add_argument(RATE_OPTIONS["calls"], metavar="N", help="calls running at once")

    def handle(self, *args: Any, **options: Any) -> None:
        asked = {
            unit: count(option, options[option.lstrip("-").replace("-", "_")])
            for unit, option in RATE_OPTIONS.items()
            if options[option.lstrip("-").replace("-", "_")] is not None
        }
        if not asked:
            raise CommandError("give at least one of " + ", ".join(RATE_OPTIONS.values()))
        target = scope_target(options)
        for unit, limit in asked.items():
            saved = run(
                lambda unit=unit, limit=limit: limit_set(
                    scope=options["scope"], unit=unit, limit=limit, actor=None, **target
                )
            )
            self.stdout.write(f"Rate limit set: {saved}.")

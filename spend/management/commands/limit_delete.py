from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from spend.models import RATE_UNITS, RateLimit
from spend.services import limit_delete

from ._target import add_scope_arguments, scope_target


class Command(OperatorCommand):
    help = "Remove a rate limit: calls stop counting against it at once."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser, "rate limit")
        parser.add_argument(
            "--kind",
            required=True,
            choices=[unit.value for unit in RATE_UNITS],
            help="requests or tokens per minute, or calls at once",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = scope_target(options)
        lookup = {"group": None, "user": None, "token": None, **target}
        rate_limit = RateLimit.objects.filter(
            scope=options["scope"], unit=options["kind"], **lookup
        ).first()
        if rate_limit is None:
            raise CommandError(f"no {options['kind']} limit for that scope (see limit_list)")
        described = str(rate_limit)
        limit_delete(rate_limit=rate_limit, actor=None)
        self.stdout.write(f"Rate limit removed: {described}.")

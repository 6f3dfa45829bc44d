from typing import Any

from django.core.management.base import CommandParser

from accounts.management.commands._people import run
from lib.commands import OperatorCommand
from spend.services import budget_set

from ._target import add_period_argument, add_scope_arguments, scope_target, usd


class Command(OperatorCommand):
    help = (
        "Set a budget in USD per day, week or month (UTC) for everyone, a group, a person or "
        "a platform token: a new one, or the one that scope has for that period changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        add_period_argument(parser)
        parser.add_argument("--limit", required=True, type=str, help="USD, e.g. 200 or 12.50")
        parser.add_argument(
            "--soft",
            action="store_true",
            help="let calls go on past the limit (the overrun is shown and audited); "
            "default: hard, calls that would pass it are refused",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = scope_target(options)
        budget = run(
            lambda: budget_set(
                scope=options["scope"],
                period=options["period"],
                limit_usd=usd(options["limit"]),
                hard=not options["soft"],
                actor=None,
                **target,
            )
        )
        kind = "hard" if budget.hard else "soft"
        self.stdout.write(f"Budget set: {budget} ({kind}).")

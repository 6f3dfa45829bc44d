from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from spend.models import Budget, Period
from spend.services import budget_delete

from ._target import add_period_argument, add_scope_arguments, scope_target


class Command(OperatorCommand):
    help = "Remove a budget: calls stop counting against it at once."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        add_period_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        target = scope_target(options)
        lookup = {"group": None, "user": None, "token": None, **target}
        budget = Budget.objects.filter(
            scope=options["scope"], period=options["period"], **lookup
        ).first()
        if budget is None:
            period = Period(options["period"]).label.lower()
            raise CommandError(f"no {period} budget for that scope (see budget_list)")
        described = str(budget)
        budget_delete(budget=budget, actor=None)
        self.stdout.write(f"Budget removed: {described}.")

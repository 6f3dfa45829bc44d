from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand
from spend.models import Budget
from spend.services import standings


class Command(OperatorCommand):
    help = "List budgets with what has been spent and held in their current period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = standings(Budget.objects.in_display_order())
        if options["json"]:
            self.write_json(
                [
                    {
                        "id": s.budget.pk,
                        "scope": s.budget.scope,
                        "for": s.budget.target_label,
                        "period": s.budget.period,
                        "limit_usd": str(s.budget.limit_usd),
                        "hard": s.budget.hard,
                        "spent_usd": str(s.spent),
                        "held_usd": str(s.reserved),
                        "unknown_usd": str(s.unknown),
                        "resets_at": s.resets_at.isoformat(),
                    }
                    for s in rows
                ]
            )
            return
        if not rows:
            self.stdout.write("No budgets yet: budget_set sets one.")
            return
        self.write_table(
            ["FOR", "PERIOD", "LIMIT", "KIND", "SPENT", "HELD", "USED", "RESETS"],
            [
                [
                    s.budget.target_label,
                    s.budget.period,
                    f"${s.budget.limit_usd:,}",
                    "hard" if s.budget.hard else "soft",
                    f"${s.spent:,.2f}" + (f" (${s.unknown:,.2f} unknown)" if s.unknown else ""),
                    f"${s.reserved:,.2f}",
                    f"{s.percent}%",
                    f"{s.resets_at:%Y-%m-%d %H:%M} UTC",
                ]
                for s in rows
            ],
        )

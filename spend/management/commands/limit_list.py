from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand
from spend.models import RateLimit
from spend.services import standings


class Command(OperatorCommand):
    help = (
        "List rate limits with what is used now: this minute's requests or tokens, calls running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = standings(RateLimit.objects.in_display_order())
        if options["json"]:
            self.write_json(
                [
                    {
                        "id": s.budget.pk,
                        "scope": s.budget.scope,
                        "for": s.budget.target_label,
                        "kind": s.budget.unit,
                        "limit": s.budget.limit_count,
                        "used": int(s.spent),
                        "held": int(s.reserved),
                    }
                    for s in rows
                ]
            )
            return
        if not rows:
            self.stdout.write("No rate limits yet: limit_set sets one.")
            return
        self.write_table(
            ["FOR", "LIMIT", "NOW", "USED"],
            [
                [s.budget.target_label, s.budget.limit_words, s.used_words, f"{s.percent}%"]
                for s in rows
            ],
        )

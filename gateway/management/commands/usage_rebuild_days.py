from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.models import UsageDay
from lib.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Sum the daily totals the usage pages read afresh from the usage rows. The database "
        "keeps them as rows are written and `usage_prune` deletes; run this after deleting "
        "usage rows by hand or restoring them from a dump taken without the trigger. Inserts "
        "wait while it runs (seconds per million rows)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="confirm")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError(
                "the gateway's usage rows wait while the daily totals are summed again; "
                "add --yes to confirm"
            )
        days = UsageDay.objects.rebuild()
        self.stdout.write(f"Summed {days:,} daily totals from the usage rows.")

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from gateway.models import UsageDay, UsageRecord
from lib.commands import OperatorCommand

BATCH = 10_000


class Command(OperatorCommand):
    help = (
        "Delete usage rows older than the last --keep-days days (days in UTC, today counted), "
        f"{BATCH:,} rows per transaction so the gateway's inserts never wait long behind it. "
        "Run it from cron to keep the usage table (and the Usage tab) at a steady size."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep-days",
            type=int,
            required=True,
            metavar="DAYS",
            help="how many days of calls to keep, today included (at least 1)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count the rows it would delete, delete none"
        )
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")

    def handle(self, *args: Any, **options: Any) -> None:
        keep_days: int = options["keep_days"]
        if keep_days < 1:
            raise CommandError("--keep-days must be at least 1")
        try:
            first_kept = timezone.now().date() - timedelta(days=keep_days - 1)
        except OverflowError:
            raise CommandError("--keep-days reaches back before the year 1") from None
        old = UsageRecord.objects.filter(created_at__lt=datetime.combine(first_kept, time.min, UTC))
        if options["dry_run"]:
            self.stdout.write(f"{old.count():,} usage rows from before {first_kept} would go.")
            return
        if not options["yes"]:
            raise CommandError(
                f"deleting the usage rows from before {first_kept} cannot be undone; "
                "add --yes to confirm (or --dry-run to count them)"
            )
        deleted = 0
        while True:
            batch = UsageRecord.objects.filter(id__in=old.order_by().values("id")[:BATCH])
            count, _ = batch.delete()
            if not count:
                break
            deleted += count
            if count == BATCH:
                self.stderr.write(f"  {deleted:,} deleted…")
        # Their daily sums go with them (whole days: the rows went by the day, in UTC too).
        UsageDay.objects.filter(day__lt=first_kept).delete()
        summary = f"{deleted:,} usage rows from before {first_kept}"
        if deleted:
            audit_record(
                actor=None,
                action=AuditAction.DELETE,
                obj=None,
                object_type=UsageRecord._meta.label_lower,
                object_repr=summary,
            )
        self.stdout.write(f"Deleted {summary}.")

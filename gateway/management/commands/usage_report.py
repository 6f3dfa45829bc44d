from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date

from gateway.forms import DEFAULT_DAYS
from gateway.models import UsageDay
from lib.commands import OperatorCommand

GROUPS = {
    "person": ("username",),
    "model": ("provider_type", "model_identifier"),
    "provider": ("provider_type",),
}


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        day = parse_date(text)
    except ValueError:
        day = None
    if day is None:
        raise CommandError(f"{option} must be a day as YYYY-MM-DD, not {text!r}")
    return day


def _usd(cost: Decimal | None) -> str:
    return "unknown" if cost is None else f"{cost:.4f}"


class Command(OperatorCommand):
    help = (
        "What calls through the AI Gateway cost, per person, model or provider, over the "
        f"last {DEFAULT_DAYS} days unless --since or --until say otherwise (days in UTC). "
        "Calls that spent tokens at unknown prices are counted apart (UNPRICED), never as free."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--by", choices=list(GROUPS), default="person", help="group by")
        parser.add_argument(
            "--since", help=f"first day, YYYY-MM-DD (default: {DEFAULT_DAYS} days ago)"
        )
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _day(options["since"], "--since")
        until = _day(options["until"], "--until")
        if since is None:
            since = timezone.now().date() - timedelta(days=DEFAULT_DAYS - 1)
        if until is not None and until < since:
            raise CommandError("--until is before --since")
        calls = UsageDay.objects.on_days(since, until)
        fields = GROUPS[options["by"]]
        groups = calls.grouped_by(*fields)
        totals = calls.totals()
        if options["json"]:
            self.write_json(
                {
                    "since": since.isoformat(),
                    "until": until.isoformat() if until else None,
                    "totals": totals,
                    "groups": groups,
                }
            )
            return
        if not groups:
            self.stdout.write(f"No calls through the AI Gateway since {since}.")
            return
        headers = [f.replace("_", " ").upper() for f in fields]
        headers += ["CALLS", "FAILED", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "SEARCHES"]
        headers += ["COST USD", "UNPRICED"]
        rows = [[*(group[f] or "(none)" for f in fields), *self._sums(group)] for group in groups]
        rows.append(["TOTAL", *[""] * (len(fields) - 1), *self._sums(totals)])
        self.write_table(headers, rows)

    @staticmethod
    def _sums(group: dict[str, Any]) -> list[Any]:
        counts = ("calls", "failed", "input", "output", "cache_read", "cache_write", "web_searches")
        return [*(group[name] for name in counts), _usd(group["cost"]), group["unpriced"]]

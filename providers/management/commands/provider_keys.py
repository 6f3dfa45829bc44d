from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from lib.commands import OperatorCommand
from providers.models import Provider

from ._args import provider_type_arg


class Command(OperatorCommand):
    help = (
        "List the central API keys of every provider (or of one): label, state (active, "
        "cooling down until, needs attention), last used and last error. Never the keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "type", nargs="?", type=provider_type_arg, help="only this provider type"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        providers = Provider.objects.prefetch_related("further_keys")
        if options["type"]:
            providers = providers.filter(type=options["type"])
        now = timezone.now()
        rows = [
            {
                "type": provider.type,
                "label": key.key_label,
                "state": str(key.key_health(now)),
                "cooling_until": key.key_cooling_until
                if key.key_cooling_until and key.key_cooling_until > now
                else None,
                "needs_attention": key.key_attention,
                "stored": str(key.key_state),  # type: ignore[attr-defined]
                "last_used_at": key.key_last_used_at,
                "last_error": key.key_last_error,
                "last_error_at": key.key_last_error_at,
            }
            for provider in providers
            for key in provider.central_keys()
        ]
        if options["json"]:
            self.write_json(rows)
            return
        if not rows:
            self.stdout.write("No central keys are stored.")
            return

        def when(value: Any) -> str:
            return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"

        def state(row: dict[str, Any]) -> str:
            if row["needs_attention"]:
                return f"needs attention: {row['needs_attention']}"
            if row["cooling_until"]:
                return f"cooling down until {when(row['cooling_until'])}"
            return "active"

        self.write_table(
            ("TYPE", "LABEL", "STATE", "LAST USED", "LAST ERROR"),
            [
                (
                    row["type"],
                    row["label"],
                    state(row),
                    when(row["last_used_at"]),
                    f"{row['last_error']} ({when(row['last_error_at'])})"
                    if row["last_error"]
                    else "-",
                )
                for row in rows
            ],
        )

from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand
from providers.models import Provider, ProviderStatus
from providers.registry import REGISTRY


class Command(OperatorCommand):
    help = "List every provider type with its status, key state, base URL and key policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        providers = {p.type: p for p in Provider.objects.all()}
        rows = []
        for provider_type, spec in REGISTRY.items():
            provider = providers.get(provider_type.value)
            rows.append(
                {
                    "type": provider_type.value,
                    "label": spec.label,
                    "status": provider.status if provider else ProviderStatus.NOT_CONFIGURED,
                    "key": provider.key_state if provider else "not_set",
                    "base_url": provider.base_url if provider else "",
                    "effective_base_url": provider.effective_base_url
                    if provider
                    else spec.default_base_url,
                    "enabled": provider.enabled if provider else False,
                    "central_key_enabled": provider.central_key_enabled if provider else None,
                    "user_keys_allowed": provider.user_keys_allowed if provider else None,
                    "central_key_fallback": provider.central_key_fallback if provider else None,
                }
            )
        if options["json"]:
            self.write_json(
                [{**row, "status": str(row["status"]), "key": str(row["key"])} for row in rows]
            )
            return

        def policy(row: dict[str, Any]) -> str:
            if row["central_key_enabled"] is None:
                return "-"
            parts = []
            if row["central_key_enabled"]:
                parts.append("central")
            if row["user_keys_allowed"]:
                parts.append("user+fallback" if row["central_key_fallback"] else "user")
            return ",".join(parts)

        self.write_table(
            ("TYPE", "STATUS", "KEY", "POLICY", "BASE URL"),
            [
                (
                    row["type"],
                    ProviderStatus(str(row["status"])).label.lower(),
                    str(row["key"]).replace("_", " "),
                    policy(row),
                    row["effective_base_url"] or "(required)",
                )
                for row in rows
            ],
        )

from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand
from models_catalog.models import ModelAlias, ModelConfig
from models_catalog.options import GENERAL_OPTIONS
from providers.management.commands._args import provider_type_arg


class Command(OperatorCommand):
    help = (
        "List models grouped by provider, with the default starred, and the names callers "
        "may ask for that they answer (aliases)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", type=provider_type_arg, help="only this provider type")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        models = ModelConfig.objects.with_provider().in_display_order()
        aliases = ModelAlias.objects.in_display_order()
        if options["provider"]:
            models = models.filter(provider__type=options["provider"])
            aliases = aliases.filter(provider__type=options["provider"])
        answered: dict[int, list[str]] = {}
        for alias in aliases:
            answered.setdefault(alias.model_id, []).append(alias.pattern)
        if options["json"]:
            self.write_json(
                [
                    {
                        "provider": m.provider.type,
                        "identifier": m.identifier,
                        "display_name": m.display_name,
                        "enabled": m.enabled,
                        "provider_enabled": m.provider.enabled,
                        "default": m.is_default,
                        **{name: getattr(m, name) for name in GENERAL_OPTIONS},
                        "options": m.options,
                        "aliases": answered.get(m.pk, []),
                    }
                    for m in models
                ]
            )
            return
        rows = [
            (
                "*" if m.is_default else "",
                m.provider.type,
                m.identifier,
                m.display_name,
                m.context_limit,
                "enabled" if m.enabled and m.provider.enabled else "disabled",
                m.price_summary,
                ", ".join(answered.get(m.pk, [])),
            )
            for m in models
        ]
        if not rows:
            self.stdout.write("No models yet. Add one with `manage.py model_set`.")
            return
        self.write_table(
            ("", "PROVIDER", "IDENTIFIER", "NAME", "CONTEXT", "STATUS", "PRICE", "ALSO ANSWERS"),
            rows,
        )

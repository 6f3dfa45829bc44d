from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from models_catalog.models import OVERRIDABLE_PURPOSES, Purpose, PurposeModel
from models_catalog.services import purpose_model_set
from providers.management.commands._args import provider_type_arg

from ._lookup import find_model

CHOICES = [p.value for p in OVERRIDABLE_PURPOSES]


class Command(OperatorCommand):
    help = (
        "Show or set the model used for title generation, advisor and subagent calls. "
        "Without arguments: list them. `model_purpose title anthropic claude-haiku-4-5`, or "
        "`model_purpose title --auto` for the automatic choice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("purpose", nargs="?", choices=CHOICES)
        parser.add_argument("provider", nargs="?", type=provider_type_arg)
        parser.add_argument("identifier", nargs="?")
        parser.add_argument("--auto", action="store_true", help="use the automatic choice")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["purpose"]:
            self._set(opts)
        current = PurposeModel.objects.as_map()
        rows = [
            {
                "purpose": p.value,
                "model": f"{current[p].provider.type}/{current[p].identifier}"
                if p in current
                else None,
            }
            for p in OVERRIDABLE_PURPOSES
        ]
        if opts["json"]:
            self.write_json(rows)
            return
        for row in rows:
            self.stdout.write(f"{row['purpose']:<10} {row['model'] or 'automatic'}")

    def _set(self, opts: dict[str, Any]) -> None:
        purpose = Purpose(opts["purpose"])
        if opts["auto"] == bool(opts["provider"] and opts["identifier"]):
            raise CommandError("give PROVIDER IDENTIFIER, or --auto")
        model = None if opts["auto"] else find_model(opts["provider"], opts["identifier"])
        try:
            purpose_model_set(purpose=purpose, model=model, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None

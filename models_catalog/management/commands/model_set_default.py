from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from models_catalog.services import model_clear_default, model_set_default
from providers.management.commands._args import provider_type_arg

from ._lookup import find_model


class Command(OperatorCommand):
    help = "Star one model as the default (or --none to have no default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", type=provider_type_arg, nargs="?")
        parser.add_argument("identifier", nargs="?")
        parser.add_argument("--none", action="store_true", help="clear the default")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["none"]:
            model_clear_default(actor=None)
            self.stdout.write("No default model.")
            return
        if not (opts["provider"] and opts["identifier"]):
            raise CommandError("give PROVIDER IDENTIFIER, or --none")
        model = find_model(opts["provider"], opts["identifier"])
        try:
            model_set_default(model=model, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(f"{model} is now the default model.")

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from models_catalog.services import alias_set
from providers.management.commands._args import provider_type_arg

from ._lookup import find_model


class Command(OperatorCommand):
    help = (
        "Answer a model name callers ask for (a coding agent's default, say), or every name a "
        "pattern with * matches, with one of the provider's models."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", type=provider_type_arg, help="provider type")
        parser.add_argument(
            "name", help="the name asked for, e.g. claude-opus-4-8 or claude-opus-*"
        )
        parser.add_argument("identifier", help="the identifier of the model that answers it")

    def handle(self, *args: Any, **opts: Any) -> None:
        model = find_model(opts["provider"], opts["identifier"])
        try:
            alias = alias_set(
                provider=model.provider, pattern=opts["name"], model=model, actor=None
            )
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(f"{model.provider.label}: calls naming {alias.pattern} reach {model}.")

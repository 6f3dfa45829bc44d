from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from models_catalog.models import ModelAlias
from models_catalog.services import alias_delete
from providers.management.commands._args import provider_type_arg


class Command(OperatorCommand):
    help = "Stop answering a model name (or pattern) with a model: such calls are refused again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", type=provider_type_arg, help="provider type")
        parser.add_argument("name", help="the name or pattern, as model_alias_set was given it")

    def handle(self, *args: Any, **opts: Any) -> None:
        alias = (
            ModelAlias.objects.select_related("provider", "model")
            .filter(provider__type=opts["provider"], pattern=opts["name"])
            .first()
        )
        if alias is None:
            raise CommandError(
                f"{opts['provider'].label} answers no name {opts['name']!r} (see models_list)"
            )
        alias_delete(alias=alias, actor=None)
        self.stdout.write(
            f"{alias.provider.label}: calls naming {alias.pattern} reach no model now."
        )

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from providers.services import provider_clear_key

from ._args import configured_provider, provider_type_arg


class Command(OperatorCommand):
    help = "Clear a provider's central API key (refused while the central key is on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg)

    def handle(self, *args: Any, **options: Any) -> None:
        provider = configured_provider(options["type"])
        try:
            provider_clear_key(provider=provider, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(f"{provider.label}: key cleared.")

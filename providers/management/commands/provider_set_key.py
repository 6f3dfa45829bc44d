from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, add_secret_arguments, read_secret, validation_line
from providers.services import provider_set_key

from ._args import configured_provider, provider_type_arg


class Command(OperatorCommand):
    help = "Set a provider's central API key, read from standard input or --key-file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg, help="provider type, e.g. openai")
        add_secret_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        provider = configured_provider(options["type"])
        raw_key = read_secret(options["key_file"])
        try:
            provider_set_key(provider=provider, raw_key=raw_key, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(f"{provider.label}: key set.")

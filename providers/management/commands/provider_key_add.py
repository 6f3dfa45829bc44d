from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, add_secret_arguments, read_secret, validation_line
from providers.services import provider_key_add

from ._args import configured_provider, provider_type_arg


class Command(OperatorCommand):
    help = (
        "Add a central API key to a provider, beside the ones it has (read from standard "
        "input or --key-file). The AI Gateway spreads calls across a provider's keys and goes "
        "on to the next when one is rate-limited or refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg, help="provider type, e.g. openai")
        parser.add_argument("label", help="a name for the key, e.g. team-a or backup")
        add_secret_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        provider = configured_provider(options["type"])
        raw_key = read_secret(options["key_file"])
        try:
            saved = provider_key_add(
                provider=provider, label=options["label"], raw_key=raw_key, actor=None
            )
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        count = len(saved.central_keys())
        self.stdout.write(
            f"{saved.label}: key {options['label']!r} added ({count} central key"
            f"{'' if count == 1 else 's'})."
        )

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from providers.services import provider_key_remove

from ._args import configured_provider, provider_type_arg


class Command(OperatorCommand):
    help = (
        "Remove a provider's central API key by its label (see provider_keys). Removing the "
        "provider's first key moves the next one into its place; its last key cannot go "
        "while the central key is on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg, help="provider type, e.g. openai")
        parser.add_argument("label", help="the key's label")

    def handle(self, *args: Any, **options: Any) -> None:
        provider = configured_provider(options["type"])
        try:
            saved = provider_key_remove(provider=provider, label=options["label"], actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        left = len(saved.central_keys())
        self.stdout.write(
            f"{saved.label}: key {options['label']!r} removed ({left} central key"
            f"{'' if left == 1 else 's'} left)."
        )

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, add_secret_arguments, read_secret, validation_line
from lib.users import user_by_username
from providers.management.commands._args import configured_provider, provider_type_arg
from userkeys.services import user_key_save


class Command(OperatorCommand):
    help = "Set a user's personal key for a provider (support cases), from stdin or --key-file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("provider", type=provider_type_arg)
        add_secret_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        provider = configured_provider(options["provider"])
        raw_key = read_secret(options["key_file"])
        try:
            user_key_save(user=user, provider=provider, raw_key=raw_key, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(f"{user}: {provider.label} key saved.")

from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from lib.users import user_by_username
from providers.management.commands._args import provider_type_arg
from userkeys.models import UserKey
from userkeys.services import user_key_delete


class Command(OperatorCommand):
    help = "Remove a user's personal key for a provider (support cases)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("provider", type=provider_type_arg)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        key = UserKey.objects.for_user(user).filter(provider__type=options["provider"]).first()
        if key is None:
            raise CommandError(f"{user} has no {options['provider'].label} key")
        user_key_delete(key=key, actor=None)
        self.stdout.write(f"{user}: {options['provider'].label} key removed.")

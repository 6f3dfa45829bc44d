from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from providers.services import provider_delete

from ._args import configured_provider, provider_type_arg


class Command(OperatorCommand):
    help = "Delete a provider with its key, models and users' keys (usage history is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg)
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")

    def handle(self, *args: Any, **options: Any) -> None:
        provider = configured_provider(options["type"])
        if not options["yes"]:
            raise CommandError(f"deleting {provider.label} cannot be undone; add --yes to confirm")
        provider_delete(provider=provider, actor=None)
        self.stdout.write(f"{provider.label}: deleted.")

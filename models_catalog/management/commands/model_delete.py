from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from models_catalog.services import model_delete
from providers.management.commands._args import provider_type_arg

from ._lookup import find_model


class Command(OperatorCommand):
    help = "Delete a model (usage history is kept). The default star moves on if it had it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", type=provider_type_arg)
        parser.add_argument("identifier")
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")

    def handle(self, *args: Any, **opts: Any) -> None:
        model = find_model(opts["provider"], opts["identifier"])
        if not opts["yes"]:
            raise CommandError(f"deleting {model} cannot be undone; add --yes to confirm")
        moved = model_delete(model=model, actor=None)
        self.stdout.write(f"{model}: deleted.")
        if moved is not None:
            self.stdout.write(moved.message())

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.services import group_delete
from lib.commands import OperatorCommand

from ._people import group_by_name


class Command(OperatorCommand):
    help = "Delete a group (its members keep their accounts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        group = group_by_name(options["name"])
        if not options["yes"]:
            raise CommandError(f"deleting the group {group.name} cannot be undone; add --yes")
        group_delete(group=group, actor=None)
        if options["json"]:
            self.write_json({"deleted": options["name"]})
        else:
            self.stdout.write(f"Group {options['name']}: deleted.")

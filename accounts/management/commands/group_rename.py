from typing import Any

from django.core.management.base import CommandParser

from accounts.services import group_rename
from lib.commands import OperatorCommand

from ._people import group_by_name, run


class Command(OperatorCommand):
    help = "Rename a group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("new_name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        group = group_by_name(options["name"])
        run(lambda: group_rename(group=group, name=options["new_name"], actor=None))
        if options["json"]:
            self.write_json({"id": group.pk, "name": group.name})
        else:
            self.stdout.write(f"Group {options['name']}: now {group.name}.")

from typing import Any

from django.core.management.base import CommandParser

from accounts.services import group_create
from lib.commands import OperatorCommand

from ._people import run


class Command(OperatorCommand):
    help = "Create a group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        group = run(lambda: group_create(name=options["name"], actor=None))
        if options["json"]:
            self.write_json({"id": group.pk, "name": group.name})
        else:
            self.stdout.write(f"Group {group.name}: created.")

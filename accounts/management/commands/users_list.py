from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from lib.commands import OperatorCommand

from ._people import person_json


class Command(OperatorCommand):
    help = "List people with their role, groups and status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        people = [
            person_json(u)
            for u in get_user_model().objects.order_by("username").prefetch_related("groups")
        ]
        if options["json"]:
            self.write_json(people)
            return
        self.write_table(
            ("USERNAME", "ROLE", "STATUS", "GROUPS", "EMAIL"),
            [
                (
                    p["username"],
                    p["role"],
                    "active" if p["active"] else "deactivated",
                    ",".join(p["groups"]) or "-",
                    p["email"] or "-",
                )
                for p in people
            ],
        )

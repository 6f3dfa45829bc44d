from typing import Any

from django.core.management.base import CommandParser

from accounts.services import group_add_member
from lib.commands import OperatorCommand
from lib.users import user_by_username

from ._people import group_by_name


class Command(OperatorCommand):
    help = "Add someone to a group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("group")
        parser.add_argument("username")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        group = group_by_name(options["group"])
        user = user_by_username(options["username"])
        changed = group_add_member(group=group, user=user, actor=None)
        if options["json"]:
            self.write_json({"group": group.name, "username": user.username, "changed": changed})
        else:
            verb = "added to"
            self.stdout.write(f"{user}: {verb} {group.name}{'' if changed else ' (no change)'}.")

from typing import Any

from django.core.management.base import CommandParser

from accounts.models import Role
from accounts.services import user_set_role
from lib.commands import OperatorCommand
from lib.users import user_by_username

from ._people import person_json, run


class Command(OperatorCommand):
    help = "Make someone an admin or a developer (the last active admin stays an admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=Role.values)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        changed = run(lambda: user_set_role(user=user, role=options["role"], actor=None))
        user.refresh_from_db()
        if options["json"]:
            self.write_json({**person_json(user), "changed": changed})
        else:
            self.stdout.write(f"{user}: {options['role']}{'' if changed else ' (unchanged)'}.")

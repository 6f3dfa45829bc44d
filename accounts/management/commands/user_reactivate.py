from typing import Any

from django.core.management.base import CommandParser

from accounts.services import user_reactivate
from lib.commands import OperatorCommand
from lib.users import user_by_username

from ._people import person_json, run


class Command(OperatorCommand):
    help = "Reactivate someone's account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        changed = run(lambda: user_reactivate(user=user, actor=None))
        user.refresh_from_db()
        if options["json"]:
            self.write_json({**person_json(user), "changed": changed})
        else:
            self.stdout.write(f"{user}: reactivated{'' if changed else ' already'}.")

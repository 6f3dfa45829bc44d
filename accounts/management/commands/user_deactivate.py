from typing import Any

from django.core.management.base import CommandParser

from accounts.services import user_deactivate
from lib.commands import OperatorCommand
from lib.users import user_by_username

from ._people import person_json, run


class Command(OperatorCommand):
    help = "Deactivate someone's account: signs them out everywhere and revokes their tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        changed = run(lambda: user_deactivate(user=user, actor=None))
        user.refresh_from_db()
        if options["json"]:
            self.write_json({**person_json(user), "changed": changed})
        else:
            self.stdout.write(f"{user}: deactivated{'' if changed else ' already'}.")

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.services import deletion_summary, user_delete
from lib.commands import OperatorCommand
from lib.users import user_by_username

from ._people import run


class Command(OperatorCommand):
    help = "Delete someone's account with their chats, tokens and personal keys (usage stays)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        summary = deletion_summary(user)
        if not options["yes"]:
            goes = ", ".join(summary) or "nothing else"
            raise CommandError(f"deleting {user} also deletes {goes}; add --yes to confirm")
        run(lambda: user_delete(user=user, actor=None))
        if options["json"]:
            self.write_json({"deleted": options["username"], "with": summary})
        else:
            self.stdout.write(f"{options['username']}: deleted.")

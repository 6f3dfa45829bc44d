from typing import Any

from django.core.management.base import CommandParser

from lib.commands import OperatorCommand
from lib.users import user_by_username
from routing.availability import availability_for
from routing.views import availability_json


class Command(OperatorCommand):
    help = "Show which providers and models a user can use, and why not where they cannot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        availability = availability_for(user)
        if options["json"]:
            self.write_json(availability_json(availability, None))
            return
        for group in availability.groups:
            self.stdout.write(f"{group.provider.label}: available")
            for model in group.models:
                star = " (default)" if model.is_default else ""
                self.stdout.write(f"  {model.identifier}  {model.display_name}{star}")
        for item in availability.unavailable:
            self.stdout.write(f"{item.provider.label}: unavailable ({item.reason.value})")
        message = availability.empty_message()
        if message:
            self.stdout.write(message)

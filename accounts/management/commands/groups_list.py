from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import CommandParser

from lib.commands import OperatorCommand


class Command(OperatorCommand):
    help = "List groups with their members."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        groups: list[dict[str, Any]] = [
            {"id": g.pk, "name": g.name, "members": sorted(u.username for u in g.user_set.all())}
            for g in Group.objects.order_by("name").prefetch_related("user_set")
        ]
        if options["json"]:
            self.write_json(groups)
            return
        if not groups:
            self.stdout.write("No groups yet.")
        for group in groups:
            self.stdout.write(f"{group['name']}: {', '.join(group['members']) or '(no members)'}")

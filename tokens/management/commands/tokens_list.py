from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from lib.commands import OperatorCommand
from lib.users import user_by_username
from tokens.models import ApiToken, TokenKind


class Command(OperatorCommand):
    help = "List platform tokens (active ones unless --all), never their secrets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="only this user's tokens")
        parser.add_argument("--kind", choices=TokenKind.values, help="only this kind")
        parser.add_argument("--all", action="store_true", help="include revoked and expired")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        tokens = ApiToken.objects.select_related("user")
        if options["user"]:
            tokens = tokens.filter(user=user_by_username(options["user"]))
        if options["kind"]:
            tokens = tokens.filter(kind=options["kind"])
        if not options["all"]:
            tokens = tokens.active()
        now = timezone.now()
        rows: list[dict[str, Any]] = [
            {
                "id": t.pk,
                "user": t.user.get_username(),
                "name": t.name,
                "kind": t.kind,
                "prefix": t.display_prefix,
                "created_at": t.created_at.isoformat(),
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "status": (t.inactive_reason(now) or "active"),
            }
            for t in tokens
        ]
        if options["json"]:
            self.write_json([{**row, "status": str(row["status"])} for row in rows])
            return
        if not rows:
            self.stdout.write("No tokens." if options["all"] else "No active tokens.")
            return
        self.write_table(
            ("ID", "USER", "KIND", "NAME", "PREFIX", "LAST USED", "EXPIRES", "STATUS"),
            [
                (
                    r["id"],
                    r["user"],
                    r["kind"],
                    r["name"],
                    r["prefix"],
                    (r["last_used_at"] or "never")[:16],
                    (r["expires_at"] or "never")[:10],
                    str(r["status"]).replace("_", " "),
                )
                for r in rows
            ],
        )

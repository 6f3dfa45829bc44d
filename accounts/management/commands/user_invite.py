from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Role
from accounts.services import invitation_create
from lib.commands import OperatorCommand
from lib.site import LOCAL, site_url

from ._people import group_by_name, run


class Command(OperatorCommand):
    help = (
        "Invite someone by e-mail and/or username. Prints the one-time link (give --base-url, "
        "the address people open); --send-email also mails it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="")
        parser.add_argument("--username", default="")
        parser.add_argument("--role", choices=Role.values, default=Role.DEVELOPER.value)
        parser.add_argument("--group", action="append", default=[], help="repeatable")
        parser.add_argument("--days", type=int, default=7, help="valid for (1 to 30)")
        parser.add_argument(
            "--base-url",
            default="",
            help=f"the server's public address, for the link (default: SITE_URL, else {LOCAL})",
        )
        parser.add_argument("--send-email", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        groups = [group_by_name(name) for name in options["group"]]
        base = options["base_url"].rstrip("/") or site_url()
        new = run(
            lambda: invitation_create(
                email=options["email"],
                username=options["username"],
                role=options["role"],
                groups=groups,
                days=options["days"],
                actor=None,
                send_to=base if options["send_email"] else "",
            )
        )
        link = f"{base}/invite/{new.token}/"
        invitation = new.invitation
        if options["json"]:
            self.write_json(
                {
                    "id": invitation.pk,
                    "for": invitation.who,
                    "role": invitation.role,
                    "expires_at": invitation.expires_at.isoformat(),
                    "link": link,
                    "mail_problem": new.mail_problem or None,
                }
            )
        else:
            self.stdout.write(
                f"Invitation for {invitation.who}, valid until "
                f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC (shown once):"
            )
            self.stdout.write(link)
        if new.mail_problem:  # the invitation stands, its link printed: the mail failed
            problem = new.mail_problem
            raise CommandError(f"invitation made, but {problem[0].lower()}{problem[1:]}")

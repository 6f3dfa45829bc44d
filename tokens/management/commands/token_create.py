import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from lib.users import user_by_username
from tokens.services import token_create


class Command(OperatorCommand):
    help = (
        "Create a platform API token for a user. The token is printed once on standard output "
        "(and nothing else is), or written to --output with mode 0600; only a hash is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what will use it, e.g. 'ci-agent'")
        parser.add_argument(
            "--expires-in",
            type=int,
            default=settings.API_TOKEN_MAX_LIFETIME_DAYS,
            metavar="DAYS",
            help=f"days until it expires (1 to {settings.API_TOKEN_MAX_LIFETIME_DAYS})",
        )
        parser.add_argument("--output", type=Path, help="write the token to this new file")
        parser.add_argument("--json", action="store_true", help="print details as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        days = options["expires_in"]
        if not 1 <= days <= settings.API_TOKEN_MAX_LIFETIME_DAYS:
            raise CommandError(
                f"--expires-in must be between 1 and {settings.API_TOKEN_MAX_LIFETIME_DAYS} days"
            )
        output: Path | None = options["output"]
        if output is not None and output.exists():
            raise CommandError(f"{output} already exists; choose a new file")
        try:
            new = token_create(
                user=user, name=options["name"], lifetime=timedelta(days=days), actor=None
            )
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        token = new.token
        if output is not None:
            try:
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(new.secret + "\n")
            except OSError as error:
                token.delete()
                raise CommandError(f"cannot write {output}: {error.strerror}") from None
        details = {
            "id": token.pk,
            "user": user.get_username(),
            "name": token.name,
            "prefix": token.display_prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
        if options["json"]:
            self.write_json(details if output else {**details, "token": new.secret})
        elif output is not None:
            self.stdout.write(f"Token {token.display_prefix} for {user} written to {output}.")
        else:
            self.stderr.write(
                f"Token {token.display_prefix} for {user}, expires {token.expires_at:%Y-%m-%d}. "
                "It is shown only now:"
            )
            self.stdout.write(new.secret)

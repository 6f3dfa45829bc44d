from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from lib.users import user_by_username
from tokens.models import TokenKind
from tokens.services import token_revoke, tokens_revoke_for_user

from ._lookup import find_token


class Command(OperatorCommand):
    help = (
        "Revoke a token by its id or shown prefix, or every token of a user with --user "
        "(--kind session signs them out everywhere). Takes effect on the next request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", nargs="?", help="token id or prefix (see tokens_list)")
        parser.add_argument("--user", help="revoke this user's tokens instead")
        parser.add_argument("--kind", choices=TokenKind.values, help="with --user: only this kind")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["token"]) == bool(options["user"]):
            raise CommandError("give a token id or prefix, or --user USERNAME (not both)")
        if options["user"]:
            user = user_by_username(options["user"])
            kind = TokenKind(options["kind"]) if options["kind"] else None
            count = tokens_revoke_for_user(user=user, actor=None, kind=kind)
            self.stdout.write(f"{user}: {count} token(s) revoked.")
            return
        token = find_token(options["token"])
        if token_revoke(token=token, actor=None):
            self.stdout.write(f"{token} of {token.user}: revoked.")
        else:
            self.stdout.write(f"{token} of {token.user} was already revoked.")

"""The scope a budget command names: ``everyone``, ``group NAME``, ``person USERNAME`` or
``token ID`` (its list id or shown prefix)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import CommandError, CommandParser

from lib.users import user_by_username
from spend.models import BUDGET_PERIODS, Period, Scope
from tokens.management.commands._lookup import find_token


def add_scope_arguments(parser: CommandParser, noun: str = "budget") -> None:
    parser.add_argument("scope", choices=Scope.values, help=f"whose calls the {noun} counts")
    parser.add_argument(
        "target", nargs="?", help="the group's name, the person's username or the token's id"
    )


def add_period_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--period",
        choices=[period.value for period in BUDGET_PERIODS],
        default=Period.MONTH,
        help="default: month",
    )


def scope_target(options: dict[str, Any]) -> dict[str, Any]:
    """``group=``, ``user=`` or ``token=`` for the budget's scope (nothing for everyone)."""
    scope, target = options["scope"], options["target"]
    if scope == Scope.EVERYONE:
        if target:
            raise CommandError("everyone names no one: leave out " + repr(target))
        return {}
    if not target:
        what = {"group": "group's name", "person": "username", "token": "token's id"}[scope]
        raise CommandError(f"name the {what}: {scope} NAME")
    if scope == Scope.GROUP:
        group = Group.objects.filter(name=target).first()
        if group is None:
            raise CommandError(f"no group named {target!r} (see groups_list)")
        return {"group": group}
    if scope == Scope.PERSON:
        return {"user": user_by_username(target)}
    return {"token": find_token(target)}


def usd(text: str) -> Decimal:
    """A limit typed in dollars: ``200``, ``$200``, ``1,000.50``."""
    cleaned = text.strip().removeprefix("$").replace(",", "").replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise CommandError(
            f"--limit: {text!r} is not an amount in dollars, e.g. 200 or 12.50"
        ) from None
    if not value.is_finite():
        raise CommandError(f"--limit: {text!r} is not an amount in dollars, e.g. 200 or 12.50")
    return value


# A rate limit's option on the command line, by unit.
RATE_OPTIONS = {
    "requests": "--requests-per-minute",
    "tokens": "--tokens-per-minute",
    "calls": "--concurrent-calls",
}


def count(option: str, text: str) -> int:
    """A whole number typed for ``option``: ``60``, ``100,000``, ``1_000``; at least 1."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit() or not cleaned.isascii():
        raise CommandError(f"{option}: {text!r} is not a whole number, e.g. 60")
    value = int(cleaned)
    if not 1 <= value <= 1_000_000_000_000:
        raise CommandError(f"{option}: {text!r} must be between 1 and 1,000,000,000,000")
    return value

"""Shared pieces of the people and group commands."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import role_of
from lib.commands import validation_line


def group_by_name(name: str) -> Group:
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise CommandError(f"no group named {name!r} (see groups_list)")
    return group


def person_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "name": user.get_full_name(),
        "role": role_of(user).value,
        "active": user.is_active,
        "groups": sorted(g.name for g in user.groups.all()),
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def run(action: Any) -> Any:
    """A service call, with its validation error as one line."""
    try:
        return action()
    except ValidationError as error:
        raise CommandError(validation_line(error)) from None

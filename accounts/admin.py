"""The Django admin's user pages, bound by the People rules.

Activation, the admin role and groups change only on Admin → People (``accounts.services``):
there, deactivating someone revokes their tokens and sessions, and the last active admin
stays one. Django's own user admin would flip the flags alone (tokens left alive, and
revived by a later re-activation; no admin left), so here those fields are read-only and
people are deleted on the People page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

User = get_user_model()

PEOPLE_RULE_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


class PeopleRulesUserAdmin(UserAdmin):
    readonly_fields = (*PEOPLE_RULE_FIELDS, "last_login", "date_joined")
    filter_horizontal = ()
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Role and access (change them on Admin → People)",
            {"fields": PEOPLE_RULE_FIELDS},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(User)
admin.site.register(User, PeopleRulesUserAdmin)

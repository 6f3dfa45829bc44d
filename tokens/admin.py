from django.contrib import admin
from django.http import HttpRequest

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Read-only: tokens are created and revoked through the product (audited)."""

    list_display = (
        "name",
        "user",
        "kind",
        "display_prefix",
        "created_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("kind",)
    search_fields = ("user__username", "name", "lookup_id")
    fields = (
        "user",
        "name",
        "kind",
        "display_prefix",
        "client_label",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

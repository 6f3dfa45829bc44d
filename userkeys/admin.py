from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import UserKey
from .services import user_key_delete


@admin.register(UserKey)
class UserKeyAdmin(admin.ModelAdmin):
    """Admins may see who has a key and remove one; never the key itself."""

    list_display = ("user", "provider", "key_state", "updated_at")
    list_filter = ("provider",)
    search_fields = ("user__username",)
    fields = ("user", "provider", "key_state", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Key")
    def key_state(self, obj: UserKey) -> str:
        if obj.api_key is None:
            return "not set"
        return "needs re-entry" if obj.api_key.needs_reentry else "set"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: UserKey) -> None:
        user_key_delete(key=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserKey]) -> None:
        for key in queryset:
            user_key_delete(key=key, actor=request.user)

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .forms import POLICY_FIELDS, ProviderForm
from .models import Provider
from .services import provider_delete, provider_save


class ProviderAdminForm(ProviderForm):
    only_fields_of_its_type = False

    class Meta(ProviderForm.Meta):
        fields = ("type", *ProviderForm.Meta.fields)


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    """Writes go through the same services as the Providers tab (validated, audited).

    The key is write-only: a password field that is never filled in, and a state label.
    """

    form = ProviderAdminForm
    list_display = (
        "__str__",
        "enabled",
        "key_state_label",
        "central_key_enabled",
        "user_keys_allowed",
        "central_key_fallback",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "type",
                    "key_state_label",
                    "api_key",
                    "clear_api_key",
                    "base_url",
                    "region",
                )
            },
        ),
        ("Key policy", {"fields": POLICY_FIELDS}),
        ("Availability", {"fields": ("enabled",)}),
    )

    @admin.display(description="API key")
    def key_state_label(self, obj: Provider) -> str:
        return str(obj.key_state.label).lower()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The form's Meta lists its model fields; the key fields are declared on the form and
        # would otherwise be looked up (and refused) as the non-editable model field.
        kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> Any:
        return ("type", "key_state_label") if obj else ("key_state_label",)

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        saved = provider_save(
            provider_type=obj.type,
            actor=request.user,
            changes=form.changes(),
            api_key=form.key_change(),
        )
        obj.pk = saved.pk
        for note in saved.side_effects:
            self.message_user(request, note, level="warning")

    def delete_model(self, request: HttpRequest, obj: Provider) -> None:
        provider_delete(provider=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            provider_delete(provider=provider, actor=request.user)

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .forms import ModelConfigForm, model_form_for
from .models import ModelConfig
from .services import model_delete, model_save


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    """The same schema-generated form and services as the Models tab."""

    list_display = (
        "display_name",
        "identifier",
        "provider",
        "enabled",
        "is_default",
        "context_limit",
    )
    list_filter = ("provider", "enabled", "is_default")
    search_fields = ("display_name", "identifier")
    readonly_fields = ("is_default",)

    def get_form(
        self,
        request: HttpRequest,
        obj: ModelConfig | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        form_class = model_form_for(obj.provider.type if obj else None)
        option_names = form_class.option_field_names()
        kwargs["form"] = form_class
        kwargs["fields"] = [*ModelConfigForm.Meta.fields, *option_names]
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: ModelConfig | None = None) -> Any:
        form_class = model_form_for(obj.provider.type if obj else None)
        options = form_class.option_field_names()
        fieldsets: list[Any] = [(None, {"fields": [*ModelConfigForm.Meta.fields, "is_default"]})]
        if options:
            fieldsets.append(
                (f"{obj.provider.label} options" if obj else "Options", {"fields": options})
            )
        return fieldsets

    def save_model(self, request: HttpRequest, obj: ModelConfig, form: Any, change: bool) -> None:
        saved, _ = model_save(
            model=ModelConfig.objects.get(pk=obj.pk) if change else None,
            provider=form.cleaned_data["provider"],
            fields=form.fields_to_save(),
            options=form.options(),
            actor=request.user,
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: ModelConfig) -> None:
        model_delete(model=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelConfig]) -> None:
        for model in queryset:
            model_delete(model=model, actor=request.user)

"""The model form: general fields from the model, provider-specific fields from the schema."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from django import forms
from django.core.validators import DecimalValidator
from django.db import models

from lib.text import decimal_as_typed
from providers.models import Provider
from providers.options import OptionKind, OptionSpec
from providers.registry import REGISTRY, spec_for

from .models import MAX_FALLBACKS, ModelAlias, ModelConfig
from .options import (
    GENERAL_OPTIONS,
    LONG_CONTEXT_FIELDS,
    PRICE_FIELDS,
    PROVIDER_PRICES,
    SpecValidator,
)

GENERAL_FIELDS = (
    "identifier",
    "display_name",
    "context_limit",
    "enabled",
    "compression_threshold",
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_k",
    "presence_penalty",
    "frequency_penalty",
    *(name for name in PRICE_FIELDS if name not in (*PROVIDER_PRICES, *LONG_CONTEXT_FIELDS)),
    *LONG_CONTEXT_FIELDS,
)
OPTION_PREFIX = "option_"
UNSET = ("", "Provider default")


class OptionField(forms.Field):
    """A form field for one option spec: validated by the spec itself, blank means unset."""

    def __init__(self, spec: OptionSpec, **kwargs: Any) -> None:
        self.spec = spec
        kwargs.update(
            required=False, label=spec.label, help_text=spec.help, widget=_widget_for(spec)
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value in (None, ""):
            return None
        return self.spec.clean(value)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value


def _widget_for(spec: OptionSpec) -> forms.Widget:
    if spec.kind is OptionKind.CHOICE:
        return forms.Select(choices=[UNSET, *((c, c) for c in spec.choices)])
    if spec.kind is OptionKind.BOOLEAN:
        return forms.Select(choices=[UNSET, ("true", "On"), ("false", "Off")])
    attrs: dict[str, Any] = {"step": "1" if spec.kind is OptionKind.INTEGER else "any"}
    if spec.min is not None:
        attrs["min"] = spec.min
    if spec.max is not None:
        attrs["max"] = spec.max
    return forms.NumberInput(attrs=attrs)


FALLBACK_FIELDS = tuple(f"fallback_{n}" for n in range(1, MAX_FALLBACKS + 1))


class FallbackChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} ({obj.provider.label}) · {obj.identifier}"


class ProviderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.label if obj.enabled else f"{obj.label} (disabled)"


def general_option_formfield(db_field: Any, **kwargs: Any) -> forms.Field | None:
    """A general option's form field checks its bounds with the option's spec only, so each
    rule gives one message ("Temperature must be at most 2."), not also the database's
    ("less than or equal to 9223372036854775807", "no more than 14 digits")."""
    if isinstance(db_field, models.DecimalField):
        kwargs.setdefault("form_class", PriceField)
    field = db_field.formfield(**kwargs)
    spec = GENERAL_OPTIONS.get(db_field.name)
    if field is None or spec is None:
        return field
    field.validators = [SpecValidator(db_field.name)]
    if isinstance(field, forms.DecimalField):
        field.validators.append(DecimalValidator(None, db_field.decimal_places))
    field.widget.attrs.pop("maxlength", None)
    for bound in ("min", "max"):
        if getattr(spec, bound) is not None:
            field.widget.attrs[bound] = getattr(spec, bound)
    return field


class PriceField(forms.DecimalField):
    """A stored price reads as it was typed: 15, not 15.000000."""

    def prepare_value(self, value: Any) -> Any:
        return decimal_as_typed(value) if isinstance(value, Decimal) else value


class ModelConfigForm(forms.ModelForm):
    provider = ProviderChoiceField(
        queryset=Provider.objects.all(),
        empty_label="Choose a provider…",
        help_text="Provider-specific options follow the provider you choose.",
    )
    option_specs: tuple[OptionSpec, ...] = ()
    # Columns asked for among the provider options, for the provider types they apply to.
    provider_columns: tuple[str, ...] = ()

    class Meta:
        model = ModelConfig
        fields = ("provider", *GENERAL_FIELDS)
        formfield_callback = general_option_formfield
        widgets = {name: forms.NumberInput(attrs={"step": "any"}) for name in PRICE_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, fallback in zip(FALLBACK_FIELDS, self.instance.fallbacks, strict=False):
            self.initial.setdefault(name, fallback.pk)
        for name in FALLBACK_FIELDS:
            if name in self.fields and self.instance.pk is not None:
                field = self.fields[name]
                field.queryset = field.queryset.exclude(pk=self.instance.pk)  # type: ignore[attr-defined]
        stored = self.instance.options or {}
        for spec in self.option_specs:
            self.initial.setdefault(f"{OPTION_PREFIX}{spec.name}", stored.get(spec.name))
        for name in self.provider_columns:
            self.initial.setdefault(name, getattr(self.instance, name))

    @classmethod
    def option_field_names(cls) -> list[str]:
        """The fields shown among the provider's options, in order."""
        return [f"{OPTION_PREFIX}{spec.name}" for spec in cls.option_specs] + list(
            cls.provider_columns
        )

    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.option_field_names()]

    def general_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in GENERAL_FIELDS if name != "enabled"]

    def fallback_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in FALLBACK_FIELDS if name in self.fields]

    def fallbacks(self) -> list[ModelConfig]:
        """The fallback models chosen, in order."""
        return [
            self.cleaned_data[name]
            for name in FALLBACK_FIELDS
            if name in self.fields and self.cleaned_data.get(name) is not None
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        seen: set[int] = set()
        for name in FALLBACK_FIELDS:
            chosen = data.get(name)
            if chosen is None:
                continue
            if chosen.pk in seen:
                self.add_error(name, "This model is a fallback already, higher up.")
            elif self.instance.pk == chosen.pk:
                self.add_error(name, "A model cannot be its own fallback.")
            seen.add(chosen.pk)
        # Set before the model's clean(), which validates options against the schema again.
        self.instance.options = self.options()
        for name in PROVIDER_PRICES:
            setattr(self.instance, name, self.provider_column_value(name))
        return data

    def options(self) -> dict[str, Any]:
        values = {
            s.name: self.cleaned_data.get(f"{OPTION_PREFIX}{s.name}") for s in self.option_specs
        }
        return {name: value for name, value in values.items() if value is not None}

    def fields_to_save(self) -> dict[str, Any]:
        fields = {name: self.cleaned_data[name] for name in GENERAL_FIELDS}
        for name in PROVIDER_PRICES:
            fields[name] = self.provider_column_value(name)
        return fields

    def provider_column_value(self, name: str) -> Any:
        """A column this provider type does not ask for is cleared: a model moved from
        Anthropic to OpenAI keeps no one-hour cache price that nothing would show (nor the
        other way round, a price for the priority tier)."""
        return self.cleaned_data.get(name) if name in self.provider_columns else None


@cache
def model_form_for(provider_type: str | None) -> type[ModelConfigForm]:
    """The form class for a provider type: the general form plus one field per option spec."""
    if not provider_type:
        return ModelConfigForm
    provider_spec = spec_for(provider_type)
    specs = provider_spec.options
    attrs: dict[str, Any] = {f"{OPTION_PREFIX}{spec.name}": OptionField(spec) for spec in specs}
    attrs["option_specs"] = specs
    columns = tuple(
        name for name, (reported, _) in PROVIDER_PRICES.items() if getattr(provider_spec, reported)
    )
    for name in columns:
        attrs[name] = general_option_formfield(
            ModelConfig._meta.get_field(name), widget=forms.NumberInput(attrs={"step": "any"})
        )
    attrs["provider_columns"] = columns
    same_format = [
        t for t, spec in REGISTRY.items() if spec.wire_format == provider_spec.wire_format
    ]
    for position, field_name in enumerate(FALLBACK_FIELDS):
        attrs[field_name] = FallbackChoiceField(
            queryset=ModelConfig.objects.with_provider()
            .filter(provider__type__in=same_format)
            .in_display_order(),
            required=False,
            empty_label="None",
            label=("First", "Second", "Third")[position] + " fallback",
            help_text=""
            if position
            else f"Models of providers with the {provider_spec.wire_format.label} format only: "
            "callers read their answers as this model's.",
        )
    name = "".join(part.title() for part in provider_type.split("-")) + "ModelConfigForm"
    return type(name, (ModelConfigForm,), attrs)


def bound_model_form(
    *, data: Any = None, instance: ModelConfig | None = None, provider: Provider | None = None
) -> ModelConfigForm:
    """The form for ``provider`` (or the instance's), with stored options as initial values."""
    provider = provider or (instance.provider if instance and instance.provider_id else None)
    form_class = model_form_for(provider.type if provider else None)
    initial: dict[str, Any] = {}
    if provider is not None:
        initial["provider"] = provider.pk
    return form_class(data=data, instance=instance, initial=initial)


class ModelAliasForm(forms.Form):
    """A name callers ask for (or a pattern), and the model that answers it."""

    pattern = forms.CharField(
        label=ModelAlias._meta.get_field("pattern").verbose_name,
        max_length=255,
        help_text=ModelAlias._meta.get_field("pattern").help_text,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    model = forms.ModelChoiceField(
        label="Answered by",
        queryset=ModelConfig.objects.with_provider().in_display_order(),
        empty_label="Choose a model",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        field.label_from_instance = lambda m: f"{m} ({m.provider.label}) · {m.identifier}"  # type: ignore[attr-defined]

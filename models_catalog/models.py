from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Q

from lib.text import decimal_as_typed
from providers.models import Provider
from providers.options import clean_options
from providers.registry import REGISTRY

from .options import (
    GENERAL_OPTIONS,
    LONG_CONTEXT_FIELDS,
    PRICE_FIELDS,
    PROVIDER_PRICES,
    SpecValidator,
    validate_alias_pattern,
    validate_display_name,
    validate_identifier,
)

IDENTIFIER_TAKEN = "This provider already has a model with this identifier."


def _help(name: str) -> str:
    return GENERAL_OPTIONS[name].help


def _label(name: str) -> str:
    return GENERAL_OPTIONS[name].label


class ModelConfigQuerySet(models.QuerySet["ModelConfig"]):
    def with_provider(self) -> ModelConfigQuerySet:
        return self.select_related("provider")

    def in_display_order(self) -> ModelConfigQuerySet:
        return self.order_by("provider__type", "display_name", "pk")

    def usable(self) -> ModelConfigQuerySet:
        """Enabled models of enabled providers (who may use them is routing's question)."""
        return self.filter(enabled=True, provider__enabled=True)


def _price_field(name: str) -> models.DecimalField:
    return models.DecimalField(
        _label(name),
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[SpecValidator(name)],
        help_text=_help(name),
    )


def _optional(field_class: type[models.Field], name: str) -> Any:
    return field_class(
        _label(name), null=True, blank=True, validators=[SpecValidator(name)], help_text=_help(name)
    )


class ModelConfig(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    identifier = models.CharField(
        "Model identifier",
        max_length=255,
        validators=[validate_identifier],
        help_text="The exact model string the provider expects, e.g. claude-opus-4-6.",
    )
    display_name = models.CharField(
        max_length=255,
        validators=[validate_display_name],
        help_text="The label developers see in the model selector.",
    )
    context_limit = models.PositiveIntegerField(
        _label("context_limit"),
        validators=[SpecValidator("context_limit")],
        help_text=_help("context_limit"),
    )
    enabled = models.BooleanField(
        default=True, help_text="Disabled models are hidden from every model selector."
    )
    is_default = models.BooleanField("Default", default=False, editable=False)
    compression_threshold = models.PositiveSmallIntegerField(
        _label("compression_threshold"),
        default=70,
        validators=[SpecValidator("compression_threshold")],
        help_text=_help("compression_threshold"),
    )
    max_output_tokens = _optional(models.PositiveIntegerField, "max_output_tokens")
    temperature = _optional(models.FloatField, "temperature")
    top_p = _optional(models.FloatField, "top_p")
    top_k = _optional(models.PositiveIntegerField, "top_k")
    presence_penalty = _optional(models.FloatField, "presence_penalty")
    frequency_penalty = _optional(models.FloatField, "frequency_penalty")
    input_price = _price_field("input_price")
    output_price = _price_field("output_price")
    cache_read_price = _price_field("cache_read_price")
    cache_write_price = _price_field("cache_write_price")
    cache_write_1h_price = _price_field("cache_write_1h_price")
    web_search_price = _price_field("web_search_price")
    flex_price_factor = _price_field("flex_price_factor")
    priority_price_factor = _price_field("priority_price_factor")
    ultrafast_price_factor = _price_field("ultrafast_price_factor")
    us_inference_price_factor = _price_field("us_inference_price_factor")
    fast_mode_price_factor = _price_field("fast_mode_price_factor")
    long_context_threshold = _optional(models.PositiveIntegerField, "long_context_threshold")
    long_context_input_price = _price_field("long_context_input_price")
    long_context_output_price = _price_field("long_context_output_price")
    # Provider-specific options, validated against the provider type's schema on write.
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelConfigQuerySet.as_manager()

    class Meta:
        verbose_name = "model"
        ordering = ["provider__type", "display_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "identifier"],
                name="models_catalog_identifier_per_provider",
                violation_error_message=IDENTIFIER_TAKEN,
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="models_catalog_one_default",
            ),
            models.CheckConstraint(
                condition=Q(compression_threshold__gte=0) & Q(compression_threshold__lte=100),
                name="models_catalog_compression_threshold_percent",
            ),
            models.CheckConstraint(
                condition=Q(context_limit__gt=0), name="models_catalog_context_limit_positive"
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 0}),
                    name=f"models_catalog_{name}_not_negative",
                )
                for name in PRICE_FIELDS
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.identifier

    @property
    def fallbacks(self) -> list[ModelConfig]:
        """Its fallback models, in order (prefetch ``fallback_links__fallback__provider``
        for many models)."""
        if self.pk is None:
            return []
        return [link.fallback for link in self.fallback_links.all()]

    def validate_constraints(self, exclude: Any = None) -> None:
        """The identifier's uniqueness is a two-column constraint, so Django reports it for the
        whole form; report it at the identifier field, where the admin typed it."""
        try:
            super().validate_constraints(exclude)
        except ValidationError as error:
            errors: dict[str, Any] = error.update_error_dict({})
            whole = errors.pop(NON_FIELD_ERRORS, [])
            taken = [e for e in whole if IDENTIFIER_TAKEN in ValidationError(e).messages]
            if taken:
                errors.setdefault("identifier", []).append(IDENTIFIER_TAKEN)
            rest = [e for e in whole if e not in taken]
            if rest:
                errors[NON_FIELD_ERRORS] = rest
            raise ValidationError(errors) from None

    def clean(self) -> None:
        if self.provider_id is None:
            return
        spec = self.provider.spec
        errors: dict[str, list[str]] = {}
        for name, (reports, what) in PROVIDER_PRICES.items():
            if getattr(self, name) is not None and not getattr(spec, reports):
                takers = ", ".join(s.label for s in REGISTRY.values() if getattr(s, reports))
                errors[name] = [
                    f"{spec.label} does not report {what}; only these providers' models take "
                    f"this price: {takers}."
                ]
        errors.update(self._long_context_errors())
        try:
            self.options = clean_options(spec.options, self.options or {})
        except ValidationError as error:
            errors["options"] = [
                f"{name}: {message}"
                for name, messages in error.message_dict.items()
                for message in messages
            ]
        if errors:
            raise ValidationError(errors)

    def _long_context_errors(self) -> dict[str, list[str]]:
        """Long-context pricing needs its threshold and both its prices, or none of them."""
        values = {name: getattr(self, name) for name in LONG_CONTEXT_FIELDS}
        if all(value is None for value in values.values()):
            return {}
        if values["long_context_threshold"] is None:
            return {
                "long_context_threshold": [
                    "Enter the prompt size above which the long-context prices apply, or "
                    "clear those prices."
                ]
            }
        return {
            name: [f"Enter the {_label(name).lower()} too, or clear the threshold."]
            for name, value in values.items()
            if value is None
        }

    @property
    def prices(self) -> dict[str, Decimal | None]:
        return {name: getattr(self, name) for name in PRICE_FIELDS}

    @property
    def price_summary(self) -> str:
        if self.input_price is None and self.output_price is None:
            return "no price set"

        def fmt(value: Decimal | None) -> str:
            return "?" if value is None else f"${decimal_as_typed(value)}"

        return f"{fmt(self.input_price)} in · {fmt(self.output_price)} out per 1M"


MAX_FALLBACKS = 3


class ModelFallback(models.Model):
    """Where a model's calls go when its provider fails them before their first byte (every
    central key out, its circuit breaker open, a 5xx or no answer): the fallbacks in order,
    each a model whose API speaks the caller's format (Anthropic's models on Bedrock, an
    OpenAI model on Azure or OpenRouter, or another model of the same provider)."""

    model = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="fallback_links")
    fallback = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["model", "fallback"], name="models_fallback_once"),
            models.UniqueConstraint(fields=["model", "position"], name="models_fallback_position"),
        ]

    def __str__(self) -> str:
        return f"{self.model} → {self.fallback}"


def fallback_problem(model: ModelConfig, fallback: ModelConfig) -> str | None:
    """Why ``fallback`` cannot serve ``model``'s calls; None when it can."""
    if fallback.pk == model.pk:
        return f"{fallback} cannot be its own fallback."
    if fallback.provider.spec.wire_format != model.provider.spec.wire_format:
        return (
            f"{fallback} ({fallback.provider.label}) speaks another API than "
            f"{model.provider.label}: its callers could not read its answers. Choose a model "
            f"of a provider with the {model.provider.spec.wire_format.label} format."
        )
    return None


ALIAS_TAKEN = "This provider already answers this name with a model."


class ModelAliasQuerySet(models.QuerySet["ModelAlias"]):
    def in_display_order(self) -> ModelAliasQuerySet:
        return self.select_related("provider", "model").order_by("provider__type", "pattern")


class ModelAlias(models.Model):
    """A model name callers ask for (a coding agent's default, say), or a pattern of names
    with ``*``, answered by one of the provider's models. The gateway resolves it in its
    one query: a model's own identifier first, else the most specific alias."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="aliases")
    pattern = models.CharField(
        "Name callers ask for",
        max_length=255,
        validators=[validate_alias_pattern],
        help_text="A model name, e.g. claude-opus-4-8, or a pattern: claude-opus-* answers every "
        "name that starts so.",
    )
    model = models.ForeignKey(
        ModelConfig, on_delete=models.CASCADE, related_name="aliases", verbose_name="Answered by"
    )
    # Derived from the pattern when it is saved (models_catalog.services.alias_set).
    like_pattern = models.CharField(max_length=600, editable=False)
    specificity = models.PositiveIntegerField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelAliasQuerySet.as_manager()

    class Meta:
        verbose_name = "model alias"
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "pattern"],
                name="models_catalog_alias_per_provider",
                violation_error_message=ALIAS_TAKEN,
            )
        ]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.model.identifier}"

    def clean(self) -> None:
        if self.provider_id is None or self.model_id is None:
            return
        if self.model.provider_id != self.provider_id:
            raise ValidationError(
                {
                    "model": f"Choose one of {self.provider.label}'s models: an alias answers "
                    "a name with a model of the same provider."
                }
            )
        if self.provider.models.filter(identifier=self.pattern).exists():
            raise ValidationError(
                {
                    "pattern": f"{self.provider.label} has a model with this identifier: calls "
                    "naming it reach that model, never an alias."
                }
            )


class Purpose(models.TextChoices):
    """Why a model is called. Each purpose has its own rule for which model to use (routing)."""

    CHAT = "chat", "Chat"
    TITLE = "title", "Title generation"
    QUICK = "quick", "Quick generation"
    ADVISOR = "advisor", "Advisor"
    SUBAGENT = "subagent", "Subagent"
    COMPUTER_USE = "computer_use", "Computer use"


# The purposes an admin may point at a specific model (quick generation follows title).
OVERRIDABLE_PURPOSES = (Purpose.TITLE, Purpose.ADVISOR, Purpose.SUBAGENT)


class PurposeModelQuerySet(models.QuerySet["PurposeModel"]):
    def as_map(self) -> dict[str, ModelConfig]:
        return {o.purpose: o.model for o in self.select_related("model__provider")}


class PurposeModel(models.Model):
    """A deployment setting: the model to use for one purpose instead of the automatic choice."""

    purpose = models.CharField(
        max_length=16, choices=[(p.value, p.label) for p in OVERRIDABLE_PURPOSES]
    )
    model = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="purposes")
    updated_at = models.DateTimeField(auto_now=True)

    objects = PurposeModelQuerySet.as_manager()

    class Meta:
        verbose_name = "purpose model"
        constraints = [
            models.UniqueConstraint(fields=["purpose"], name="models_catalog_one_model_per_purpose")
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()}: {self.model}"

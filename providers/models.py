from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .crypto import EncryptedSecretField, Secret
from .registry import ProviderType, ProviderTypeSpec, spec_for
from .validators import validate_base_url, validate_region

KEY_POLICY_RULE = (
    "At least one credential source must be on, and the fallback needs both the central key "
    "and user keys."
)


class ProviderStatus(models.TextChoices):
    NOT_CONFIGURED = "not_configured", "Not configured"
    CONFIGURED = "configured", "Configured"
    DISABLED = "disabled", "Disabled"
    NEEDS_REENTRY = "needs_reentry", "Needs re-entry"
    MISSING_KEY = "missing_key", "Missing key"


class KeyState(models.TextChoices):
    SET = "set", "Set"
    NOT_SET = "not_set", "Not set"
    NEEDS_REENTRY = "needs_reentry", "Needs re-entry"


def key_policy_is_valid(*, central: bool, user: bool, fallback: bool) -> bool:
    return (central or user) and (not fallback or (central and user))


def key_policy_problem(*, central: bool, user: bool, fallback: bool) -> str | None:
    """What is wrong with a key policy, its real cause first, then the rule; None if valid."""
    if key_policy_is_valid(central=central, user=user, fallback=fallback):
        return None
    if not central and not user:
        cause = "Neither the central key nor user keys are on, so nobody could use it."
    elif not central:
        cause = "The fallback to the central key needs the central key on: turn the fallback off."
    else:
        cause = "The fallback to the central key only applies when user keys are allowed."
    return f"{cause} {KEY_POLICY_RULE}"


class ProviderQuerySet(models.QuerySet["Provider"]):
    def enabled(self) -> ProviderQuerySet:
        return self.filter(enabled=True)


class Provider(models.Model):
    type = models.CharField(max_length=32, choices=ProviderType.choices)
    api_key = EncryptedSecretField("API key")
    base_url = models.CharField("Base URL", max_length=2048, blank=True, default="")
    region = models.CharField(
        "Region",
        max_length=32,
        blank=True,
        default="",
        validators=[validate_region],
        help_text="The AWS region of the endpoint, e.g. us-east-1 (ignored with a base URL).",
    )
    enabled = models.BooleanField(
        default=True,
        help_text=(
            "A disabled provider keeps its settings and users' keys; its models disappear from "
            "every model selector until it is enabled again."
        ),
    )
    central_key_enabled = models.BooleanField(
        "Central API key",
        default=True,
        help_text="The provider uses a deployment-managed API key entered by an administrator.",
    )
    user_keys_allowed = models.BooleanField(
        "Allow user API keys",
        default=False,
        help_text="Developers may supply their own API key for this provider.",
    )
    central_key_fallback = models.BooleanField(
        "Central key as fallback",
        default=False,
        help_text=(
            "When user keys are allowed, fall back to the central key if a developer has not "
            "set a personal key."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProviderQuerySet.as_manager()
    # Set by provider_save: what else a save changed, in words (e.g. "the default is now X").
    side_effects: list[str] = []

    class Meta:
        ordering = ["type"]
        constraints = [
            models.UniqueConstraint(fields=["type"], name="providers_provider_one_per_type"),
            models.CheckConstraint(
                condition=(Q(central_key_enabled=True) | Q(user_keys_allowed=True))
                & (
                    Q(central_key_fallback=False)
                    | (Q(central_key_enabled=True) & Q(user_keys_allowed=True))
                ),
                name="providers_provider_key_policy_valid",
                violation_error_message=KEY_POLICY_RULE,
            ),
        ]

    def __str__(self) -> str:
        return self.spec.label if self.type in ProviderType.values else self.type

    @property
    def spec(self) -> ProviderTypeSpec:
        return spec_for(self.type)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def effective_base_url(self) -> str | None:
        return self.base_url or self.spec.default_base_url_for(self.region)

    @property
    def key_state(self) -> KeyState:
        if self.api_key is None:
            return KeyState.NOT_SET
        if self.api_key.needs_reentry:
            return KeyState.NEEDS_REENTRY
        return KeyState.SET

    @property
    def has_usable_key(self) -> bool:
        return self.key_state == KeyState.SET

    @property
    def central_key_covers_users_without_a_key(self) -> bool:
        """The central key serves a user with no personal key (policy and a usable key)."""
        return (
            self.central_key_enabled
            and (not self.user_keys_allowed or self.central_key_fallback)
            and self.has_usable_key
        )

    @property
    def status(self) -> ProviderStatus:
        if self.key_state == KeyState.NEEDS_REENTRY:
            return ProviderStatus.NEEDS_REENTRY
        if not self.enabled:
            return ProviderStatus.DISABLED
        if self.central_key_enabled and self.key_state == KeyState.NOT_SET:
            return ProviderStatus.MISSING_KEY
        return ProviderStatus.CONFIGURED

    def clean(self) -> None:
        if self.type not in ProviderType.values:
            # Everything below depends on the type; the field's own error says what to do.
            raise ValidationError({"type": "Choose one of the provider types."})
        errors: dict[str, list[str]] = {}
        problem = key_policy_problem(
            central=self.central_key_enabled,
            user=self.user_keys_allowed,
            fallback=self.central_key_fallback,
        )
        if problem is not None:
            field = "central_key_fallback" if self.central_key_fallback else "central_key_enabled"
            errors[field] = [problem]
        if self.central_key_enabled and self.api_key is None:
            errors["api_key"] = [
                "The central API key is on, so a key is required. Enter one, or turn the "
                "central key off and allow user keys."
            ]
        if self.base_url:
            try:
                validate_base_url(self.base_url)
            except ValidationError as error:
                errors["base_url"] = error.messages
        elif self.spec.base_url_required:
            errors["base_url"] = [f"{self.label} has no default endpoint; enter its base URL."]
        elif self.spec.uses_region and not self.region:
            errors["region"] = [
                f"Choose the {self.label} region (e.g. us-east-1), or enter a base URL."
            ]
        if errors:
            raise ValidationError(errors)

    def set_key(self, raw_key: str | None) -> None:
        self.api_key = Secret(raw_key) if raw_key else None

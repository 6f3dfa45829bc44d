from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .crypto import EncryptedSecretField, Secret
from .registry import ProviderType, ProviderTypeSpec, spec_for
from .validators import validate_base_url, validate_key_label, validate_region

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


class KeyHealth(models.TextChoices):
    ACTIVE = "active", "Active"
    COOLING_DOWN = "cooling_down", "Cooling down"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


class CentralKeyFields(models.Model):
    """A central key's label and what the AI Gateway last saw of it: the provider's own key
    and each further key (ProviderKey) carry these. The gateway writes the state; an admin
    saving a key starts it afresh."""

    key_label = models.CharField(
        "Label",
        max_length=40,
        default="primary",
        db_default="primary",
        validators=[validate_key_label],
        help_text="A name for this key (e.g. team-a, backup), shown on usage rows.",
    )
    key_last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Rate-limited (429, or the provider's overload status): skipped until then.
    key_cooling_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Refused by the provider (401, 403): why, in words; skipped while others work.
    # Database defaults too: a process of the version before, still running during an
    # upgrade, inserts providers without these.
    key_attention = models.CharField(
        max_length=300, blank=True, default="", db_default="", editable=False
    )
    key_last_error = models.CharField(
        max_length=300, blank=True, default="", db_default="", editable=False
    )
    key_last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def key_health(self, now: datetime | None = None) -> KeyHealth:
        if self.key_attention:
            return KeyHealth.NEEDS_ATTENTION
        if self.key_cooling_until and self.key_cooling_until > (now or timezone.now()):
            return KeyHealth.COOLING_DOWN
        return KeyHealth.ACTIVE

    @property
    def health(self) -> KeyHealth:
        return self.key_health()

    @property
    def key_state(self) -> KeyState:
        """Whether the key is stored, and can be decrypted (``api_key``: the subclass's)."""
        api_key = self.api_key  # type: ignore[attr-defined]
        if api_key is None:
            return KeyState.NOT_SET
        return KeyState.NEEDS_REENTRY if api_key.needs_reentry else KeyState.SET

    def start_afresh(self) -> None:
        """A new key: nothing the gateway saw of the old one applies to it."""
        self.key_last_used_at = self.key_cooling_until = self.key_last_error_at = None
        self.key_attention = self.key_last_error = ""


class ProviderQuerySet(models.QuerySet["Provider"]):
    def enabled(self) -> ProviderQuerySet:
        return self.filter(enabled=True)


class Provider(CentralKeyFields):
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
        self.start_afresh()

    def central_key_for_direct_calls(self) -> Secret | None:
        """The key a call made without the gateway takes: its own while the gateway has seen
        nothing wrong with it, else the first further key it has not (one query, only then),
        else its own still."""
        if self.api_key is None or self.pk is None or self.key_health() == KeyHealth.ACTIVE:
            return self.api_key
        for key in self.further_keys.all():
            if key.key_health() == KeyHealth.ACTIVE and key.key_state == KeyState.SET:
                return key.api_key  # type: ignore[no-any-return]
        return self.api_key

    def central_keys(self) -> list[CentralKeyFields]:
        """Its central keys in the order calls try them: its own, then the further ones
        (prefetch ``further_keys`` to read many providers' keys in one query)."""
        own: list[CentralKeyFields] = [self] if self.api_key is not None else []
        return own + list(self.further_keys.all()) if self.pk is not None else own


MAX_CENTRAL_KEYS = 10


class ProviderKey(CentralKeyFields):
    """A further central key of a provider, beside its own (``Provider.api_key``): the
    gateway spreads calls across them and goes on to the next when one is rate-limited or
    refused. Removing the provider's own key moves the oldest further key into its place."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="further_keys")
    api_key = EncryptedSecretField("API key")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "further central key"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "key_label"], name="providers_providerkey_label_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} key {self.key_label}"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "Closed"
    OPEN = "open", "Open"
    PROBING = "probing", "Trying again"


class Breaker(models.Model):
    """A circuit breaker for one model of a provider, written by the AI Gateway: it counts
    the calls that failed at the provider (5xx, no answer) in a window; past
    AI_GATEWAY_BREAKER_FAILURES it opens, and calls fail at once (or go to a fallback model)
    until ``open_until``; then one call tries the provider again: its success closes the
    breaker (the row goes), its failure opens it anew. Shared by every worker and replica:
    the gateway reads it in each call's one query."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="breakers")
    # The model as the provider knows it (models live in an app above this one).
    model_identifier = models.CharField(max_length=255)
    failures = models.PositiveIntegerField(default=0)
    window_started = models.DateTimeField()
    open_until = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # While a call tries the provider again after the breaker was open: until when it may.
    probe_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model_identifier"], name="providers_breaker_one_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.model_identifier} breaker"

    def state(self, now: datetime | None = None) -> BreakerState:
        if self.open_until is None:
            return BreakerState.CLOSED
        # Past open_until, the next call tries the provider again.
        return (
            BreakerState.OPEN
            if self.open_until > (now or timezone.now())
            else (BreakerState.PROBING)
        )

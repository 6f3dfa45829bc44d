"""What a user can use: providers resolved for them, their usable models, the selector rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models_catalog.models import ModelConfig
from providers.models import Provider
from userkeys.models import UserKey

from .credentials import Credential, Resolution, Unavailable, UnavailableReason, resolve_credential


@dataclass
class ProviderModels:
    provider: Provider
    models: list[ModelConfig] = field(default_factory=list)


@dataclass
class Availability:
    groups: list[ProviderModels]
    unavailable: list[Unavailable]
    default_model: ModelConfig | None
    # Every enabled provider's resolution for this user, by provider id.
    resolutions: dict[int, Resolution] = field(default_factory=dict)

    @property
    def models(self) -> list[ModelConfig]:
        return [model for group in self.groups for model in group.models]

    @property
    def grouped(self) -> bool:
        """The seed groups the selector by provider only when several providers are active."""
        return len(self.groups) > 1

    def model_by_id(self, model_id: Any) -> ModelConfig | None:
        return next((m for m in self.models if str(m.pk) == str(model_id)), None)

    def preselect(self, last_used: Any = None) -> ModelConfig | None:
        """Last used (if still available) -> admin default (if available) -> first available."""
        return self.model_by_id(last_used) or self.default_model or next(iter(self.models), None)

    @property
    def user_can_fix(self) -> bool:
        return any(u.reason.user_can_fix for u in self.unavailable)

    def empty_message(self) -> str | None:
        if self.models:
            return None
        if self.user_can_fix:
            labels = ", ".join(u.provider.label for u in self.unavailable if u.reason.user_can_fix)
            return f"Add your personal API key for {labels} in Settings → API Keys to use models."
        return "No models are available to you. Contact an administrator."


def availability_for(user: Any) -> Availability:
    """Three queries whatever the number of providers, models and users."""
    providers = list(Provider.objects.enabled())
    user_keys = {
        k.provider_id: k.api_key
        for k in UserKey.objects.for_user(user).only("provider_id", "api_key")
    }
    resolutions = {p.pk: resolve_credential(p, user_keys.get(p.pk)) for p in providers}
    usable_ids = [pk for pk, r in resolutions.items() if isinstance(r, Credential)]
    groups = {pk: ProviderModels(resolutions[pk].provider) for pk in usable_ids}
    models = ModelConfig.objects.usable().filter(provider_id__in=usable_ids).in_display_order()
    for model in models:
        model.provider = groups[model.provider_id].provider
        groups[model.provider_id].models.append(model)
    return Availability(
        groups=[g for g in groups.values() if g.models],
        unavailable=[r for r in resolutions.values() if isinstance(r, Unavailable)],
        default_model=next((m for g in groups.values() for m in g.models if m.is_default), None),
        resolutions=resolutions,
    )


def reason_action(reason: UnavailableReason) -> str:
    return "add_personal_key" if reason.user_can_fix else "contact_administrator"

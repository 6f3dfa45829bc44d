"""Who can use what right now, counted for admins: "3 of 40 people", and the default star's
problems. Counts follow the same truth table as routing (``decide``), on aggregated data, so
they cost two queries whatever the number of people.

A saved personal key counts as usable here even if the keyring can no longer decrypt it: telling
those apart means decrypting every key, and `manage.py check` already reports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import EllipsisType

from django.contrib.auth import get_user_model
from django.db.models import Count

from models_catalog.models import ModelConfig
from providers.models import Provider
from userkeys.models import UserKey

from .credentials import CredentialSource, decide


@dataclass(frozen=True)
class Reach:
    people: int  # active people who can use the provider now
    total: int  # active people
    with_own_key: int  # of ``people``, those using a personal key

    @property
    def only_personal_keys(self) -> bool:
        return self.people > 0 and self.people == self.with_own_key < self.total

    def __str__(self) -> str:
        return f"{self.people} of {self.total} {'person' if self.total == 1 else 'people'}"


def provider_reach(providers: Iterable[Provider]) -> dict[int, Reach]:
    providers = list(providers)
    total = get_user_model()._default_manager.filter(is_active=True).count()
    with_keys = dict(
        UserKey.objects.filter(user__is_active=True, provider__in=providers)
        .order_by()
        .values_list("provider_id")
        .annotate(count=Count("id"))
    )
    reach = {}
    for provider in providers:
        flags = {
            "enabled": provider.enabled,
            "central_key_enabled": provider.central_key_enabled,
            "user_keys_allowed": provider.user_keys_allowed,
            "central_key_fallback": provider.central_key_fallback,
            "central_key_usable": provider.has_usable_key,
        }
        keyed = with_keys.get(provider.pk, 0)
        own = keyed if decide(**flags, user_key_usable=True) == CredentialSource.USER else 0
        covered = isinstance(decide(**flags, user_key_usable=False), CredentialSource)
        rest = total - keyed if covered else 0
        reach[provider.pk] = Reach(people=own + rest, total=total, with_own_key=own)
    return reach


def default_model_warnings(model: ModelConfig | EllipsisType | None = ...) -> list[str]:
    """What is wrong with the starred model, in words for the Models tab and `manage.py check`.

    ``model``: the default model (with its provider) if the caller has it already.
    """
    if isinstance(model, EllipsisType):
        model = ModelConfig.objects.with_provider().filter(is_default=True).first()
    if model is None:
        return []
    if not model.enabled:
        return [
            f"The default model {model} is disabled, so nobody starts on it. Enable it or star "
            "another model."
        ]
    provider = model.provider
    if not provider.enabled:
        return [
            f"The default model {model} belongs to {provider.label}, which is disabled, so "
            "nobody starts on it. Enable the provider or star another model."
        ]
    reach = provider_reach([provider])[provider.pk]
    if reach.people == 0:
        return [
            f"Nobody can use the default model {model} now: {_why_nobody(provider)} Star a model "
            "people can use."
        ]
    if reach.only_personal_keys:
        return [
            f"Only the {reach.people} {'person' if reach.people == 1 else 'people'} with a "
            f"personal {provider.label} key can use the default model {model}; everyone else "
            "starts on another model."
        ]
    return []


def _why_nobody(provider: Provider) -> str:
    if (
        provider.central_key_enabled
        and not provider.has_usable_key
        and not (provider.user_keys_allowed and not provider.central_key_fallback)
    ):
        return f"{provider.label} has no usable central key."
    if provider.user_keys_allowed:
        return f"{provider.label} needs a personal key and nobody has saved one."
    return f"{provider.label} has no usable key."

from django.core.management.base import CommandError

from models_catalog.models import ModelConfig
from providers.models import Provider
from providers.registry import ProviderType


def configured_provider(provider_type: ProviderType) -> Provider:
    provider = Provider.objects.filter(type=provider_type).first()
    if provider is None:
        raise CommandError(f"{provider_type.label} is not configured (see provider_set)")
    return provider


def find_model(provider_type: ProviderType, identifier: str) -> ModelConfig:
    model = (
        ModelConfig.objects.with_provider()
        .filter(provider__type=provider_type, identifier=identifier)
        .first()
    )
    if model is None:
        raise CommandError(f"{provider_type.label} has no model {identifier!r} (see models_list)")
    return model

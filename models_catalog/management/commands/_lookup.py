from django.core.management.base import CommandError

from models_catalog.models import ModelConfig
from providers.registry import ProviderType


def find_model(provider_type: ProviderType, identifier: str) -> ModelConfig:
    model = (
        ModelConfig.objects.with_provider()
        .filter(provider__type=provider_type, identifier=identifier)
        .first()
    )
    if model is None:
        raise CommandError(f"{provider_type.label} has no model {identifier!r} (see models_list)")
    return model

import argparse

from providers.models import Provider
from providers.registry import ProviderType, parse_provider_type


def provider_type_arg(text: str) -> ProviderType:
    try:
        return parse_provider_type(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def configured_provider(provider_type: ProviderType) -> Provider:
    from django.core.management.base import CommandError

    provider = Provider.objects.filter(type=provider_type).first()
    if provider is None:
        raise CommandError(f"{provider_type.label} is not configured (see provider_set)")
    return provider

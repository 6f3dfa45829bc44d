from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from models_catalog.models import ModelConfig
from providers.crypto import Secret
from providers.registry import ProviderType
from userkeys.models import UserKey


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Fail any attempt to open a connection; yields the attempts made."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"unexpected network call to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


@pytest.fixture
def big_deployment(make_provider, developer):
    """8 providers with mixed policies, 500 models, 1,000 users with keys."""
    providers = []
    for index, provider_type in enumerate(ProviderType):
        if index % 3 == 0:
            providers.append(make_provider(provider_type.value))
        elif index % 3 == 1:
            providers.append(make_provider(provider_type.value, api_key=None))
        else:
            providers.append(
                make_provider(
                    provider_type.value, user_keys_allowed=True, central_key_fallback=True
                )
            )
    ModelConfig.objects.bulk_create(
        ModelConfig(
            provider=providers[i % 8],
            identifier=f"m-{i}",
            display_name=f"M {i:03}",
            context_limit=1000,
            enabled=i % 10 != 0,
        )
        for i in range(500)
    )
    users = User.objects.bulk_create(User(username=f"user-{i}") for i in range(1000))
    UserKey.objects.bulk_create(
        UserKey(user=user, provider=providers[i % 8], api_key=Secret(f"sk-u-{i}"))
        for i, user in enumerate([*users, developer])
    )
    return providers

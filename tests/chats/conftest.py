from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from chats.runner import run_chat
from fakeprovider.app import FakeProvider
from fakeprovider.server import running_fake_provider
from gateway import lifecycle
from models_catalog.models import ModelConfig
from models_catalog.services import model_save
from providers.services import provider_save
from tokens.models import ApiToken
from tokens.services import token_create


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeProvider, str]]:
    with running_fake_provider() as running:
        yield running


@dataclass
class Setup:
    fake: FakeProvider
    model: ModelConfig
    small: ModelConfig
    token: ApiToken
    developer: Any


@pytest.fixture
def setup(fake, developer) -> Setup:
    fake_provider, url = fake
    fake_provider.clear()
    provider = provider_save(
        provider_type="openai-compatible",
        actor=None,
        changes={"base_url": url + "/v1"},
        api_key="sk-central-chats-CANARY",
    )

    def add(identifier: str) -> ModelConfig:
        return model_save(
            model=None,
            provider=provider,
            fields={"identifier": identifier, "display_name": identifier, "context_limit": 8000},
            options={},
            actor=None,
        )[0]

    model, small = add("fake-gpt"), add("fake-gpt-mini")
    token = token_create(user=developer, name="browser", lifetime=timedelta(days=1), actor=None)
    return Setup(fake_provider, model, small, token.token, developer)


def run_turns(chat_id: int, runner: str = "runner-1") -> list[tuple[str, dict]]:
    """Run the chat's turns in a fresh event loop; returns the events emitted."""
    events: list[tuple[str, dict]] = []

    async def emit(name: str, data: dict) -> None:
        events.append((name, data))

    async def main() -> None:
        # The thread the turn's database work runs in keeps its connection from test to
        # test; a test that ended every connection but its own (a database restart) leaves
        # it broken. Start each run on fresh ones.
        await sync_to_async(connections.close_all)()
        try:
            await run_chat(chat_id, runner, emit)
        finally:
            await lifecycle.flush_usage()
            await lifecycle.shutdown()

    asyncio.run(main())
    return events

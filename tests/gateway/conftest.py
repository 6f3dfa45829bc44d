from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from fakeprovider.app import FakeProvider
from fakeprovider.server import running_fake_provider
from gateway import lifecycle
from gateway.models import UsageRecord
from models_catalog.models import ModelConfig
from models_catalog.services import model_save
from providers.services import provider_save
from tests.servers import served_app
from tokens.services import NewToken, token_create

CENTRAL = {
    "openai": "sk-central-openai-CANARY-1111",
    "anthropic": "sk-central-anthropic-CANARY-2222",
    "google": "central-google-CANARY-3333",
    "aws-bedrock": "central-bedrock-CANARY-4444",
    "azure-openai": "central-azure-CANARY-5555",
    "openai-compatible": "sk-central-compatible-CANARY-6666",
    "openrouter": "sk-central-openrouter-CANARY-7777",
    "vercel-ai-gateway": "central-vercel-CANARY-8888",
}
PATHS = {  # where each type's base URL points on the fake provider
    "openai": "/v1",
    "anthropic": "",
    "google": "/v1beta",
    "aws-bedrock": "",
    "azure-openai": "/openai/v1",
    "openai-compatible": "/v1",
    "openrouter": "/v1",
    "vercel-ai-gateway": "/v1",
}
MODELS = {
    "openai": "fake-gpt",
    "anthropic": "claude-fake",
    "google": "gemini-fake",
    "aws-bedrock": "anthropic.claude-fake-v1:0",
    "azure-openai": "fake-deployment",
    "openai-compatible": "fake-llama",
    "openrouter": "fake/router-model",
    "vercel-ai-gateway": "fake/vercel-model",
}
# Prices per 1M tokens: input, output, cache read, cache write, cache write kept an hour;
# and per 1,000 web searches.
PRICES = {
    "input_price": 3,
    "output_price": 15,
    "cache_read_price": "0.3",
    "cache_write_price": 4,
    "cache_write_1h_price": 6,
    "web_search_price": 10,
}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeProvider, str]]:
    with running_fake_provider() as running:
        yield running


@pytest.fixture
def fake_provider(fake) -> FakeProvider:
    fake[0].clear()
    return fake[0]


@dataclass
class Deployment:
    fake: FakeProvider
    url: str
    token: NewToken
    developer: Any
    started: datetime

    def usage(self) -> Any:
        """This test's usage rows (a server may still write an earlier test's late row)."""
        return UsageRecord.objects.filter(created_at__gte=self.started).order_by("id")

    def model(self, provider_type: str) -> ModelConfig:
        return ModelConfig.objects.with_provider().get(provider__type=provider_type)


@pytest.fixture
def deployment(request, fake, fake_provider, developer) -> Iterator[Deployment]:
    """Every provider type, pointed at the fake provider, with a central key, user keys
    allowed with fallback, and one priced model each.

    With the module's server in use, the test ends once that server has written its usage
    rows: a row written while the test's cleanup empties the tables would deadlock with it
    (TRUNCATE against the usage insert and its daily-sums trigger), or be left for the next
    test to count."""
    _, url = fake
    for provider_type, key in CENTRAL.items():
        provider = provider_save(
            provider_type=provider_type,
            actor=None,
            changes={
                "base_url": url + PATHS[provider_type],
                "user_keys_allowed": True,
                "central_key_fallback": True,
            },
            api_key=key,
        )
        model_save(
            model=None,
            provider=provider,
            fields={
                "identifier": MODELS[provider_type],
                "display_name": f"Fake {provider_type}",
                "context_limit": 100_000,
                **PRICES,
                # Only Anthropic's API reports hour-long cache writes, so only it has a price.
                "cache_write_1h_price": PRICES["cache_write_1h_price"]
                if provider.spec.prices_cache_writes_by_ttl
                else None,
            },
            options={},
            actor=None,
        )
    token = token_create(user=developer, name="tests", lifetime=timedelta(days=1), actor=None)
    global _started
    _started = timezone.now()
    yield Deployment(fake_provider, url, token, developer, _started)
    if "gateway_server" in request.fixturenames:
        usage_written()


def usage_written(quiet: float = 0.08, timeout: float = 5) -> None:
    """Wait until no usage row has been written for ``quiet`` seconds (a server writes a
    call's row within 0.02 s of it; see tests.servers)."""
    deadline = time.monotonic() + timeout
    seen = UsageRecord.objects.count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = UsageRecord.objects.count()
        if now == seen:
            return
        seen = now


@pytest.fixture(scope="module")
def gateway_server(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The whole app under uvicorn (one worker), reading the test database."""
    with django_db_blocker.unblock(), served_app(workers=1, OUTBOUND_READ_TIMEOUT="2") as base:
        yield base


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run gateway code in a fresh event loop, then write its usage rows and close it."""

    async def main() -> Any:
        try:
            return await make()
        finally:
            await lifecycle.flush_usage()
            await lifecycle.shutdown()

    return asyncio.run(main())


_started = datetime.min.replace(tzinfo=UTC)


def wait_for_usage(
    count: int, timeout: float = 10, since: datetime | None = None
) -> list[UsageRecord]:
    """This test's rows (or those of calls made ``since``); written by a server process a
    moment after its response."""
    recent = UsageRecord.objects.filter(created_at__gte=since or _started).order_by("id")
    rows: list[UsageRecord] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(recent.all())
        if len(rows) >= count:
            time.sleep(0.1)  # and no more than that (servers write within 0.02 s)
            return list(recent.all())
        time.sleep(0.05)
    raise AssertionError(f"expected {count} usage rows, found {len(rows)}")


def expected_cost(
    input_tokens: int,
    output_tokens: int,
    read: int,
    write: int,
    write_1h: int = 0,
    searches: int = 0,
) -> Decimal:
    """At PRICES; ``write_1h`` of the ``write`` cache writes were kept an hour."""
    prices = (Decimal(3), Decimal(15), Decimal("0.3"), Decimal(4), Decimal(6))
    counts = (input_tokens, output_tokens, read, write - write_1h, write_1h)
    total = sum((Decimal(n) * p for n, p in zip(counts, prices, strict=True)), Decimal(0))
    total += searches * 10 * 1_000  # 10 per 1,000 searches is 10,000 per million
    return (total / Decimal(1_000_000)).quantize(Decimal("0.000000001"))


def admin_sql(sql: str, *params: object) -> None:
    """Run ``sql`` on the server's ``postgres`` database, on a connection of its own (Django's
    may not run in an event loop, and a database cannot refuse its own connections)."""
    import psycopg

    from tests.servers import database_url

    with psycopg.connect(database_url().rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(sql, params)


class PlantedAnswer:
    """What ``lib.outbound.request`` returns, made of a test's bytes: an upstream that can
    say anything."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]):
        self.status, self.raw_headers, self._chunks = status, headers, chunks

    async def read(self, limit: int | None = None) -> bytes:
        return b"".join(self._chunks)

    async def iter_chunks(self):
        for chunk in self._chunks:
            yield chunk

    def release(self) -> None:
        pass


def plant_upstream(
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
) -> None:
    """Every call the gateway makes (in this process) is answered with these bytes."""
    from gateway import app as gateway_app

    async def answer(*args: Any, **kwargs: Any) -> PlantedAnswer:
        return PlantedAnswer(status, headers, chunks)

    monkeypatch.setattr(gateway_app.outbound, "request", answer)

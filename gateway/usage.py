"""Usage rows: built per call, queued without waiting, written in batches by a background task.

A full queue drops the row, counts it and logs it (never silently). The queue is drained on
graceful shutdown (the ASGI lifespan), and ``flush()`` waits until everything queued so far
is written (tests, commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings

from .store import USAGE_COLUMNS, store
from .wire import Usage

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_WAIT = 0.2  # seconds to gather more rows before writing a batch
ONE_MILLION = Decimal(1_000_000)


@dataclass(slots=True)
class UsageEvent:
    created_at: datetime
    user_id: int | None
    username: str
    api_key_id: int | None
    provider_id: int | None
    provider_type: str
    model_id: int | None
    model_identifier: str
    endpoint: str
    streamed: bool
    credential_source: str
    route: str
    user_agent: str
    status: int
    error_kind: str
    latency_ms: float
    ttfb_ms: float | None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal | None = None

    def as_row(self) -> tuple:
        # Not dataclasses.astuple: it deep-copies every value (~0.2 ms a row, measured).
        return tuple(getattr(self, name) for name in USAGE_COLUMNS)


def cost_of(
    usage: Usage, prices: tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
) -> Decimal | None:
    """USD for these tokens at the model's prices per 1M; None (unknown, never 0) when the
    model has no prices or a kind of token was used whose price is not set."""
    if all(price is None for price in prices):
        return None
    total = Decimal(0)
    tokens = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    )
    for count, price in zip(tokens, prices, strict=True):
        if count:
            if price is None:
                return None
            total += Decimal(count) * price / ONE_MILLION
    return total.quantize(Decimal("0.000000001"))


class UsageWriter:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[UsageEvent] = asyncio.Queue(
            maxsize=settings.AI_GATEWAY_USAGE_QUEUE_SIZE
        )
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0

    def record(self, event: UsageEvent) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                logger.warning("usage queue full: %d usage row(s) dropped so far", self.dropped)

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            deadline = time.monotonic() + BATCH_WAIT
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                    except TimeoutError:
                        break
            await self._write(batch)
            for _ in batch:
                self.queue.task_done()

    async def _write(self, batch: list[UsageEvent]) -> None:
        now = datetime.now(UTC)
        tokens = {e.api_key_id for e in batch if e.api_key_id is not None}
        rows = [e.as_row() for e in batch]
        touches = [(now, token, now - timedelta(minutes=1)) for token in tokens]
        for attempt in (1, 2):
            try:
                await store().write_usage(rows, touches)
                self.written += len(batch)
                return
            except Exception:
                if attempt == 2:
                    self.dropped += len(batch)
                    logger.exception("could not write %d usage row(s); dropped", len(batch))
                else:
                    await asyncio.sleep(0.5)

    async def flush(self) -> None:
        if self._task is not None and not self._task.done():
            await self.queue.join()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UsageWriter] = (
    weakref.WeakKeyDictionary()
)


def writer() -> UsageWriter:
    loop = asyncio.get_running_loop()
    current = _writers.get(loop)
    if current is None:
        current = _writers[loop] = UsageWriter()
    return current


async def close_writer() -> None:
    current = _writers.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()

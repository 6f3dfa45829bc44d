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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from lib.loops import PerLoop
from lib.settings_cache import cached_settings
from spend.holds import Settlement

from .budgets import leases
from .load import worker as worker_load
from .metrics import gateway_metrics
from .redis_counters import counters
from .store import (
    USAGE_COLUMNS,
    DatabaseUnavailable,
    LongContext,
    PriceFactors,
    Prices,
    store,
)
from .tracing import CallTrace, export
from .wire import Usage

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
RETRY_WAIT = 2.0  # seconds before a batch the database could not take is tried again


def cost_of(
    usage: Usage,
    prices: Prices,
    long_context: LongContext = (None, None, None),
    price_factors: PriceFactors | None = None,
) -> Decimal | None:
    """USD for these tokens at the model's prices (micro-USD per 1M tokens, see CallRow), to
    the nano-USD, half to even; None (unknown, never 0) when the model has no prices or a
    kind of token was used whose price is not set.

    A call whose prompt (cache reads and writes included) is over the model's long-context
    threshold is priced at the long-context input and output prices, its cache prices scaled
    by the same factor as its input price. A call on a service tier (OpenAI's or Gemini's
    flex or priority, OpenAI's ultrafast), or in Anthropic's fast mode or US-only inference,
    costs its tokens times the factor of each (``price_factors``; None: the provider type's
    prices have no variants). Web searches are priced per search, on top.

    In whole numbers of 10^-12 USD (micro-USD x tokens / 1M), exact like Decimal, which cost
    ~18k instructions more per call (callgrind). One Decimal is made, for the row."""
    if prices == _NO_PRICES:
        return None
    read, write, hour = (
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.cache_write_1h_tokens,
    )
    if hour > write:
        hour = write
    cache = (read, write - hour, hour)
    threshold = long_context[0]
    if threshold is not None and usage.input_tokens + read + write > threshold:
        return _long_context_cost(usage, prices, long_context, cache, price_factors)
    total = 0
    # (The prices' last, per search, has no token count to pair with.)
    for count, price in zip(
        (usage.input_tokens, usage.output_tokens, *cache), prices, strict=False
    ):
        if count:
            if price is None:
                return None
            total += price * count
    if usage.web_searches or (usage.price_variants and price_factors is not None):
        return _with_variant_and_searches(usage, prices, price_factors, total, 1)
    # Rounded inline, not by _usd: this runs on every call. Under callgrind the pricing by
    # cache ttl and context length first cost ~5k instructions a call; no extra calls here
    # and in openai_usage took that back.
    nano, rest = divmod(total, 1000)
    if rest > 500 or (rest == 500 and nano % 2):
        nano += 1
    if nano >= _COST_LIMIT_NANO:
        return None  # no call costs a billion dollars: unknown, and the row still fits
    return Decimal(nano).scaleb(-9)


def worst_case_tokens(
    prompt_bytes: int, asked_output: int | None, context_limit: int | None, model_output: int | None
) -> tuple[int, int]:
    """The most tokens a call may take in and give out: its prompt has at most one token per
    byte, and at most the model's context; its output is what it asks for at most, else the
    model's setting, else its context, else ``BUDGETS_DEFAULT_OUTPUT_TOKENS``."""
    output = asked_output or model_output or context_limit
    output = output or cached_settings.BUDGETS_DEFAULT_OUTPUT_TOKENS
    prompt = prompt_bytes
    if context_limit:
        prompt, output = min(prompt, context_limit), min(output, context_limit)
    return prompt, output


def worst_case_nano(
    prompt_bytes: int,
    asked_output: int | None,
    prices: Prices,
    long_context: LongContext,
    price_factors: PriceFactors,
    context_limit: int | None,
    model_output: int | None,
) -> int:
    """The most a call may cost, in nano-USD, rounded up: what its budget holds take.

    Its prompt has at most one token per byte (a tokenizer's token is at least a byte of
    text; JSON syntax and base64 images have far fewer), and at most the model's context;
    each token priced as the dearest kind of input (a cache write, a long-context prompt).
    Its output is what it asks for at most, else the model's setting, else its context, at
    the dearest output price. A model without prices is held at the highest price it has,
    else ``BUDGETS_UNPRICED_USD_PER_MILLION``: never zero. Times its dearest price factor."""
    token_prices = [p for p in (*prices[:5], *long_context[1:]) if p is not None]
    highest = max(
        token_prices, default=round(cached_settings.BUDGETS_UNPRICED_USD_PER_MILLION * 1e6)
    )
    per_input = max(
        (p for p in (prices[0], prices[3], prices[4], long_context[1]) if p is not None),
        default=highest,
    )
    per_output = max((p for p in (prices[1], long_context[2]) if p is not None), default=highest)
    prompt, output = worst_case_tokens(prompt_bytes, asked_output, context_limit, model_output)
    factor = max((f for f in price_factors if f is not None), default=1_000_000)
    pico = (prompt * per_input + output * per_output) * max(factor, 1_000_000) // 1_000_000
    return -(-pico // 1000)


def _long_context_cost(
    usage: Usage,
    prices: Prices,
    long_context: LongContext,
    cache: tuple[int, int, int],
    price_factors: PriceFactors | None,
) -> Decimal | None:
    _, long_input, long_output = long_context
    cache_total = 0
    for count, price in zip(cache, prices[2:5], strict=True):
        if count:
            if price is None:
                return None
            cache_total += price * count
    plain = 0
    for count, price in ((usage.input_tokens, long_input), (usage.output_tokens, long_output)):
        if count:
            if price is None:
                return None
            plain += price * count
    if not cache_total:
        return _with_variant_and_searches(usage, prices, price_factors, plain, 1)
    base_input = prices[0]
    if not base_input or long_input is None:
        return None  # no factor to scale the cache prices by
    # plain + cache_total x long_input / base_input, as one fraction rounded once.
    tokens = plain * base_input + cache_total * long_input
    return _with_variant_and_searches(usage, prices, price_factors, tokens, base_input)


# Which of PriceFactors each price variant takes. "unknown" (a tier no factor prices) takes
# none: such a call's cost is unknown.
_FACTOR_OF_VARIANT = {"flex": 0, "priority": 1, "us_inference": 2, "fast": 3, "ultrafast": 4}


def _with_variant_and_searches(
    usage: Usage,
    prices: Prices,
    price_factors: PriceFactors | None,
    tokens: int,
    denominator: int,
) -> Decimal | None:
    """The call's cost from its tokens' (``tokens`` / ``denominator`` pico-USD): times the
    factor of each price variant it ran under, plus its web searches at the price per 1,000
    (never scaled); one fraction, rounded once. None when a factor or the search price it
    needs is not set."""
    if price_factors is not None:
        for variant in usage.price_variants:
            position = _FACTOR_OF_VARIANT.get(variant)
            factor = None if position is None else price_factors[position]
            if factor is None:
                return None
            tokens *= factor  # in millionths
            denominator *= 1_000_000
    if usage.web_searches:
        price = prices[5]
        if price is None:
            return None
        tokens += price * usage.web_searches * 1000 * denominator
    return _usd(tokens, denominator)


def _usd(pico_numerator: int, denominator: int) -> Decimal | None:
    """pico_numerator / denominator pico-USD, to the nano-USD, half to even."""
    nano, rest = divmod(pico_numerator, 1000 * denominator)
    if 2 * rest > 1000 * denominator or (2 * rest == 1000 * denominator and nano % 2):
        nano += 1
    if nano >= _COST_LIMIT_NANO:
        return None  # no call costs a billion dollars: unknown, and the row still fits
    return Decimal(nano).scaleb(-9)


_NO_PRICES = (None, None, None, None, None, None)
# What the usage table's cost column holds (numeric(18, 9)), in nano-USD: under $1e9.
_COST_LIMIT_NANO = 10**18


class UsageWriter:
    """Rows wait in a list (at most ``AI_GATEWAY_USAGE_QUEUE_SIZE``); one task writes them
    when ``BATCH_SIZE`` have gathered or ``AI_GATEWAY_USAGE_BATCH_WAIT`` seconds after the
    first, whichever is sooner.
    Recording a row costs a list append: no task, future or timer per call."""

    def __init__(self) -> None:
        self.capacity = settings.AI_GATEWAY_USAGE_QUEUE_SIZE
        self.batch_wait = settings.AI_GATEWAY_USAGE_BATCH_WAIT
        self.dropped = 0
        self.written = 0
        self._rows: list[tuple[Any, ...]] = []
        # Of the queued rows (by id), those of calls budgets count: what settles them.
        self._settlements: dict[int, list[Settlement]] = {}
        # Of the queued rows (by id), those of traced calls: their spans' ids.
        self._traces: dict[int, CallTrace] = {}
        # Leases this process gives back (written with the next batch, or alone).
        self._returns: list[Settlement] = []
        self._writing = False
        self._flushing = False
        self._closing = False
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0

    def record(
        self,
        row: tuple[Any, ...],
        settlements: list[Settlement] | None = None,
        trace: CallTrace | None = None,
    ) -> None:
        """Queue one call's usage row: its values in ``USAGE_COLUMNS`` order; for a call
        budgets count, what settles them (written in the same transaction); for a traced
        call, its span's ids (the span is made once the row is written)."""
        self._start()
        if len(self._rows) >= self.capacity:
            self.dropped += 1
            if (metrics := gateway_metrics()) is not None:
                metrics.dropped.inc()
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                logger.warning("usage queue full: %d usage row(s) dropped so far", self.dropped)
            return
        self._rows.append(row)
        if settlements is not None:
            self._settlements[id(row)] = settlements
        if trace is not None:
            self._traces[id(row)] = trace
        if len(self._rows) >= BATCH_SIZE:
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_wait, self._wake.set)

    def _export_spans(self, rows: list[tuple[Any, ...]]) -> None:
        traces = {id(row): trace for row in rows if (trace := self._traces.pop(id(row), None))}
        try:
            export(rows, traces)
        except Exception:  # a tracing fault must not cost the usage rows
            logger.exception("could not export %d call span(s)", len(traces))

    def give_back(self, settlements: list[Settlement]) -> None:
        """Queue leases this process gives back; written soon, with or without rows."""
        self._start()
        self._returns.extend(settlements)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_wait, self._wake.set)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            wait = self.batch_wait
            while self._rows or self._returns:
                batch, self._rows = self._rows[:BATCH_SIZE], self._rows[BATCH_SIZE:]
                returns, self._returns = self._returns, []
                self._writing = True
                try:
                    written = await self._write(batch, returns)
                finally:
                    self._writing = False
                if not written:
                    self._keep(batch)
                    self._returns[:0] = returns
                    wait = RETRY_WAIT
                    break
                if len(self._rows) < BATCH_SIZE and not self._flushing:
                    break  # the rest waits for its own window: fewer, fuller batches
            if not self._rows and not self._returns:
                self._flushing = False
                self._drained.set()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(wait, self._wake.set)

    async def _write(self, rows: list[tuple[Any, ...]], returns: list[Settlement]) -> bool:
        """Write a batch (one more try half a second after a failure). False: the database
        could not be reached, and the batch is to be kept for a later try."""
        now = datetime.now(UTC)
        tokens = {row[_API_KEY_ID] for row in rows if row[_API_KEY_ID] is not None}
        # In id order: batches of several workers touching the same tokens lock them in the
        # same order (and the daily sums' trigger locks its rows in key order), no deadlock.
        touches = [(now, token, now - timedelta(minutes=1)) for token in sorted(tokens)]
        held = self._settlements
        settlements = list(returns)
        if held:
            for row in rows:
                settlements.extend(held.get(id(row), ()))
        for attempt in (1, 2):
            try:
                if cached_settings.REDIS_URL:  # the counters are not in the database
                    await store().write_usage(rows, touches)
                    passed = await _settle_in_redis(settlements)
                else:
                    passed = await store().write_usage(rows, touches, leases().holder, settlements)
                self.written += len(rows)
                if self._traces:
                    self._export_spans(rows)
                if (metrics := gateway_metrics()) is not None:
                    metrics.observe(rows)
                    metrics.set_load(
                        worker_load.calls_in_flight,
                        worker_load.streams_open,
                        len(self._rows),
                        store().pool_state(),
                    )
                for row in rows if settlements else ():
                    held.pop(id(row), None)
                if passed:
                    await _record_passed(passed)
                return True
            except Exception as error:
                if attempt == 1:
                    await asyncio.sleep(0.5)
                    continue
                unreachable = isinstance(error, DatabaseUnavailable) or store().transient(error)
                if unreachable and not self._closing:
                    logger.warning(
                        "could not write %d usage row(s) (%s: %s); kept, next try in %.0f s",
                        len(rows),
                        type(error).__name__,
                        error,
                        RETRY_WAIT,
                    )
                    return False
                self.dropped += len(rows)
                for row in rows:
                    self._traces.pop(id(row), None)
                if (metrics := gateway_metrics()) is not None:
                    metrics.dropped.inc(len(rows))
                for row in rows if settlements else ():
                    held.pop(id(row), None)  # their holds expire (BUDGETS_HOLD_SECONDS)
                if unreachable:  # shutting down: no later try to keep them for
                    logger.error(
                        "could not write %d usage row(s) (%s: %s); dropped at shutdown",
                        len(rows),
                        type(error).__name__,
                        error,
                    )
                else:  # the rows themselves: trying again would fail again
                    logger.exception("could not write %d usage row(s); dropped", len(rows))
        return True

    def _keep(self, batch: list[tuple[Any, ...]]) -> None:
        """Put a batch the database could not take back at the head of the queue, as much of
        it as the queue's capacity leaves room for; the rest is dropped, counted and logged."""
        room = max(self.capacity - len(self._rows), 0)
        kept = batch[:room]
        self._rows[:0] = kept
        for row in batch[room:] if self._settlements else ():
            self._settlements.pop(id(row), None)
        if len(kept) < len(batch):
            self.dropped += len(batch) - len(kept)
            logger.error(
                "usage queue full while the database is unreachable: %d usage row(s) dropped",
                len(batch) - len(kept),
            )

    async def flush(self) -> None:
        """Wait until every row recorded so far is written (or counted as dropped)."""
        if self._task is None or self._task.done():
            return
        if self._rows or self._returns or self._writing:
            self._flushing = True
            self._drained.clear()
            self._wake.set()
            await self._drained.wait()

    async def close(self) -> None:
        """Write what is queued (a batch the database cannot take now is dropped, counted
        and logged: there is no later), then stop."""
        self._closing = True
        await self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


_API_KEY_ID = USAGE_COLUMNS.index("api_key_id")


_writers: PerLoop[UsageWriter] = PerLoop(lambda: UsageWriter())


async def _record_passed(passed: list[tuple[int, datetime]]) -> None:
    """An audit entry for each budget the calls just settled passed first in its period."""
    from spend.services import record_passed

    try:
        await asyncio.to_thread(record_passed, passed)
    except Exception:  # the usage is written; a missing audit entry must not undo that
        logger.exception("could not record %d passed budget(s) in the audit log", len(passed))


def writer() -> UsageWriter:
    return _writers.get()


async def close_writer() -> None:
    current = _writers.pop()
    if current is not None:
        await current.close()


async def _settle_in_redis(settlements: list[Settlement]) -> list[tuple[int, datetime]]:
    """Settle in Redis, once the rows are written: never raises, or the rows would be
    written again. What could not be settled is logged; its holds expire."""
    if not settlements:
        return []
    try:
        return await counters().settle(leases().holder, settlements)
    except Exception:
        logger.exception("could not settle %d hold(s) in Redis", len(settlements))
        return []

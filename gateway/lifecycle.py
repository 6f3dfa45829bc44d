"""What the gateway holds per worker process, opened on first use and closed at shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from lib import outbound

from .app import worker
from .budgets import forget_leases, leases
from .keys import state_writes
from .metrics import mark_this_process_gone
from .redis_counters import close_counters
from .store import close_store
from .usage import close_writer, writer

logger = logging.getLogger(__name__)

# How long shutdown waits for the calls the server has just cancelled to record their rows.
CALLS_SETTLE_SECONDS = 5.0


def startup() -> None:
    """Once per worker process, before serving."""
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # scans, and collect young objects less often (fewer, shorter pauses under load).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def flush_usage() -> None:
    """Wait until every usage row queued so far, and what calls learned of central keys,
    is written."""
    await writer().flush()
    await state_writes.drain()


async def shutdown() -> None:
    """Graceful shutdown: write the queued usage rows, then close connections.

    uvicorn cancels the calls still running when its grace period is up and then shuts the
    app down at once: those calls first get the moment they need to answer and queue their
    rows, or the rows would miss the last batch."""
    deadline = time.monotonic() + CALLS_SETTLE_SECONDS
    while worker.calls_in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if worker.calls_in_flight:
        logger.error(
            "%d gateway call(s) still running at shutdown: their usage rows are lost",
            worker.calls_in_flight,
        )
    given_back = leases().close()  # what this process leased goes back to the budgets
    if given_back:
        writer().give_back(given_back)
    await close_writer()
    await state_writes.drain()
    forget_leases()
    await close_counters()
    await close_store()
    await outbound.close_all()
    mark_this_process_gone()

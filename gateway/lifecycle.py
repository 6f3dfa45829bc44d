"""What the gateway holds per worker process, opened on first use and closed at shutdown."""

from __future__ import annotations

import gc

from lib import outbound

from .store import close_store
from .usage import close_writer, writer


def startup() -> None:
    """Once per worker process, before serving."""
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # scans, and collect young objects less often (fewer, shorter pauses under load).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def flush_usage() -> None:
    """Wait until every usage row queued so far is written."""
    await writer().flush()


async def shutdown() -> None:
    """Graceful shutdown: write the queued usage rows, then close connections."""
    await close_writer()
    await close_store()
    await outbound.close_all()

"""What the gateway holds per worker process, opened on first use and closed at shutdown."""

from __future__ import annotations

from lib import outbound

from .store import close_store
from .usage import close_writer, writer


async def flush_usage() -> None:
    """Wait until every usage row queued so far is written."""
    await writer().flush()


async def shutdown() -> None:
    """Graceful shutdown: write the queued usage rows, then close connections."""
    await close_writer()
    await close_store()
    await outbound.close_all()

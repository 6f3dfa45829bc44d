"""The circuit breaker per provider and model, as a call meets it.

The state lives in the database (``providers.Breaker``), read in the call's one query; the
rare writes (a failure counted, the one call that tries again, the breaker closing) run in a
worker thread through ``providers.health``. A closed breaker costs a call nothing more.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from lib.settings_cache import cached_settings
from providers.health import breaker_claim_probe, breaker_closed, breaker_failed

from .keys import state_writes
from .store import CallRow

# How long the one call trying the provider again holds that role; past it (a process that
# died mid-call), another call may try.
PROBE_SECONDS = 60.0
# Outcomes that say the provider (not the caller, not this server) failed.
PROVIDER_FAILURES = frozenset(
    (
        "upstream_error",
        "upstream_unreachable",
        "upstream_timeout",
        "stream_broken",
        "garbled_response",
    )
)


class BreakerOpen(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(f"open until {until:%H:%M:%S}")
        self.until = until


async def through_breaker(row: CallRow, model: str, now: datetime) -> bool:
    """Whether the call may go to the provider, and if so whether it is the one trying
    again (True); raises BreakerOpen when it must fail at once."""
    open_until = row.breaker_open_until
    if open_until is None or not cached_settings.AI_GATEWAY_BREAKER_FAILURES:
        return False
    if open_until > now:
        raise BreakerOpen(open_until)
    probe_until = row.breaker_probe_until
    if probe_until is not None and probe_until > now:
        raise BreakerOpen(probe_until)  # another call is trying the provider again
    provider_id = row.provider_id or 0
    if await asyncio.to_thread(breaker_claim_probe, provider_id, model, PROBE_SECONDS):
        return True
    raise BreakerOpen(now + timedelta(seconds=PROBE_SECONDS))


def after_call(row: CallRow, model: str, status: int, error_kind: str, probing: bool) -> None:
    """Count a call the provider failed; close the breaker when the call trying again got
    an answer. Nothing for any other call."""
    threshold = cached_settings.AI_GATEWAY_BREAKER_FAILURES
    if not threshold or row.provider_id is None:
        return
    failed = error_kind in PROVIDER_FAILURES and (status >= 500 or error_kind != "upstream_error")
    if failed:
        state_writes.write(
            lambda: breaker_failed(
                row.provider_id,  # type: ignore[arg-type]
                model,
                f"{error_kind} ({status})",
                threshold=threshold,
                window=cached_settings.AI_GATEWAY_BREAKER_WINDOW_SECONDS,
                open_for=cached_settings.AI_GATEWAY_BREAKER_OPEN_SECONDS,
                probing=probing,
            )
        )
    elif probing and status and status != 499:
        state_writes.write(breaker_closed, row.provider_id, model)


def retry_words(until: datetime, now: datetime) -> tuple[str, int]:
    """When the breaker lets a call through again: a clock time and the seconds to it."""
    seconds = max(1, round((until - now).total_seconds()))
    return f"{until:%H:%M:%S} UTC", seconds

"""Budget and rate-limit counters in Redis (``REDIS_URL``), for this process's event loop:
taking holds before a call, settling them once its usage row is written, and what a call
meets while Redis cannot be reached (``BUDGETS_WHEN_REDIS_DOWN``: closed, a 503;
``RATE_LIMITS_WHEN_REDIS_DOWN``: open, the call goes on uncounted). See
``spend.redis_counters`` for the scripts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, Sum

from lib.loops import PerLoop
from lib.outage import RefusalLog
from lib.settings_cache import cached_settings
from spend import redis_counters as scripts
from spend.holds import Settlement, Taken, summed
from spend.models import NANO, Budget, Period, Scope, Unit

from .store import DatabaseUnavailable, HoldAsked

logger = logging.getLogger(__name__)
_outage = RefusalLog(
    "Redis (REDIS_URL) cannot be reached for the budgets' and rate limits' counters",
    "met it",
    logging.WARNING,
    logger,
    every=60.0,
)


def outage() -> RefusalLog:
    _outage.every = cached_settings.REDIS_OUTAGE_LOG_SECONDS
    return _outage


class RedisCounters:
    def __init__(self) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(
            cached_settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        self._reserve = self.client.register_script(scripts.RESERVE)
        self._settle = self.client.register_script(scripts.SETTLE)
        # The limit of each soft spend budget's counter this process holds on: settling marks
        # the first time it is passed (an audit entry).
        self._soft_caps: dict[int, int] = {}

    async def reserve(self, hold: HoldAsked) -> list[Taken] | int:
        """As ``Store.reserve``, in Redis; while it cannot be reached, a call a spend budget
        counts is refused (503) or, if budgets fail open, goes on with what else fails open
        uncounted."""
        entries = [entry for entry in _parse(hold.budgets, hold.now) if entry[2] in hold.amounts]
        if not entries:
            return []
        keys, args = (
            [],
            [str(hold.holder), str(hold.now.timestamp()), str(hold.expires.timestamp())],
        )
        for budget_id, period, unit, cap, hard, start in entries:
            keys.append(scripts.key(scripts.counter_id(budget_id, start)))
            args += [
                str(cap),
                "1" if hard else "0",
                str(hold.amounts[unit]),
                str(hold.lent.get(budget_id, 0)),
                "1" if unit == Unit.USD else "0",
                str(scripts.ttl_seconds(period, hold.now)),
            ]
        try:
            for _ in range(len(entries) + 1):
                result = await self._reserve(keys=keys, args=args)
                if result and result[0] == -2:  # a spend budget's counter to start afresh
                    budget_id, _, _, _, _, start = entries[result[1] - 1]
                    spent = await asyncio.to_thread(reconciled_spend, budget_id, start)
                    await self.client.hsetnx(keys[result[1] - 1], "spent", spent)
                    continue
                break
        except Exception as error:
            if not _unreachable(error):
                raise
            return self._down(error, entries)
        outage_over()
        if result and result[0] == -1:
            return entries[result[1] - 1][0]  # type: ignore[no-any-return]
        taken = []
        for (budget_id, _, unit, cap, hard, start), granted in zip(entries, result, strict=True):
            counter = scripts.counter_id(budget_id, start)
            if unit == Unit.USD and not hard:
                self._soft_caps[counter] = cap
            taken.append(Taken(budget_id, counter, start, int(granted), unit))
        return taken

    def _down(self, error: Exception, entries: list[Any]) -> list[Taken]:
        budgets = any(entry[2] == Unit.USD for entry in entries)
        rate_limits = any(entry[2] != Unit.USD for entry in entries)
        closed = (budgets and cached_settings.BUDGETS_WHEN_REDIS_DOWN == "closed") or (
            rate_limits and cached_settings.RATE_LIMITS_WHEN_REDIS_DOWN == "closed"
        )
        outage().count(
            f"{type(error).__name__}; " + ("refused, 503" if closed else "let through uncounted")
        )
        if closed:
            raise DatabaseUnavailable("the budgets' counters (Redis) cannot be reached")
        return []

    async def settle(
        self, holder: int, settlements: Sequence[Settlement]
    ) -> list[tuple[int, datetime]]:
        """Settle ``holder``'s holds: the budgets (and periods) this settling passed first.
        While Redis cannot be reached the settlements are lost, counted and logged: the
        holds expire (``BUDGETS_HOLD_SECONDS``)."""
        keys: list[str] = []
        args: list[int | float | str] = [str(holder), datetime.now().timestamp()]
        counters = []
        for counter, cost, released, unknown in summed(settlements):  # capped in Redis
            counters.append(counter)
            keys.append(scripts.key(counter))
            args += [cost, released, unknown, self._soft_caps.get(counter, 0)]
        try:
            passed = await self._settle(keys=keys, args=args)
        except Exception as error:
            if not _unreachable(error):
                raise
            outage().count(f"{type(error).__name__}; {len(counters)} counter(s) not settled")
            return []
        outage_over()
        return [scripts.counter_of(counters[i - 1]) for i in passed]

    async def close(self) -> None:
        await self.client.aclose()


def _parse(budgets: str, now: datetime) -> list[tuple[int, str, str, int, bool, datetime]]:
    """(id, period, unit, cap, hard, period start) of each ``id:period:unit:cap:hard``."""
    entries = []
    for entry in budgets.split(","):
        budget_id, period, unit, cap, hard = entry.split(":")
        start = Period(period).start(now)
        entries.append((int(budget_id), period, unit, int(cap), hard == "1", start))
    return entries


def _unreachable(error: Exception) -> bool:
    import redis

    return isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)


def outage_over() -> None:
    _outage.ended("Redis (REDIS_URL) answers again")


def reconciled_spend(budget_id: int, start: datetime) -> int:
    """What the usage rows of the period from ``start`` say the calls a spend budget counts
    cost, in nano-USD: where its missing counter starts. (Calls whose cost was unknown are
    not in it: their rows have no cost.) Runs in a worker thread."""
    from .models import UsageRecord

    try:
        budget = Budget.all_units.filter(pk=budget_id).first()
        if budget is None or budget.unit != Unit.USD:
            return 0
        rows = UsageRecord.objects.filter(created_at__gte=start)
        if budget.scope == Scope.PERSON:
            rows = rows.filter(user_id=budget.user_id or 0)
        elif budget.scope == Scope.TOKEN:
            rows = rows.filter(api_key_id=budget.token_id)
        elif budget.scope == Scope.GROUP:
            rows = rows.filter(user__groups=budget.group_id)
        if not cached_settings.BUDGETS_COUNT_PERSONAL_KEYS:
            rows = rows.filter(~Q(credential_source="user"))
        total = rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
        return int(total * NANO)
    finally:
        connection.close()


_counters: PerLoop[RedisCounters] = PerLoop(RedisCounters)


def counters() -> RedisCounters:
    return _counters.get()


async def close_counters() -> None:
    found = _counters.pop()
    if found is not None:
        await found.close()

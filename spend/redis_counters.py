"""Budgets' and rate limits' counters in Redis, when ``REDIS_URL`` is set: the same holds,
leases and settling as ``spend.holds``, each step one Lua script (Redis runs a script alone,
so a step across several counters is all or nothing, as a transaction is in PostgreSQL).

A counter is one hash, ``llmcp:spend:<budget id>:<period start, minutes since 2000>``, with
``spent``, ``reserved``, ``unknown``, ``passed`` and each holder's hold (``h:<holder>``) and
its expiry (``e:<holder>``, seconds since the epoch). It expires a while after its period
ends. Its id, where the gateway's leases and settlements name counters, is the budget id and
the period start packed in one integer, so nothing maps ids to keys.

Redis may keep nothing on disk. A spend budget's counter that is missing (a new period, or
Redis restarted) starts from what the usage rows of that period say was spent (the gateway
reads them: ``gateway.redis_counters``); a rate limit's starts at zero (a minute, or the
calls now running).

Amounts are Lua numbers (doubles): exact to 2^53 nano-USD, about 9 million USD per budget
and period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from .holds import FREE_DIVISOR, LEASE_DIVISOR
from .models import ALWAYS, Budget, Period

PREFIX = "llmcp:spend:"
_MINUTE = timedelta(minutes=1)
# How long a counter outlives its period's end (a rate limit's minute: little).
_KEPT = {
    Period.MINUTE: timedelta(minutes=2),
    Period.DAY: timedelta(days=3),
    Period.WEEK: timedelta(days=9),
    Period.MONTH: timedelta(days=35),
}


def counter_id(budget_id: int, period_start: datetime) -> int:
    return budget_id << 32 | (period_start - ALWAYS) // _MINUTE


def counter_of(counter: int) -> tuple[int, datetime]:
    """(budget id, period start) of a counter id."""
    return counter >> 32, ALWAYS + (counter & 0xFFFFFFFF) * _MINUTE


def key(counter: int) -> str:
    budget_id, start = counter_of(counter)
    return f"{PREFIX}{budget_id}:{(start - ALWAYS) // _MINUTE}"


def ttl_seconds(period: str, now: datetime) -> int:
    """How long a counter of ``period`` is kept from ``now``: past its period's end, or
    (calls at once) past the longest a hold lasts."""
    if period == Period.AT_ONCE:
        return settings.BUDGETS_HOLD_SECONDS * 2
    kind = Period(period)
    return int((kind.end(now) - now + _KEPT[kind]).total_seconds()) + 1


# KEYS: the counters. ARGV: holder, now, expires (seconds since the epoch), then per counter:
# cap, hard (1/0), the call's amount, what the holder's lease puts towards it, whether a
# missing counter must be reconciled first (1/0), its ttl. Returns per counter what was
# granted (whole numbers as text); or {-1, i}: counter i (from 1) would be passed; or
# {-2, i}: counter i is missing and must be reconciled from the usage rows first.
# Redis turns a Lua number into a string with 14 significant digits ("1e+16"), which
# HINCRBY refuses: every amount goes to Redis through int().
_INT = "local function int(x) return string.format('%d', x) end"

RESERVE = f"""
{_INT}
local holder, now, expires = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local grants = {{}}
for i, counter in ipairs(KEYS) do
    local at = 3 + (i - 1) * 6
    local cap, hard = tonumber(ARGV[at + 1]), ARGV[at + 2] == '1'
    local amount, leased = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
    if ARGV[at + 5] == '1' and redis.call('EXISTS', counter) == 0 then
        return {{-2, i}}
    end
    local fields = redis.call('HGETALL', counter)
    local given_back = 0
    for j = 1, #fields, 2 do
        local name = fields[j]
        if string.sub(name, 1, 2) == 'e:' and tonumber(fields[j + 1]) < now then
            local other = string.sub(name, 3)
            given_back = given_back + tonumber(redis.call('HGET', counter, 'h:' .. other) or '0')
            redis.call('HDEL', counter, 'h:' .. other, name)
        end
    end
    if given_back > 0 then
        redis.call('HINCRBY', counter, 'reserved', int(-given_back))
    end
    local spent = tonumber(redis.call('HGET', counter, 'spent') or '0')
    local reserved = tonumber(redis.call('HGET', counter, 'reserved') or '0')
    local room = cap - spent - reserved
    local needed = math.max(amount - leased, 0)
    if hard and room < needed then
        return {{-1, i}}
    end
    local extra = math.floor(cap / {LEASE_DIVISOR})
    if extra < amount or (hard and room - needed - extra < math.floor(cap / {FREE_DIVISOR})) then
        extra = 0
    end
    grants[i] = needed + extra
end
for i, counter in ipairs(KEYS) do
    local ttl = ARGV[3 + (i - 1) * 6 + 6]
    redis.call('HINCRBY', counter, 'reserved', int(grants[i]))
    redis.call('HINCRBY', counter, 'h:' .. holder, int(grants[i]))
    redis.call('HSET', counter, 'e:' .. holder, expires)
    redis.call('EXPIRE', counter, ttl)
end
for i = 1, #grants do
    grants[i] = int(grants[i])
end
return grants
"""

# KEYS: the counters. ARGV: holder, now, then per counter: cost, released, unknown, cap (0:
# no "first passed" to mark: a rate limit, or a hard budget). Each releases at most what the
# holder's hold there has (a hold given back once, after it expired, is not taken twice).
# Returns the positions (from 1) of the counters this settling passed first.
SETTLE = f"""
{_INT}
local holder, now = ARGV[1], ARGV[2]
local passed = {{}}
for i, counter in ipairs(KEYS) do
    local at = 2 + (i - 1) * 4
    local cost, released = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    local unknown, cap = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
    if redis.call('EXISTS', counter) == 1 then
        local held = tonumber(redis.call('HGET', counter, 'h:' .. holder) or '0')
        released = math.min(released, held)
        local spent = redis.call('HINCRBY', counter, 'spent', ARGV[at + 1])
        redis.call('HINCRBY', counter, 'reserved', int(-released))
        if unknown > 0 then
            redis.call('HINCRBY', counter, 'unknown', ARGV[at + 3])
        end
        if held - released <= 0 then
            redis.call('HDEL', counter, 'h:' .. holder, 'e:' .. holder)
        else
            redis.call('HINCRBY', counter, 'h:' .. holder, int(-released))
        end
        if cap > 0 and spent > cap and redis.call('HSETNX', counter, 'passed', now) == 1 then
            passed[#passed + 1] = i
        end
    end
end
return passed
"""


def counters_now(budgets: Sequence[Budget], now: datetime) -> dict[int, tuple[int, int, int]]:
    """(spent, reserved, unknown) of each budget's counter in its current period (by budget
    id), read from Redis; missing counters are left out. Raises redis' errors."""
    if not budgets:
        return {}
    client = sync_client()
    pipeline = client.pipeline(transaction=False)
    for budget in budgets:
        pipeline.hmget(
            key(counter_id(budget.pk, budget.period_start(now))), "spent", "reserved", "unknown"
        )
    found = {}
    for budget, values in zip(budgets, pipeline.execute(), strict=True):
        if any(value is not None for value in values):
            spent, reserved, unknown = (int(value or 0) for value in values)
            found[budget.pk] = (spent, reserved, unknown)
    return found


_clients: dict[str, Any] = {}


def sync_client() -> Any:
    """A client for the pages and commands (one per process and URL)."""
    import redis

    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[url]

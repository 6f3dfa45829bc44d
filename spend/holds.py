"""Taking and settling what calls hold on their budgets, exactly, across processes and
replicas, in at most one round trip on a call's path and usually none.

Each server process is a *holder*: on every counter it uses it has one hold, which covers
the worst cases of its calls still running, the costs of finished calls whose usage rows are
not written yet, and a *lease*: an amount it may give its next calls without asking the
database. A call whose worst case the process's leases cover takes it from them, with no
round trip. Otherwise the process asks the counters for the worst case, plus a new lease of
1% of the limit when that covers at least the call and a fifth of the limit would stay free
after it. Near the limit every call holds exactly its own worst case, so little capacity
sits in another process's lease when it is needed.

PostgreSQL: one call of the function ``spend_reserve`` takes it on every budget that
applies. It locks the counters in budget order, so two processes never wait on each other in
a cycle, checks every hard budget, and takes all or nothing. SQLite (first runs): the same
steps in Python, inside the one write transaction SQLite allows at a time.

Settling runs in the transaction that writes the calls' usage rows: each call's cost moves
from its process's hold to ``spent``. Giving back an unused lease is the same operation at no
cost. A hold still there past its expiry belongs to a process that died; the next call on
that counter gives it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from .models import ALWAYS, NANO, UNITS, Budget, BudgetCounter, BudgetHold, Period

BUDGETS = Budget._meta.db_table
COUNTERS = BudgetCounter._meta.db_table
HOLDS = BudgetHold._meta.db_table
# A lease is this share of the limit, granted while a fifth of the limit stays free after it.
LEASE_DIVISOR = 100
FREE_DIVISOR = 5


class Taken(NamedTuple):
    """What a top-up took on one budget's counter."""

    budget_id: int
    counter_id: int
    period_start: datetime
    # In the budget's unit (nano-USD, requests, tokens, calls): what the call's amount
    # needed beyond the holder's lease on the budget (all of it, without one), and any new
    # lease beyond that
    granted: int
    unit: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Taken:
        return cls(row[0], row[1], row[2], row[3], UNITS[row[4] - 1].value)


class Settlement(NamedTuple):
    """A change to one counter and its holder's hold: ``cost`` added to spent, ``released``
    taken off the hold (and reserved); ``unknown`` of the cost stood for an unknown one."""

    counter_id: int
    cost: int
    released: int
    unknown: int


def _memberships() -> str:
    return get_user_model().groups.through._meta.db_table  # type: ignore[attr-defined, no-any-return]


def _applying(user: str, token: str) -> str:
    units = " ".join(f"WHEN '{unit.value}' THEN {i}" for i, unit in enumerate(UNITS, 1))
    return f"""
        SELECT b.id, b.period, b.hard, CASE b.unit {units} END AS unit,
               COALESCE(CAST(ROUND(b.limit_usd * {NANO}) AS BIGINT), b.limit_count) AS cap
        FROM {BUDGETS} b
        WHERE b.scope = 'everyone' OR b.user_id = {user} OR b.token_id = {token}
           OR b.group_id IN (SELECT g.group_id FROM {_memberships()} g WHERE g.user_id = {user})
        ORDER BY b.id
    """


def applying_sql(user: str, token: str) -> str:
    """The budgets and rate limits that count a call, as ``id:period:unit:cap:hard`` joined
    by commas (NULL: none): read with the call's one lookup, so a process knows which leases
    a call needs (and, with Redis, each one's limit)."""
    joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    cap = f"COALESCE(CAST(ROUND(b.limit_usd * {NANO}) AS BIGINT), b.limit_count)"
    return f"""(SELECT {joined}(b.id || ':' || b.period || ':' || b.unit || ':' || {cap}
                          || ':' || CASE WHEN b.hard THEN '1' ELSE '0' END, ',')
        FROM {BUDGETS} b
        WHERE b.scope = 'everyone' OR b.user_id = {user} OR b.token_id = {token}
           OR b.group_id IN (SELECT g.group_id FROM {_memberships()} g
                             WHERE g.user_id = {user}))"""


def reserve_function_sql() -> str:
    """``spend_reserve``: a row per budget that counts the call (what was granted on its
    counter), or one row naming the hard budget the call would pass (the rest NULL)."""
    return f"""
CREATE OR REPLACE FUNCTION spend_reserve(
    p_user integer, p_token bigint, p_holder bigint, p_amounts bigint[], p_now timestamptz,
    p_expires timestamptz, p_minute timestamptz, p_day timestamptz, p_week timestamptz,
    p_month timestamptz, p_leased_budgets bigint[], p_leased bigint[]
) RETURNS TABLE (
    o_budget bigint, o_counter bigint, o_start timestamptz, o_granted bigint, o_unit integer
)
LANGUAGE plpgsql AS $$
DECLARE
    budget record;
    counter record;
    start timestamptz;
    amount bigint;
    inserted integer;
    given_back bigint;
    room bigint;
    leased bigint;
    needed bigint;
    extra bigint;
    budgets bigint[] := '{{}}';
    counters bigint[] := '{{}}';
    starts timestamptz[] := '{{}}';
    grants bigint[] := '{{}}';
    units integer[] := '{{}}';
BEGIN
    FOR budget IN {_applying("p_user", "p_token")} LOOP
        amount := p_amounts[budget.unit];
        CONTINUE WHEN amount IS NULL;  -- the call does not count in this unit
        start := CASE budget.period WHEN 'minute' THEN p_minute WHEN 'day' THEN p_day
            WHEN 'week' THEN p_week WHEN 'month' THEN p_month ELSE '{ALWAYS.isoformat()}' END;
        INSERT INTO {COUNTERS} (budget_id, period_start, spent_nano, reserved_nano, unknown_nano)
            VALUES (budget.id, start, 0, 0, 0) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted > 0 AND budget.period = 'minute' THEN  -- a new minute: past ones go
            DELETE FROM {HOLDS} WHERE counter_id IN (
                SELECT id FROM {COUNTERS} WHERE budget_id = budget.id AND period_start < start);
            DELETE FROM {COUNTERS} WHERE budget_id = budget.id AND period_start < start;
        END IF;
        SELECT id, spent_nano, reserved_nano INTO counter FROM {COUNTERS}
            WHERE budget_id = budget.id AND period_start = start FOR UPDATE;
        WITH gone AS (
            DELETE FROM {HOLDS} WHERE counter_id = counter.id AND expires_at < p_now
            RETURNING amount_nano
        ) SELECT COALESCE(SUM(amount_nano), 0) INTO given_back FROM gone;
        IF given_back > 0 THEN
            UPDATE {COUNTERS} SET reserved_nano = reserved_nano - given_back
                WHERE id = counter.id;
        END IF;
        room := budget.cap - counter.spent_nano - counter.reserved_nano + given_back;
        leased := COALESCE(p_leased[array_position(p_leased_budgets, budget.id)], 0);
        needed := GREATEST(amount - leased, 0);
        IF budget.hard AND room < needed THEN
            o_budget := budget.id;
            RETURN NEXT;
            RETURN;
        END IF;
        extra := budget.cap / {LEASE_DIVISOR};
        IF extra < amount
           OR budget.hard AND room - needed - extra < budget.cap / {FREE_DIVISOR}
        THEN
            extra := 0;
        END IF;
        budgets := budgets || budget.id;
        counters := counters || counter.id;
        starts := starts || start;
        grants := grants || (needed + extra);
        units := units || budget.unit;
    END LOOP;
    FOR i IN 1 .. COALESCE(array_length(counters, 1), 0) LOOP
        UPDATE {COUNTERS} SET reserved_nano = reserved_nano + grants[i] WHERE id = counters[i];
        INSERT INTO {HOLDS} (holder, counter_id, amount_nano, expires_at)
            VALUES (p_holder, counters[i], grants[i], p_expires)
            ON CONFLICT (holder, counter_id) DO UPDATE
            SET amount_nano = {HOLDS}.amount_nano + EXCLUDED.amount_nano,
                expires_at = EXCLUDED.expires_at;
        o_budget := budgets[i];
        o_counter := counters[i];
        o_start := starts[i];
        o_granted := grants[i];
        o_unit := units[i];
        RETURN NEXT;
    END LOOP;
END $$;
"""


RESERVE = (
    "SELECT * FROM spend_reserve($1::integer, $2::bigint, $3::bigint, $4::bigint[], "
    "$5::timestamptz, $6::timestamptz, $7::timestamptz, $8::timestamptz, $9::timestamptz, "
    "$10::timestamptz, $11::bigint[], $12::bigint[])"
)
# The old function, as migration 0001 made it: 0002 drops it (its arguments changed).
RESERVE_0001_ARGUMENTS = (
    "integer, bigint, bigint, bigint, timestamptz, timestamptz, timestamptz, timestamptz, "
    "timestamptz, bigint[], bigint[]"
)


def period_starts(now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    """The starts of the minute, day, week and month ``now`` is in."""
    return (
        Period.MINUTE.start(now),
        Period.DAY.start(now),
        Period.WEEK.start(now),
        Period.MONTH.start(now),
    )


def amounts_array(amounts: dict[str, int]) -> list[int | None]:
    """A call's amount in each unit (``UNITS`` order; None: the call does not count in it)."""
    return [amounts.get(unit.value) for unit in UNITS]


def refusal_of(rows: Sequence[Sequence[Any]]) -> int | None:
    """The hard budget a reservation's rows say would be passed; None: granted."""
    return rows[0][0] if len(rows) == 1 and rows[0][1] is None else None


# Settling, on PostgreSQL: the counters locked in the order reservations take them (budget,
# then period), the changes summed per counter, then the holder's holds.
_SUMMED = """
    SELECT s.counter_id, SUM(s.cost) AS cost, SUM(s.released) AS released,
           SUM(s.unknown) AS unknown
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
        AS s(counter_id, cost, released, unknown)
    GROUP BY s.counter_id
"""
SETTLE_POSTGRES = [
    f"""SELECT id FROM {COUNTERS} WHERE id = ANY($1::bigint[])
        ORDER BY budget_id, period_start FOR UPDATE""",
    f"""WITH settled AS ({_SUMMED})
    UPDATE {COUNTERS} c
    SET spent_nano = c.spent_nano + settled.cost,
        reserved_nano = c.reserved_nano - settled.released,
        unknown_nano = c.unknown_nano + settled.unknown
    FROM settled WHERE c.id = settled.counter_id""",
    f"""WITH settled AS ({_SUMMED})
    UPDATE {HOLDS} h SET amount_nano = h.amount_nano - settled.released
    FROM settled WHERE h.holder = $5 AND h.counter_id = settled.counter_id""",
    f"DELETE FROM {HOLDS} WHERE holder = $1 AND amount_nano <= 0",
]
_FIRST_PASSED = f"""
    UPDATE {COUNTERS} SET passed_at = %s
    WHERE id IN ({{counters}}) AND passed_at IS NULL
      AND spent_nano > (SELECT CAST(ROUND(b.limit_usd * {NANO}) AS BIGINT)
                        FROM {BUDGETS} b WHERE b.id = budget_id)
    RETURNING budget_id, period_start
"""
# The counters among those settled whose budget this settling passed first in their period
# are marked; their budgets' ids come back (an audit entry each).
PASSED_POSTGRES = _FIRST_PASSED.replace("%s", "$1").format(counters="SELECT unnest($2::bigint[])")


HELD_POSTGRES = (
    f"SELECT counter_id, amount_nano FROM {HOLDS} WHERE holder = $1 AND counter_id = ANY($2)"
)


def summed(
    settlements: Sequence[Settlement], held: dict[int, int] | None = None
) -> list[Settlement]:
    """The settlements summed per counter (in counter order), each releasing at most what
    its holder's hold there has (``held``; None: not capped here): a hold given back after it
    expired, while its process still ran, must not be taken off the counter twice."""
    totals: dict[int, list[int]] = {}
    for counter_id, cost, released, unknown in settlements:
        total = totals.setdefault(counter_id, [0, 0, 0])
        total[0] += cost
        total[1] += released
        total[2] += unknown
    return [
        Settlement(
            counter_id,
            cost,
            released if held is None else min(released, held.get(counter_id, 0)),
            unknown,
        )
        for counter_id, (cost, released, unknown) in sorted(totals.items())
    ]


def columns(settlements: Sequence[Settlement]) -> list[list[int]]:
    """The settlements as the four arrays SETTLE_POSTGRES takes."""
    return [list(column) for column in zip(*settlements, strict=True)]


# -- SQLite: the same, in Python, in the one write transaction ----------------------------


def reserve_in(
    cursor: Any,
    user_id: int,
    token_id: int | None,
    holder: int,
    amounts: dict[str, int],
    now: datetime,
    expires: datetime,
    leased: dict[int, int],
    adapt: Any,
) -> list[Taken] | int:
    """As ``spend_reserve``, through a Django cursor inside a write transaction: what was
    taken, or the id of the hard budget the call would pass. ``amounts``: the call's in each
    unit it counts in. ``leased``: what the holder's lease on each budget (by id) puts
    towards the call. ``adapt`` gives a datetime as the database stores it (the ORM's form,
    so both find the same row)."""
    periods = ("minute", "day", "week", "month")
    starts = dict(zip(periods, period_starts(now), strict=True), at_once=ALWAYS)
    by_index = amounts_array(amounts)
    now_text, expires_text = adapt(now), adapt(expires)
    cursor.execute(_applying("%s", "%s"), [user_id, token_id, user_id])
    taken = []
    for budget_id, period, hard, unit, cap in cursor.fetchall():
        amount = by_index[unit - 1]
        if amount is None:
            continue
        start = starts[period]
        cursor.execute(
            f"INSERT INTO {COUNTERS} (budget_id, period_start, spent_nano, reserved_nano, "
            "unknown_nano) VALUES (%s, %s, 0, 0, 0) ON CONFLICT DO NOTHING",
            [budget_id, adapt(start)],
        )
        if cursor.rowcount and period == "minute":  # a new minute: past ones go
            cursor.execute(
                f"DELETE FROM {HOLDS} WHERE counter_id IN (SELECT id FROM {COUNTERS} "
                "WHERE budget_id = %s AND period_start < %s)",
                [budget_id, adapt(start)],
            )
            cursor.execute(
                f"DELETE FROM {COUNTERS} WHERE budget_id = %s AND period_start < %s",
                [budget_id, adapt(start)],
            )
        cursor.execute(
            f"SELECT id, spent_nano, reserved_nano FROM {COUNTERS} "
            "WHERE budget_id = %s AND period_start = %s",
            [budget_id, adapt(start)],
        )
        counter_id, spent, reserved = cursor.fetchone()
        cursor.execute(
            f"SELECT COALESCE(SUM(amount_nano), 0) FROM {HOLDS} "
            "WHERE counter_id = %s AND expires_at < %s",
            [counter_id, now_text],
        )
        given_back = cursor.fetchone()[0]
        if given_back:
            cursor.execute(
                f"DELETE FROM {HOLDS} WHERE counter_id = %s AND expires_at < %s",
                [counter_id, now_text],
            )
            cursor.execute(
                f"UPDATE {COUNTERS} SET reserved_nano = reserved_nano - %s WHERE id = %s",
                [given_back, counter_id],
            )
        room = cap - spent - reserved + given_back
        needed = max(amount - leased.get(budget_id, 0), 0)
        if hard and room < needed:
            return budget_id  # type: ignore[no-any-return]
        extra = cap // LEASE_DIVISOR
        if extra < amount or (hard and room - needed - extra < cap // FREE_DIVISOR):
            extra = 0
        taken.append(Taken(budget_id, counter_id, start, needed + extra, UNITS[unit - 1].value))
    for took in taken:
        cursor.execute(
            f"UPDATE {COUNTERS} SET reserved_nano = reserved_nano + %s WHERE id = %s",
            [took.granted, took.counter_id],
        )
        cursor.execute(
            f"INSERT INTO {HOLDS} (holder, counter_id, amount_nano, expires_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (holder, counter_id) DO UPDATE "
            f"SET amount_nano = {HOLDS}.amount_nano + excluded.amount_nano, "
            "expires_at = excluded.expires_at",
            [holder, took.counter_id, took.granted, expires_text],
        )
    return taken


def settle_in(
    cursor: Any, holder: int, settlements: Sequence[Settlement], now: datetime
) -> list[tuple[int, Any]]:
    """Settle, through a cursor inside the transaction that writes the usage rows: each
    settlement's cost moves from ``holder``'s hold on its counter to spent. Gives the budgets
    (and periods) this settling passed first."""
    counters = sorted({settlement.counter_id for settlement in settlements})
    if cursor.db.vendor == "postgresql":  # locked in the order reservations take them
        cursor.execute(
            f"SELECT id FROM {COUNTERS} WHERE id = ANY(%s) "
            "ORDER BY budget_id, period_start FOR UPDATE",
            [counters],
        )
    cursor.execute(
        f"SELECT counter_id, amount_nano FROM {HOLDS} WHERE holder = %s AND counter_id IN "
        f"({', '.join(['%s'] * len(counters))})",
        [holder, *counters],
    )
    held = dict(cursor.fetchall())
    for counter_id, cost, released, unknown in summed(settlements, held):
        cursor.execute(
            f"UPDATE {COUNTERS} SET spent_nano = spent_nano + %s, "
            "reserved_nano = reserved_nano - %s, unknown_nano = unknown_nano + %s "
            "WHERE id = %s",
            [cost, released, unknown, counter_id],
        )
        cursor.execute(
            f"UPDATE {HOLDS} SET amount_nano = amount_nano - %s "
            "WHERE holder = %s AND counter_id = %s",
            [released, holder, counter_id],
        )
    cursor.execute(f"DELETE FROM {HOLDS} WHERE holder = %s AND amount_nano <= 0", [holder])
    return _mark_passed_in(cursor, counters, now)


def _mark_passed_in(cursor: Any, counters: list[int], now: datetime) -> list[tuple[int, Any]]:
    """As ``PASSED_POSTGRES``, through a Django cursor."""
    if not counters:
        return []
    cursor.execute(
        _FIRST_PASSED.format(counters=", ".join(["%s"] * len(counters))), [now, *counters]
    )
    return [(budget_id, start) for budget_id, start in cursor.fetchall()]


# -- Outside the gateway (tests, operators): the same, through Django's connection ---------


def reserve(
    user_id: int,
    token_id: int | None,
    holder: int,
    amounts: dict[str, int] | int,
    now: datetime,
    expires: datetime,
    leased: dict[int, int] | None = None,
) -> list[Taken] | int:
    """Take a call's ``amounts`` (by unit; a number: nano-USD only), and any lease, for
    ``holder`` on every budget and rate limit that counts the call, beyond what ``leased``
    says the holder's lease on each (by id) puts towards it: what was taken, or the id of
    the hard budget or limit the call would pass."""
    leased = leased or {}
    if isinstance(amounts, int):
        amounts = {"usd": amounts}
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT * FROM spend_reserve(%s, %s, %s, %s::bigint[], %s, %s, %s, %s, %s, %s, "
                "%s::bigint[], %s::bigint[])",
                [
                    user_id,
                    token_id,
                    holder,
                    amounts_array(amounts),
                    now,
                    expires,
                    *period_starts(now),
                    list(leased),
                    list(leased.values()),
                ],
            )
            rows = cursor.fetchall()
            refused = refusal_of(rows)
            return refused if refused is not None else [Taken.from_row(row) for row in rows]
        return reserve_in(
            cursor,
            user_id,
            token_id,
            holder,
            amounts,
            now,
            expires,
            leased,
            connection.ops.adapt_datetimefield_value,
        )


def settle(holder: int, settlements: Sequence[Settlement], now: datetime) -> list[tuple[int, Any]]:
    """Settle (see ``settle_in``); gives the budgets first passed."""
    with transaction.atomic(), connection.cursor() as cursor:
        return settle_in(cursor, holder, settlements, now)

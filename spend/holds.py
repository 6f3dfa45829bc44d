"""Taking and settling a call's holds on its budgets, exactly, across processes and replicas.

PostgreSQL: one function call takes every hold of a call (one round trip on the gateway's hot
path). It locks the counters in budget order, so two calls never wait on each other in a
cycle, checks every hard budget, and takes all the holds or none. SQLite (first runs): the
same steps in Python, inside the one write transaction SQLite allows at a time.

Settling runs in the transaction that writes the calls' usage rows: a hold still there after
its expiry belongs to a call that never wrote its row (its worker was killed, its database
connection lost), and the next call on that counter gives it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from .models import NANO, Budget, BudgetCounter, BudgetHold, Period

BUDGETS = Budget._meta.db_table
COUNTERS = BudgetCounter._meta.db_table
HOLDS = BudgetHold._meta.db_table


def _memberships() -> str:
    return get_user_model().groups.through._meta.db_table  # type: ignore[attr-defined, no-any-return]


def _applying(user: str, token: str) -> str:
    return f"""
        SELECT b.id, b.period, b.hard, CAST(ROUND(b.limit_usd * {NANO}) AS BIGINT) AS cap
        FROM {BUDGETS} b
        WHERE b.scope = 'everyone' OR b.user_id = {user} OR b.token_id = {token}
           OR b.group_id IN (SELECT g.group_id FROM {_memberships()} g WHERE g.user_id = {user})
        ORDER BY b.id
    """


def reserve_function_sql() -> str:
    """``spend_reserve``: NULL when the call's holds are taken (or no budget applies), else
    the id of the hard budget the call would pass."""
    return f"""
CREATE OR REPLACE FUNCTION spend_reserve(
    p_user integer, p_token bigint, p_call bigint, p_amount bigint, p_now timestamptz,
    p_expires timestamptz, p_day timestamptz, p_week timestamptz, p_month timestamptz
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    budget record;
    counter record;
    start timestamptz;
    given_back bigint;
    taken bigint[] := '{{}}';
BEGIN
    FOR budget IN {_applying("p_user", "p_token")} LOOP
        start := CASE budget.period WHEN 'day' THEN p_day WHEN 'week' THEN p_week ELSE p_month END;
        INSERT INTO {COUNTERS} (budget_id, period_start, spent_nano, reserved_nano, unknown_nano)
            VALUES (budget.id, start, 0, 0, 0) ON CONFLICT DO NOTHING;
        SELECT id, spent_nano, reserved_nano INTO counter FROM {COUNTERS}
            WHERE budget_id = budget.id AND period_start = start FOR UPDATE;
        WITH gone AS (
            DELETE FROM {HOLDS} WHERE counter_id = counter.id AND expires_at < p_now
            RETURNING amount_nano
        ) SELECT COALESCE(SUM(amount_nano), 0) INTO given_back FROM gone;
        IF given_back > 0 THEN
            UPDATE {COUNTERS} SET reserved_nano = reserved_nano - given_back WHERE id = counter.id;
        END IF;
        IF budget.hard
           AND counter.spent_nano + counter.reserved_nano - given_back + p_amount > budget.cap
        THEN
            RETURN budget.id;
        END IF;
        taken := taken || counter.id;
    END LOOP;
    IF cardinality(taken) > 0 THEN
        UPDATE {COUNTERS} SET reserved_nano = reserved_nano + p_amount WHERE id = ANY(taken);
        INSERT INTO {HOLDS} (call_id, counter_id, amount_nano, expires_at)
            SELECT p_call, unnest(taken), p_amount, p_expires;
    END IF;
    RETURN NULL;
END $$;
"""


RESERVE = (
    "SELECT spend_reserve($1::integer, $2::bigint, $3::bigint, $4::bigint, $5::timestamptz, "
    "$6::timestamptz, $7::timestamptz, $8::timestamptz, $9::timestamptz)"
)


def period_starts(now: datetime) -> tuple[datetime, datetime, datetime]:
    return Period.DAY.start(now), Period.WEEK.start(now), Period.MONTH.start(now)


# Settling, on PostgreSQL: the counters locked in the order holds are taken (budget, then
# period), each counter's holds summed (one call's row per counter), then the holds gone.
SETTLE_POSTGRES = [
    f"""
    SELECT c.id FROM {COUNTERS} c
    WHERE c.id IN (SELECT h.counter_id FROM {HOLDS} h WHERE h.call_id = ANY($1::bigint[]))
    ORDER BY c.budget_id, c.period_start FOR UPDATE
    """,
    f"""
    WITH settled AS (
        SELECT h.counter_id, SUM(s.cost) AS cost, SUM(h.amount_nano) AS held,
               SUM(CASE WHEN s.unknown THEN s.cost ELSE 0 END) AS unknown
        FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) AS s(call_id, cost, unknown)
        JOIN {HOLDS} h ON h.call_id = s.call_id
        GROUP BY h.counter_id
    )
    UPDATE {COUNTERS} c
    SET spent_nano = c.spent_nano + settled.cost,
        reserved_nano = c.reserved_nano - settled.held,
        unknown_nano = c.unknown_nano + settled.unknown
    FROM settled WHERE c.id = settled.counter_id
    """,
    f"DELETE FROM {HOLDS} WHERE call_id = ANY($1::bigint[])",
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


# -- SQLite: the same, in Python, in the one write transaction ----------------------------


def reserve_in(
    cursor: Any,
    user_id: int,
    token_id: int | None,
    call_id: int,
    amount: int,
    now: datetime,
    expires: datetime,
    adapt: Any,
) -> int | None:
    """As ``spend_reserve``, through a Django cursor inside a write transaction; ``adapt``
    gives a datetime as the database stores it (the ORM's form, so both find the same row)."""
    starts = dict(zip(("day", "week", "month"), map(adapt, period_starts(now)), strict=True))
    now, expires = adapt(now), adapt(expires)
    cursor.execute(_applying("%s", "%s"), [user_id, token_id, user_id])
    taken = []
    for budget_id, period, hard, cap in cursor.fetchall():
        start = starts[period]
        cursor.execute(
            f"INSERT INTO {COUNTERS} (budget_id, period_start, spent_nano, reserved_nano, "
            "unknown_nano) VALUES (%s, %s, 0, 0, 0) ON CONFLICT DO NOTHING",
            [budget_id, start],
        )
        cursor.execute(
            f"SELECT id, spent_nano, reserved_nano FROM {COUNTERS} "
            "WHERE budget_id = %s AND period_start = %s",
            [budget_id, start],
        )
        counter_id, spent, reserved = cursor.fetchone()
        cursor.execute(
            f"SELECT COALESCE(SUM(amount_nano), 0) FROM {HOLDS} "
            "WHERE counter_id = %s AND expires_at < %s",
            [counter_id, now],
        )
        given_back = cursor.fetchone()[0]
        if given_back:
            cursor.execute(
                f"DELETE FROM {HOLDS} WHERE counter_id = %s AND expires_at < %s",
                [counter_id, now],
            )
            cursor.execute(
                f"UPDATE {COUNTERS} SET reserved_nano = reserved_nano - %s WHERE id = %s",
                [given_back, counter_id],
            )
        if hard and spent + reserved - given_back + amount > cap:
            return budget_id  # type: ignore[no-any-return]
        taken.append(counter_id)
    for counter_id in taken:
        cursor.execute(
            f"UPDATE {COUNTERS} SET reserved_nano = reserved_nano + %s WHERE id = %s",
            [amount, counter_id],
        )
        cursor.execute(
            f"INSERT INTO {HOLDS} (call_id, counter_id, amount_nano, expires_at) "
            "VALUES (%s, %s, %s, %s)",
            [call_id, counter_id, amount, expires],
        )
    return None


def settle_in(
    cursor: Any, settlements: Sequence[tuple[int, int, bool]], now: datetime
) -> list[tuple[int, Any]]:
    """Settle calls' holds to what they cost, through a cursor inside the transaction that
    writes their usage rows: ``(call id, cost in nano-USD, whether the cost was unknown)``.
    Gives the budgets (and periods) this settling passed first."""
    touched: set[int] = set()
    if cursor.db.vendor == "postgresql":  # the counters locked in the order holds take them
        cursor.execute(
            f"SELECT id FROM {COUNTERS} WHERE id IN (SELECT counter_id FROM {HOLDS} "
            "WHERE call_id = ANY(%s)) ORDER BY budget_id, period_start FOR UPDATE",
            [[call_id for call_id, _, _ in settlements]],
        )
    for call_id, cost, unknown in settlements:
        cursor.execute(f"SELECT counter_id, amount_nano FROM {HOLDS} WHERE call_id = %s", [call_id])
        for counter_id, held in cursor.fetchall():
            cursor.execute(
                f"UPDATE {COUNTERS} SET spent_nano = spent_nano + %s, "
                "reserved_nano = reserved_nano - %s, unknown_nano = unknown_nano + %s "
                "WHERE id = %s",
                [cost, held, cost if unknown else 0, counter_id],
            )
            touched.add(counter_id)
        cursor.execute(f"DELETE FROM {HOLDS} WHERE call_id = %s", [call_id])
    return _mark_passed_in(cursor, sorted(touched), now)


def _mark_passed_in(cursor: Any, counters: list[int], now: datetime) -> list[tuple[int, datetime]]:
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
    call_id: int,
    amount: int,
    now: datetime,
    expires: datetime,
) -> int | None:
    """Take a call's holds: None if taken (or no budget applies), else the id of the hard
    budget the call would pass."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT spend_reserve(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [user_id, token_id, call_id, amount, now, expires, *period_starts(now)],
            )
            return cursor.fetchone()[0]  # type: ignore[no-any-return]
        return reserve_in(
            cursor,
            user_id,
            token_id,
            call_id,
            amount,
            now,
            expires,
            connection.ops.adapt_datetimefield_value,
        )


def settle(settlements: Sequence[tuple[int, int, bool]], now: datetime) -> list[tuple[int, Any]]:
    """Settle calls' holds (see ``settle_in``); gives the budgets first passed."""
    with transaction.atomic(), connection.cursor() as cursor:
        return settle_in(cursor, settlements, now)

"""The gateway's database access: one query per call, and batched usage writes.

On PostgreSQL it uses its own small async psycopg pool per worker process (prepared
statements, no connection held while a response streams). On SQLite (first runs only) the
same SQL runs in a thread through Django's connection. Nothing is cached: a revoked token, a
removed key or a changed policy takes effect on the next call, on every replica.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, connections

from lib.loops import PerLoop
from lib.settings_cache import cached_settings
from models_catalog.models import ModelAlias, ModelConfig, ModelFallback
from providers.crypto import DecryptionError, get_keyring
from providers.models import Breaker, Provider, ProviderKey
from spend import holds
from tokens.models import ApiToken
from userkeys.models import UserKey

from .models import UsageRecord

PRICE_COLUMNS = (
    "input_price",
    "output_price",
    "cache_read_price",
    "cache_write_price",
    "cache_write_1h_price",
    "web_search_price",
)
Prices = tuple[int | None, int | None, int | None, int | None, int | None, int | None]
# The prompt size above which the long-context prices (input, output; micro-USD per 1M)
# apply; all None when the model has one price.
LongContext = tuple[int | None, int | None, int | None]
# What a call costs against the usual prices, in millionths (500000: half), on the flex and
# priority service tiers (OpenAI's, Gemini's), under Anthropic's US-only inference, in its
# fast mode and on OpenAI's ultrafast tier, in that order; None: not set.
PriceFactors = tuple[int | None, int | None, int | None, int | None, int | None]


def _micro(price: str) -> str:
    """A price (USD per 1M tokens, 6 decimal places) as a whole number of micro-USD: the
    gateway prices every call, and integer arithmetic costs a fraction of Decimal's."""
    return f"CAST(ROUND({price} * 1000000) AS BIGINT)"


def _further_keys_sql() -> str:
    """The provider's further central keys (gateway.keys.parse_further reads them), NULL
    when it has none: one index lookup more for the call's query."""
    further = ProviderKey._meta.db_table
    if connection.vendor == "postgresql":
        cooling = "COALESCE(CAST(EXTRACT(EPOCH FROM x.key_cooling_until) AS BIGINT), 0)"
        joined, newline = "string_agg", "chr(10)"
    else:
        cooling = "COALESCE(CAST(strftime('%%s', x.key_cooling_until) AS INTEGER), 0)"
        joined, newline = "group_concat", "char(10)"
    return f"""(SELECT {joined}(x.id || '|' || x.key_label || '|' || {cooling} || '|'
                    || CASE WHEN x.key_attention = '' THEN '0' ELSE '1' END || '|' || x.api_key,
                    {newline})
                FROM {further} x WHERE x.provider_id = p.id)"""


def _fallbacks_sql() -> str:
    """The model's enabled fallbacks, in order: ``type<TAB>identifier`` lines (gateway.fallbacks
    reads them); NULL when it has none."""
    links, models = ModelFallback._meta.db_table, ModelConfig._meta.db_table
    providers = Provider._meta.db_table
    joined = f"""FROM {links} f JOIN {models} fm ON fm.id = f.fallback_id
        JOIN {providers} fp ON fp.id = fm.provider_id
        WHERE f.model_id = m.id AND fm.enabled AND fp.enabled"""
    if connection.vendor == "postgresql":
        named = "fp.type || chr(9) || fm.identifier"
        return f"(SELECT string_agg({named}, chr(10) ORDER BY f.position) {joined})"
    # SQLite's group_concat keeps the order of the rows it is given.
    named = "fp.type || char(9) || fm.identifier"
    ordered = f"SELECT {named} AS named {joined} ORDER BY f.position"
    return f"(SELECT group_concat(c.named, char(10)) FROM ({ordered}) c)"


_CALL_COLUMNS = f"""
    t.id, t.user_id, t.secret_hash, t.expires_at, t.revoked_at, u.is_active, u.username,
    p.id, p.enabled, p.api_key, p.base_url, p.region,
    p.central_key_enabled, p.user_keys_allowed, p.central_key_fallback,
    k.api_key,
    m.id, m.enabled, {", ".join(_micro(f"m.{price}") for price in PRICE_COLUMNS)},
    m.long_context_threshold, {_micro("m.long_context_input_price")},
    {_micro("m.long_context_output_price")},
    {_micro("m.flex_price_factor")}, {_micro("m.priority_price_factor")},
    {_micro("m.us_inference_price_factor")}, {_micro("m.fast_mode_price_factor")},
    {_micro("m.ultrafast_price_factor")}, m.identifier,
    m.context_limit, m.max_output_tokens, {holds.applying_sql("t.user_id", "t.id")},
    p.key_label, p.key_cooling_until, p.key_attention <> '', {_further_keys_sql()},
    bk.open_until, bk.probe_until, {_fallbacks_sql()}
"""


_BREAKER_JOIN = (
    f"LEFT JOIN {Breaker._meta.db_table} bk "
    "ON bk.provider_id = p.id AND bk.model_identifier = m.identifier"
)


def _model_named(name: str) -> str:
    """The id of the model a caller's ``name`` reaches at provider ``p``: the model with that
    identifier, else the model of the most specific alias whose pattern matches it. The
    second look runs only when the first finds nothing (COALESCE stops at a value)."""
    models, aliases = ModelConfig._meta.db_table, ModelAlias._meta.db_table
    return f"""COALESCE(
        (SELECT x.id FROM {models} x WHERE x.provider_id = p.id AND x.identifier = {name}),
        (SELECT a.model_id FROM {aliases} a
            WHERE a.provider_id = p.id AND lower({name}) LIKE a.like_pattern ESCAPE '\\'
            ORDER BY a.specificity DESC, a.id LIMIT 1)
    )"""


def _call_sql(token_column: str) -> str:
    user_table = ApiToken._meta.get_field("user").related_model._meta.db_table  # type: ignore[union-attr]
    return f"""
        SELECT {_CALL_COLUMNS}
        FROM (SELECT CAST(%s AS TEXT) AS provider_type, CAST(%s AS TEXT) AS model) q
        JOIN {ApiToken._meta.db_table} t ON t.{token_column} = %s
        JOIN {user_table} u ON u.id = t.user_id
        LEFT JOIN {Provider._meta.db_table} p ON p.type = q.provider_type
        LEFT JOIN {UserKey._meta.db_table} k ON k.user_id = t.user_id AND k.provider_id = p.id
        LEFT JOIN {ModelConfig._meta.db_table} m ON m.id = {_model_named("q.model")}
        {_BREAKER_JOIN}
    """


CALL_BY_LOOKUP_ID = _call_sql("lookup_id")
CALL_BY_TOKEN_ID = _call_sql("id")


def _calls_by_lookup_id_sql() -> str:
    """The same lookup for several calls at once: row i answers the i-th call."""
    user_table = ApiToken._meta.get_field("user").related_model._meta.db_table  # type: ignore[union-attr]
    return f"""
        SELECT q.i, {_CALL_COLUMNS}
        FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
            AS q(provider_type, model, lookup_id, i)
        JOIN {ApiToken._meta.db_table} t ON t.lookup_id = q.lookup_id
        JOIN {user_table} u ON u.id = t.user_id
        LEFT JOIN {Provider._meta.db_table} p ON p.type = q.provider_type
        LEFT JOIN {UserKey._meta.db_table} k ON k.user_id = t.user_id AND k.provider_id = p.id
        LEFT JOIN {ModelConfig._meta.db_table} m ON m.id = {_model_named("q.model")}
        {_BREAKER_JOIN}
    """


CALLS_BY_LOOKUP_ID = _calls_by_lookup_id_sql()
MODELS_OF_PROVIDER = f"""
    SELECT identifier, display_name, created_at FROM {ModelConfig._meta.db_table}
    WHERE provider_id = %s AND enabled ORDER BY display_name, id
"""
USAGE_COLUMNS = (
    "created_at",
    "user_id",
    "username",
    "api_key_id",
    "provider_id",
    "provider_type",
    "model_id",
    "model_identifier",
    "endpoint",
    "streamed",
    "credential_source",
    "route",
    "user_agent",
    "status",
    "error_kind",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "web_searches",
    "price_variants",
    "cost_usd",
    "key_label",
    "fallback_from",
)
INSERT_USAGE = (
    f"INSERT INTO {UsageRecord._meta.db_table} ({', '.join(USAGE_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(USAGE_COLUMNS))})"
)
_TOUCHED_KEY = (
    "key_last_used_at = %s WHERE {} = %s AND key_label = %s "
    "AND (key_last_used_at IS NULL OR key_last_used_at < %s)"
)
TOUCH_KEYS = (
    f"UPDATE {Provider._meta.db_table} SET " + _TOUCHED_KEY.format("id"),
    f"UPDATE {ProviderKey._meta.db_table} SET " + _TOUCHED_KEY.format("provider_id"),
)
_PROVIDER_ID, _KEY_LABEL = USAGE_COLUMNS.index("provider_id"), USAGE_COLUMNS.index("key_label")


# When this process last marked each central key used, (provider id, label): it marks one
# once a minute at most, so most usage batches run no statement for it.
_keys_touched: dict[tuple[int, str], datetime] = {}


def key_touches(rows: list[tuple[Any, ...]], now: datetime) -> list[tuple[Any, ...]]:
    """The central keys the rows' calls used, to mark used (once a minute at most)."""
    used = {(row[_PROVIDER_ID], row[_KEY_LABEL]) for row in rows if row[_KEY_LABEL]}
    a_minute_ago = now - timedelta(minutes=1)
    due = sorted(key for key in used if _keys_touched.get(key, a_minute_ago) <= a_minute_ago)
    for key in due:
        _keys_touched[key] = now
    return [(now, provider, label, a_minute_ago) for provider, label in due]


TOUCH_TOKEN = (
    f"UPDATE {ApiToken._meta.db_table} SET last_used_at = %s "
    "WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s)"
)


@dataclass(slots=True, frozen=True)
class HoldAsked:
    """A top-up of ``holder``'s holds for a call of worst case ``amounts`` (by unit)."""

    user_id: int
    token_id: int | None
    holder: int
    amounts: dict[str, int]
    now: datetime
    expires: datetime
    lent: dict[int, int]  # what the holder's lease on each budget (by id) puts towards it
    budgets: str = ""  # those that count the call (CallRow.budgets)


@dataclass(slots=True)
class CallRow:
    """Everything one call needs, from the one query."""

    token_id: int
    user_id: int
    secret_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    user_active: bool
    username: str
    provider_id: int | None
    provider_enabled: bool
    central_ciphertext: str
    base_url: str
    region: str
    central_key_enabled: bool
    user_keys_allowed: bool
    central_key_fallback: bool
    user_key_ciphertext: str | None
    model_id: int | None
    model_enabled: bool
    # Micro-USD per 1M tokens, in PRICE_COLUMNS order (input, output, cache read, cache
    # write, one-hour cache write), then micro-USD per 1,000 web searches; None: not set.
    prices: Prices
    long_context: LongContext
    price_factors: PriceFactors
    # The identifier of the model reached: the name asked for, or an alias's model.
    model_identifier: str | None
    context_limit: int | None
    max_output_tokens: int | None  # the model's setting, for a call that sets none
    # The budgets and rate limits that count the call (``id:period:unit:cap:hard,...``, the
    # cap in the unit's smallest amount); None: none.
    budgets: str | None
    # The provider's own central key's label and state, and its further keys
    # (gateway.keys.parse_further).
    key_label: str
    key_cooling_until: datetime | None
    key_attention: bool
    further_keys: str | None
    # The model's circuit breaker: open until (None: closed), and until when a call is
    # trying the provider again.
    breaker_open_until: datetime | None
    breaker_probe_until: datetime | None
    # The model's fallbacks (gateway.fallbacks.parse_fallbacks); None: none.
    fallbacks: str | None

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> CallRow:
        """From a row as Django's database drivers give it (SQLite: timestamps may be text,
        booleans integers)."""
        return cls(
            token_id=row[0],
            user_id=row[1],
            secret_hash=row[2],
            expires_at=_aware(row[3]),
            revoked_at=_aware(row[4]),
            user_active=bool(row[5]),
            username=row[6],
            provider_id=row[7],
            provider_enabled=bool(row[8]),
            central_ciphertext=row[9] or "",
            base_url=row[10] or "",
            region=row[11] or "",
            central_key_enabled=bool(row[12]),
            user_keys_allowed=bool(row[13]),
            central_key_fallback=bool(row[14]),
            user_key_ciphertext=row[15] or None,
            model_id=row[16],
            model_enabled=bool(row[17]),
            prices=(
                _whole(row[18]),
                _whole(row[19]),
                _whole(row[20]),
                _whole(row[21]),
                _whole(row[22]),
                _whole(row[23]),
            ),
            long_context=(row[24], _whole(row[25]), _whole(row[26])),
            price_factors=tuple(_whole(factor) for factor in row[27:32]),  # type: ignore[arg-type]
            model_identifier=row[32],
            context_limit=row[33],
            max_output_tokens=row[34],
            budgets=row[35],
            key_label=row[36] or "",
            key_cooling_until=_aware(row[37]),
            key_attention=bool(row[38]),
            further_keys=row[39],
            breaker_open_until=_aware(row[40]),
            breaker_probe_until=_aware(row[41]),
            fallbacks=row[42],
        )

    @classmethod
    def from_asyncpg(cls, row: Sequence[Any]) -> CallRow:
        """From an asyncpg record, whose types are already right (aware timestamps,
        integers, booleans); only the LEFT JOINs' NULLs need a value. Runs on every call:
        no per-column conversion functions."""
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            bool(row[8]),
            row[9] or "",
            row[10] or "",
            row[11] or "",
            bool(row[12]),
            bool(row[13]),
            bool(row[14]),
            row[15] or None,
            row[16],
            bool(row[17]),
            (row[18], row[19], row[20], row[21], row[22], row[23]),
            (row[24], row[25], row[26]),
            (row[27], row[28], row[29], row[30], row[31]),
            row[32],
            row[33],
            row[34],
            row[35],
            row[36] or "",
            row[37],
            bool(row[38]),
            row[39],
            row[40],
            row[41],
            row[42],
        )

    def inactive(self, now: datetime) -> bool:
        expired = self.expires_at is not None and self.expires_at <= now
        return self.revoked_at is not None or expired or not self.user_active


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


@lru_cache(maxsize=4096)
def _decrypt(keyring_config: str, ciphertext: str) -> str | None:
    try:
        return get_keyring().decrypt(ciphertext)
    except DecryptionError:
        return None


def decrypt(ciphertext: str | None) -> str | None:
    """A stored key in clear, or None when absent or not decryptable with this keyring."""
    if not ciphertext:
        return None
    return _decrypt(cached_settings.ENCRYPTION_KEYS, ciphertext)


class DatabaseUnavailable(Exception):
    """The database did not answer a call's lookup: it is down, restarting or refusing
    connections, or (``busy``) the lookup ran past the statement timeout, waiting on a lock.
    The call is answered 503 in its caller's format (never a bare 500)."""

    def __init__(self, message: str, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


class Store:
    # How this store's driver gives a call's row (see CallRow).
    row_from_db = staticmethod(CallRow.from_db)

    def transient(self, error: Exception) -> bool:
        """Whether ``error`` says the database was out of reach for a while, not that the
        statement was wrong: a pooled connection was gone (the server restarted, failed over
        or ended it), or another process held the database. The same statement, on a fresh
        connection, may well succeed."""
        return False

    def timed_out(self, error: Exception) -> bool:
        """Whether ``error`` is the statement timeout: transient too, but no read is tried
        again after it (that would double a wait already long)."""
        return False

    def busy(self, error: Exception) -> bool:
        """Whether ``error`` says the database answered but could not serve the read in time
        (a lock held past a timeout): "too busy", where anything else is "cannot reach"."""
        return self.timed_out(error)

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        """Run each statement for each of its parameter rows, in one transaction."""
        raise NotImplementedError

    async def write_usage(
        self,
        rows: list[tuple[Any, ...]],
        touches: list[tuple[Any, ...]],
        holder: int = 0,
        settlements: Sequence[holds.Settlement] = (),
    ) -> list[tuple[int, datetime]]:
        """Insert usage rows, mark their tokens used and settle ``holder``'s holds, in one
        transaction. Gives the budgets (and periods) this settling passed first."""
        raise NotImplementedError

    async def reserve(self, hold: HoldAsked) -> list[holds.Taken] | int:
        """Top up a process's holds for a call on every budget that counts it: what was
        taken, or the id of the hard budget the call would pass. DatabaseUnavailable when
        the database cannot answer: the call is refused (a budget fails closed), and the
        top-up is not tried again (it may have been taken, and a second would take twice)."""
        try:
            return await self._reserve_once(hold)
        except DatabaseUnavailable:
            raise
        except Exception as error:
            raise DatabaseUnavailable(
                f"{type(error).__name__}: {error}", self.busy(error)
            ) from error

    async def _reserve_once(self, hold: HoldAsked) -> list[holds.Taken] | int:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def pool_state(self) -> tuple[int, int]:
        """(connections open, in use) of the gateway's own pool; none without one."""
        return (0, 0)

    async def call_row(
        self,
        *,
        provider_type: str,
        model: str,
        lookup_id: str | None = None,
        token_id: int | None = None,
    ) -> CallRow | None:
        """Raises DatabaseUnavailable when the database cannot answer."""
        try:
            row = await self._call_row(provider_type, model, lookup_id, token_id)
        except Exception as error:
            row = await self._read_again(
                error, self._call_row, provider_type, model, lookup_id, token_id
            )
        return self.row_from_db(row) if row else None

    async def _call_row(
        self, provider_type: str, model: str, lookup_id: str | None, token_id: int | None
    ) -> tuple[Any, ...] | None:
        if token_id is not None:
            return await self.fetch_one(CALL_BY_TOKEN_ID, (provider_type, model, token_id))
        return await self.row_by_lookup_id((provider_type, model, lookup_id or ""))

    async def _read_again(self, error: Exception, read: Any, *args: Any) -> Any:
        """After a read failed with ``error``: the read once more if only its connection was
        gone, else (or if that fails too) DatabaseUnavailable. A read is safe to repeat."""
        if self.transient(error) and not self.timed_out(error):
            try:
                return await read(*args)
            except Exception as again:
                error = again
        if isinstance(error, DatabaseUnavailable):
            raise error
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}", self.busy(error)) from error

    async def row_by_lookup_id(self, call: tuple[str, str, str]) -> tuple[Any, ...] | None:
        return await self.fetch_one(CALL_BY_LOOKUP_ID, call)

    async def models_of(self, provider_id: int) -> list[tuple[str, str, int]]:
        """Raises DatabaseUnavailable when the database cannot answer."""
        try:
            rows = await self.fetch_all(MODELS_OF_PROVIDER, (provider_id,))
        except Exception as error:
            rows = await self._read_again(error, self.fetch_all, MODELS_OF_PROVIDER, (provider_id,))
        return [(r[0], r[1], int(_aware(r[2]).timestamp())) for r in rows]  # type: ignore[union-attr]


@lru_cache(maxsize=32)
def _numbered(sql: str) -> str:
    """psycopg-style %s placeholders as asyncpg's $1, $2..."""
    parts = sql.split("%s")
    return "".join(f"{part}${i}" if i < len(parts) else part for i, part in enumerate(parts, 1))


class FairConnections:
    """A few asyncpg connections handed out strictly first come, first served.

    asyncpg's own pool lets a task that has just released a connection take it again ahead
    of the tasks already waiting; under 256 concurrent calls some waited seconds while others
    ran dozens of queries (measured). Here a released connection goes straight to the oldest
    waiter. Connections open on demand, up to ``size``; a broken one is replaced.
    """

    def __init__(self, size: int, connect: Any) -> None:
        self.size, self._connect = size, connect
        self._idle: deque[Any] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._open = 0

    async def acquire(self) -> Any:
        while self._idle and not self._waiters:
            connection = self._idle.pop()  # the most recently used: its backend is warm
            if not connection.is_closed():
                return connection
            self._open -= 1  # the server ended it while idle (a restart): forget it
        if self._open < self.size:
            self._open += 1
            try:
                return await self._connect()
            except BaseException:
                self._open -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as we gave up
            raise

    def release(self, connection: Any) -> None:
        if connection.is_closed():
            self._open -= 1
            if self._waiters:  # someone waits: open a fresh connection for them
                self._hand_fresh_connection()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _hand_fresh_connection(self) -> None:
        async def open_for_waiter() -> None:
            self._open += 1
            try:
                connection = await self._connect()
            except Exception:
                self._open -= 1
                return
            self.release(connection)

        asyncio.get_running_loop().create_task(open_for_waiter())

    @property
    def open(self) -> int:
        return self._open

    @property
    def idle(self) -> int:
        return len(self._idle)

    def connection(self) -> _Lease:
        """``async with connections.connection() as connection:`` (released on leaving)."""
        return _Lease(self)

    async def close(self) -> None:
        for waiter in self._waiters:
            waiter.cancel()
        while self._idle:
            await self._idle.popleft().close()


class _Lease:
    """One connection for the length of an ``async with`` block. A class, not an
    ``asynccontextmanager``: this runs on every call, and a generator costs more."""

    __slots__ = ("_connection", "_connections")

    def __init__(self, connections: FairConnections) -> None:
        self._connections = connections
        self._connection: Any = None

    async def __aenter__(self) -> Any:
        self._connection = await self._connections.acquire()
        return self._connection

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        connection = self._connection
        if kind is not None and not connection.is_closed() and connection.is_in_transaction():
            connection.terminate()  # never hand on a connection in an unknown state
        self._connections.release(connection)


async def _first(rows: Any) -> Any:
    return (await rows)[0]


class SharedLookups:
    """Calls that need their row while ``in_flight`` lookups are already running wait for
    the next query and share it: under load one query answers many calls (fewer round trips,
    less CPU here and in PostgreSQL); a call that finds a free slot is looked up at once.
    Every query still starts after the calls it answers arrived, so nothing is stale."""

    def __init__(self, run: Any, in_flight: int, one: Any = None) -> None:
        self._run = run  # list of parameter tuples -> list of rows (None when not found)
        self._run_one = one or (lambda params: _first(run([params])))  # a call alone
        self._in_flight = in_flight
        self._running = 0
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, params: tuple[Any, ...]) -> Any:
        if not self._waiting and self._running < self._in_flight:
            self._running += 1
            try:
                return await self._run_one(params)
            finally:
                self._running -= 1
                self._start_waiting()
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((params, future))
        self._start_waiting()
        return await future

    def _start_waiting(self) -> None:
        if not self._waiting or self._running >= self._in_flight:
            return
        batch, self._waiting = self._waiting, []
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            rows = await self._run([params for params, _ in batch])
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future), row in zip(batch, rows, strict=True):
                if not future.done():
                    future.set_result(row)
        finally:
            self._running -= 1
            self._start_waiting()


CALL_BY_LOOKUP_ID_NUMBERED = _numbered(CALL_BY_LOOKUP_ID)
# Seconds: a database that does not answer makes a call a quick 503, not a minute's wait.
CONNECT_TIMEOUT = 5


class PostgresStore(Store):
    """asyncpg, not psycopg, on the hot path: for this query it costs 47 us of CPU against
    psycopg's 168 us, and serves 2.3 times the queries per second (measured here). Django
    itself keeps using psycopg."""

    row_from_db = staticmethod(CallRow.from_asyncpg)

    def __init__(self) -> None:
        db = connections["default"].settings_dict
        self._params = {
            "database": db["NAME"],
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "host": db.get("HOST") or None,
            "port": int(db["PORT"]) if db.get("PORT") else None,
            # Prepared statements are cached per connection by asyncpg.
            "statement_cache_size": 64,
            # Set on the server, once per connection: no timer per statement.
            "server_settings": {
                "statement_timeout": str(round(settings.AI_GATEWAY_DB_STATEMENT_TIMEOUT * 1000))
            },
        }
        self.connections = FairConnections(settings.AI_GATEWAY_DB_POOL_SIZE, self._connect)
        self.lookups = SharedLookups(
            self._rows_by_lookup_id,
            one=self._row_by_lookup_id_alone,
            # One connection stays free for usage writes and listings.
            in_flight=max(1, min(2, settings.AI_GATEWAY_DB_POOL_SIZE - 1)),
        )

    def pool_state(self) -> tuple[int, int]:
        connections = self.connections
        return connections.open, connections.open - connections.idle

    async def _connect(self) -> Any:
        import asyncpg

        try:
            return await asyncpg.connect(**self._params, timeout=CONNECT_TIMEOUT)
        except Exception as error:  # not worth a second try within the same call
            raise DatabaseUnavailable(f"no connection: {type(error).__name__}: {error}") from error

    def transient(self, error: Exception) -> bool:
        import asyncpg

        # Connection errors (class 08), a server shutting down or ending this backend
        # (class 57), a connection already closed, or the socket itself; and a statement
        # past the statement timeout (57014), waiting for a lock that someone else holds.
        gone = (
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.InterfaceError,
            OSError,
        )
        return isinstance(error, gone)

    def timed_out(self, error: Exception) -> bool:
        import asyncpg

        return isinstance(error, asyncpg.QueryCanceledError)

    async def row_by_lookup_id(self, call: tuple[str, str, str]) -> tuple[Any, ...] | None:
        return await self.lookups.get(call)  # type: ignore[no-any-return]

    async def _row_by_lookup_id_alone(self, call: tuple[str, str, str]) -> Any:
        # Not ``connections.connection()``: one read needs no transaction clean-up, and this
        # runs on every call.
        connection = await self.connections.acquire()
        try:
            return await connection.fetchrow(CALL_BY_LOOKUP_ID_NUMBERED, *call)
        finally:
            self.connections.release(connection)

    async def _rows_by_lookup_id(
        self, calls: list[tuple[str, str, str]]
    ) -> list[tuple[Any, ...] | None]:
        types, models, lookup_ids = (list(column) for column in zip(*calls, strict=True))
        async with self.connections.connection() as connection:
            found = await connection.fetch(CALLS_BY_LOOKUP_ID, types, models, lookup_ids)
        rows: list[tuple[Any, ...] | None] = [None] * len(calls)
        for record in found:
            rows[record[0] - 1] = tuple(record)[1:]
        return rows

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async with self.connections.connection() as connection:
            row = await connection.fetchrow(_numbered(sql), *params)
        return tuple(row) if row is not None else None

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.connections.connection() as connection:
            rows = await connection.fetch(_numbered(sql), *params)
        return [tuple(r) for r in rows]

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        async with self.connections.connection() as connection, connection.transaction():
            for sql, rows in statements:
                if rows:
                    await connection.executemany(_numbered(sql), rows)

    async def write_usage(
        self,
        rows: list[tuple[Any, ...]],
        touches: list[tuple[Any, ...]],
        holder: int = 0,
        settlements: Sequence[holds.Settlement] = (),
    ) -> list[tuple[int, datetime]]:
        # COPY: the cheapest way to insert a batch (one message, no per-row statement).
        async with self.connections.connection() as connection, connection.transaction():
            if rows:
                await connection.copy_records_to_table(
                    UsageRecord._meta.db_table, records=rows, columns=list(USAGE_COLUMNS)
                )
            if touches:
                await connection.executemany(_numbered(TOUCH_TOKEN), touches)
            if used := key_touches(rows, datetime.now(UTC)):
                for touch in TOUCH_KEYS:
                    await connection.executemany(_numbered(touch), used)
            if not settlements:
                return []
            lock, spend, unhold, tidy = holds.SETTLE_POSTGRES
            await connection.execute(lock, sorted({s.counter_id for s in settlements}))
            held = dict(
                await connection.fetch(
                    holds.HELD_POSTGRES, holder, [s.counter_id for s in settlements]
                )
            )
            counters, costs, released, unknown = holds.columns(holds.summed(settlements, held))
            await connection.execute(spend, counters, costs, released, unknown)
            await connection.execute(unhold, counters, costs, released, unknown, holder)
            await connection.execute(tidy, holder)
            passed = await connection.fetch(holds.PASSED_POSTGRES, datetime.now(UTC), counters)
        return [(record[0], record[1]) for record in passed]

    async def _reserve_once(self, hold: HoldAsked) -> list[holds.Taken] | int:
        minute, day, week, month = holds.period_starts(hold.now)
        connection = await self.connections.acquire()
        try:
            rows = await connection.fetch(
                holds.RESERVE,
                hold.user_id,
                hold.token_id,
                hold.holder,
                holds.amounts_array(hold.amounts),
                hold.now,
                hold.expires,
                minute,
                day,
                week,
                month,
                list(hold.lent),
                list(hold.lent.values()),
            )
        finally:
            self.connections.release(connection)
        refused = holds.refusal_of(rows)
        return refused if refused is not None else [holds.Taken.from_row(row) for row in rows]

    async def close(self) -> None:
        await self.connections.close()


class DjangoThreadStore(Store):
    """SQLite (or any other backend): the same SQL through Django's connection in a thread."""

    def _fetch(self, sql: str, params: Sequence[Any], many: bool) -> Any:
        connection = connections["default"]
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, list(params))
                return cursor.fetchall() if many else cursor.fetchone()
        finally:
            connection.close()

    def _write(self, statements: list[tuple[str, list[Sequence[Any]]]], then: Any = None) -> Any:
        """Run the statements, then ``then(cursor)`` if given, in one transaction."""
        from django.db import transaction

        connection = connections["default"]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for sql, rows in statements:
                    if rows:
                        cursor.executemany(sql, [list(r) for r in rows])
                return then(cursor) if then is not None else None
        finally:
            connection.close()

    def _reserve(self, hold: HoldAsked) -> list[holds.Taken] | int:
        try:
            return holds.reserve(
                hold.user_id,
                hold.token_id,
                hold.holder,
                hold.amounts,
                hold.now,
                hold.expires,
                hold.lent,
            )
        finally:
            connections["default"].close()

    async def write_usage(
        self,
        rows: list[tuple[Any, ...]],
        touches: list[tuple[Any, ...]],
        holder: int = 0,
        settlements: Sequence[holds.Settlement] = (),
    ) -> list[tuple[int, datetime]]:
        def settle(cursor: Any) -> list[tuple[int, datetime]]:
            if not settlements:
                return []
            return holds.settle_in(cursor, holder, settlements, datetime.now(UTC))

        used = key_touches(rows, datetime.now(UTC))
        statements: list[tuple[str, list[Any]]] = [
            (INSERT_USAGE, rows),
            (TOUCH_TOKEN, touches),
            *((touch, used) for touch in TOUCH_KEYS),
        ]
        return await asyncio.to_thread(self._write, statements, settle)  # type: ignore[no-any-return]

    async def _reserve_once(self, hold: HoldAsked) -> list[holds.Taken] | int:
        return await asyncio.to_thread(self._reserve, hold)

    def transient(self, error: Exception) -> bool:
        # SQLite: another process kept its write lock past the busy timeout.
        return isinstance(error, OperationalError) and "locked" in str(error)

    def busy(self, error: Exception) -> bool:
        return self.transient(error)

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        return await asyncio.to_thread(self._fetch, sql, params, False)

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._fetch, sql, params, True)

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        await asyncio.to_thread(self._write, statements)


def _new_store() -> Store:
    is_postgres = connections["default"].vendor == "postgresql"
    return PostgresStore() if is_postgres else DjangoThreadStore()


_stores: PerLoop[Store] = PerLoop(_new_store)


def store() -> Store:
    """The store of the running event loop (one pool per worker process)."""
    return _stores.get()


async def close_store() -> None:
    _keys_touched.clear()
    current = _stores.pop()
    if current is not None:
        await current.close()

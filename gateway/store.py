"""The gateway's database access: one query per call, and batched usage writes.

On PostgreSQL it uses its own small async psycopg pool per worker process (prepared
statements, no connection held while a response streams). On SQLite (first runs only) the
same SQL runs in a thread through Django's connection. Nothing is cached: a revoked token, a
removed key or a changed policy takes effect on the next call, on every replica.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connections

from models_catalog.models import ModelConfig
from providers.crypto import DecryptionError, get_keyring
from providers.models import Provider
from tokens.models import ApiToken
from userkeys.models import UserKey

from .models import UsageRecord

_CALL_COLUMNS = """
    t.id, t.user_id, t.secret_hash, t.expires_at, t.revoked_at, u.is_active, u.username,
    p.id, p.enabled, p.api_key, p.base_url, p.region,
    p.central_key_enabled, p.user_keys_allowed, p.central_key_fallback,
    k.api_key,
    m.id, m.enabled, m.input_price, m.output_price, m.cache_read_price, m.cache_write_price
"""


def _call_sql(token_column: str) -> str:
    user_table = ApiToken._meta.get_field("user").related_model._meta.db_table  # type: ignore[union-attr]
    return f"""
        SELECT {_CALL_COLUMNS}
        FROM {ApiToken._meta.db_table} t
        JOIN {user_table} u ON u.id = t.user_id
        LEFT JOIN {Provider._meta.db_table} p ON p.type = %s
        LEFT JOIN {UserKey._meta.db_table} k ON k.user_id = t.user_id AND k.provider_id = p.id
        LEFT JOIN {ModelConfig._meta.db_table} m ON m.provider_id = p.id AND m.identifier = %s
        WHERE t.{token_column} = %s
    """


CALL_BY_LOOKUP_ID = _call_sql("lookup_id")
CALL_BY_TOKEN_ID = _call_sql("id")
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
    "cost_usd",
)
INSERT_USAGE = (
    f"INSERT INTO {UsageRecord._meta.db_table} ({', '.join(USAGE_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(USAGE_COLUMNS))})"
)
TOUCH_TOKEN = (
    f"UPDATE {ApiToken._meta.db_table} SET last_used_at = %s "
    "WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s)"
)


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
    prices: tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> CallRow:
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
            prices=(_decimal(row[18]), _decimal(row[19]), _decimal(row[20]), _decimal(row[21])),
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


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


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
    return _decrypt(settings.ENCRYPTION_KEYS, ciphertext)


class Store:
    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        """Run each statement for each of its parameter rows, in one transaction."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def call_row(
        self, *, provider_type: str, model: str, lookup_id: str | None = None,
        token_id: int | None = None,
    ) -> CallRow | None:  # fmt: skip
        if token_id is not None:
            row = await self.fetch_one(CALL_BY_TOKEN_ID, (provider_type, model, token_id))
        else:
            row = await self.fetch_one(CALL_BY_LOOKUP_ID, (provider_type, model, lookup_id))
        return CallRow.from_db(row) if row else None

    async def models_of(self, provider_id: int) -> list[tuple[str, str, int]]:
        rows = await self.fetch_all(MODELS_OF_PROVIDER, (provider_id,))
        return [(r[0], r[1], int(_aware(r[2]).timestamp())) for r in rows]  # type: ignore[union-attr]


class PostgresStore(Store):
    def __init__(self) -> None:
        from psycopg.conninfo import make_conninfo
        from psycopg_pool import AsyncConnectionPool

        db = connections["default"].settings_dict
        conninfo = make_conninfo(
            dbname=db["NAME"],
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=str(db["PORT"]) if db.get("PORT") else None,
        )
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.AI_GATEWAY_DB_POOL_SIZE,
            open=False,
            kwargs={"autocommit": True},
        )
        self._opened = False
        self._opening = asyncio.Lock()

    async def _pool(self) -> Any:
        if not self._opened:
            async with self._opening:
                if not self._opened:
                    await self.pool.open(wait=True)
                    self._opened = True
        return self.pool

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        pool = await self._pool()
        async with pool.connection() as connection:
            cursor = await connection.execute(sql, params, prepare=True)
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        pool = await self._pool()
        async with pool.connection() as connection:
            cursor = await connection.execute(sql, params, prepare=True)
            return await cursor.fetchall()

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        pool = await self._pool()
        async with pool.connection() as connection, connection.transaction():
            for sql, rows in statements:
                if rows:
                    async with connection.cursor() as cursor:
                        await cursor.executemany(sql, rows)

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()
            self._opened = False


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

    def _write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        from django.db import transaction

        connection = connections["default"]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for sql, rows in statements:
                    if rows:
                        cursor.executemany(sql, [list(r) for r in rows])
        finally:
            connection.close()

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        return await asyncio.to_thread(self._fetch, sql, params, False)

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._fetch, sql, params, True)

    async def write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        await asyncio.to_thread(self._write, statements)


_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Store] = weakref.WeakKeyDictionary()


def store() -> Store:
    """The store of the running event loop (one pool per worker process)."""
    loop = asyncio.get_running_loop()
    current = _stores.get(loop)
    if current is None:
        is_postgres = connections["default"].vendor == "postgresql"
        current = PostgresStore() if is_postgres else DjangoThreadStore()
        _stores[loop] = current
    return current


async def close_store() -> None:
    current = _stores.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()

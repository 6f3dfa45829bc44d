"""Transaction-scoped locks for writes that must not interleave across processes."""

import zlib

from django.db import connection

# Every write that can change which model is the default (or whether it is usable) takes this
# lock first, before any row lock: providers, models, the star, purpose settings. One order
# everywhere means no deadlock, and each write sees the others' results.
CATALOG = "llmcp.catalog"


def serialize_in_transaction(name: str) -> None:
    """Hold a lock named ``name`` until the current transaction ends.

    PostgreSQL: an advisory transaction lock, so concurrent requests on any replica queue up.
    SQLite allows one writer at a time anyway, so nothing more is needed there.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
